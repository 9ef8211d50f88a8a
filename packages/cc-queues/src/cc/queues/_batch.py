"""The pieces of WorkQueue.batch_process: its bookkeeping, its feeder, its summary."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from cc.primitives import RateLimiter
from cc.queues._bounded import BoundedQueue
from cc.queues._pool import ErrorHandler, WorkerFunc, report_error
from cc.queues._validation import NotStartedError

__all__ = ["BatchState", "BatchSummary", "ProgressCallback", "feed", "rate_limited"]

T = TypeVar("T")
R = TypeVar("R")

ProgressCallback = Callable[[int, "int | None"], object]
"""Called as ``on_progress(done, total)``; ``total`` is ``None`` if unknown."""


@dataclass(frozen=True)
class BatchSummary(Generic[R]):
    """What :meth:`WorkQueue.batch_process` did.

    :ivar total: items taken from the iterable (``succeeded + failed``)
    :ivar succeeded: items whose worker function returned
    :ivar failed: items whose worker function raised
    :ivar results: with ``collect_results=True``, the return value of each
        item that succeeded, keyed by its position in the iterable
    :ivar errors: with ``collect_results=True``, the exception of each item
        that failed, keyed by its position in the iterable
    """

    total: int
    succeeded: int
    failed: int
    results: dict[int, R] = field(default_factory=dict)
    errors: dict[int, Exception] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class BatchState(Generic[T, R]):
    """The bookkeeping of one running batch, shared by its workers."""

    worker_func: Callable[[T], Awaitable[R]]
    error_handler: ErrorHandler[T] | None
    window: RateLimiter | None
    collect: bool
    on_progress: ProgressCallback | None
    total: int | None
    logger: logging.Logger
    done: int = 0
    failed: int = 0
    results: dict[int, R] = field(default_factory=dict)
    errors: dict[int, Exception] = field(default_factory=dict)

    async def run(self, entry: tuple[int, T]) -> None:
        index, item = entry
        if self.window is not None:
            await self.window.acquire()
        result = await self.worker_func(item)
        if self.collect:
            self.results[index] = result
        self._progress()

    async def on_error(self, exc: Exception, entry: tuple[int, T]) -> None:
        index, item = entry
        self.failed += 1
        if self.collect:
            self.errors[index] = exc
        try:
            # Reported here, with the caller's handler and item rather than
            # the internal queue's view of them.
            await report_error(self.logger, exc, item, self.error_handler)
        finally:
            self._progress()

    def _progress(self) -> None:
        self.done += 1
        if self.on_progress is None:
            return
        try:
            self.on_progress(self.done, self.total)
        except Exception:
            self.logger.exception("progress callback %r failed", self.on_progress)


def rate_limited(
    window: RateLimiter, worker_func: WorkerFunc[T], may_start: Callable[[], bool]
) -> Callable[[T], Awaitable[Any]]:
    """Wrap ``worker_func`` so that each call first waits for its turn.

    When the turn comes, ``may_start()`` says whether the work still goes on:
    if not (a misuse stopped it while the item waited), the item is not
    started and :class:`NotStartedError` hands it back.
    """

    @functools.wraps(worker_func)
    async def wait_then_work(item: T) -> Any:
        await window.acquire()
        if not may_start():
            raise NotStartedError
        return await worker_func(item)

    return wait_then_work


async def feed(
    queue: BoundedQueue[tuple[int, T]],
    items: Iterable[T] | AsyncIterable[T],
    held: list[T],
) -> None:
    """Put each item with its position, reading the next only once it fits.

    If a ``put()`` is interrupted (cancelled, or the queue stopped), the item
    it was adding is appended to ``held`` so that the caller can hand it back.
    """
    if isinstance(items, AsyncIterable):
        index = 0
        async for item in items:
            await _put(queue, index, item, held)
            index += 1
    else:
        for index, item in enumerate(items):
            await _put(queue, index, item, held)


async def _put(
    queue: BoundedQueue[tuple[int, T]], index: int, item: T, held: list[T]
) -> None:
    try:
        await queue.put((index, item))
    except BaseException:
        held.append(item)
        raise
