"""A worker pool over a bounded queue: concurrency limit, rate limit, batches."""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Sized
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Generic, TypeVar

from cc.primitives import RateLimiter
from cc.queues._bounded import BoundedQueue, ErrorHandler, WorkerFunc, _Brief
from cc.queues._config import QueueConfig
from cc.queues._status import QueueStatus
from cc.queues._validation import (
    NotAwaitableError,
    brief,
    check_async_callable,
    check_bool,
    check_callable,
    check_count,
    check_float_range,
    check_logger,
    check_timeout,
)

__all__ = ["BatchSummary", "ProgressCallback", "WorkQueue"]

T = TypeVar("T")
R = TypeVar("R")
_W = TypeVar("_W", bound="WorkQueue[Any]")

ProgressCallback = Callable[[int, "int | None"], object]
"""Called as ``on_progress(done, total)``; ``total`` is ``None`` if unknown."""

_logger = logging.getLogger(__name__)

_METRIC_NAMES = (
    "enqueued",
    "processed",
    "errors",
    "backpressure_events",
    "refused_puts",
    "handed_back",
)


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


class _BatchState(Generic[T, R]):
    """The bookkeeping of one running batch, shared by its workers."""

    __slots__ = (
        "collect",
        "done",
        "error_handler",
        "errors",
        "failed",
        "logger",
        "on_progress",
        "results",
        "total",
        "window",
        "worker_func",
    )

    def __init__(
        self,
        worker_func: Callable[[T], Awaitable[R]],
        error_handler: ErrorHandler[T] | None,
        window: RateLimiter | None,
        collect: bool,
        on_progress: ProgressCallback | None,
        total: int | None,
        logger: logging.Logger,
    ) -> None:
        self.worker_func = worker_func
        self.error_handler = error_handler
        self.window = window
        self.collect = collect
        self.on_progress = on_progress
        self.total = total
        self.logger = logger
        self.done = 0
        self.failed = 0
        self.results: dict[int, R] = {}
        self.errors: dict[int, Exception] = {}

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
            if self.error_handler is None:
                self.logger.error(
                    "worker failed on item %s", _Brief(item), exc_info=exc
                )
                return
            try:
                await self.error_handler(exc, item)
            except NotAwaitableError:
                raise  # a misuse: the queue stops the work and raises it
            except Exception:
                # Logged here, with the caller's handler and item rather than
                # the internal queue's view of them.
                self.logger.exception(
                    "error handler %r failed on item %s",
                    self.error_handler,
                    _Brief(item),
                )
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


class WorkQueue(Generic[T]):
    """A pool of workers fed through a :class:`BoundedQueue`.

    Start it (``async with`` or :meth:`start`), attach workers with
    :meth:`process`, feed it with :meth:`put`, wait with :meth:`join`, and
    stop it; or let :meth:`batch_process` do all of that for an iterable.
    The lifecycle, backpressure and hand-back rules are those of
    :class:`BoundedQueue`, which this class wraps.

    ``concurrency_limit`` caps how many items are processed at once: it is
    the default worker count, and asking for more workers than it leaves
    room for (across :meth:`process` calls and running batches) raises
    :class:`ValueError`. A call's share of the limit is reserved the moment it
    is granted, before the call yields, so of two tasks asking at once for
    more than is left, the second gets the :class:`ValueError`; a batch
    holds its share until it returns. Optionally, ``rate_limit`` caps how
    many items *start* in any ``rate_window`` seconds: a
    :class:`cc.primitives.RateLimiter` (an exact sliding window) shared by all
    workers, waited for after a worker takes an item and before it calls the
    worker function.

    :param maxsize: the most items the queue holds, at least 1
    :param timeout: how long :meth:`put` waits for room by default, in seconds
        (an int too large for a float waits forever)
    :param concurrency_limit: the most items processed at once (at least 1),
        or ``None`` for no limit and one worker by default
    :param logger: where worker errors are logged
    :param rate_limit: the most items started per ``rate_window``, or
        ``None`` for no rate limit
    :param rate_window: the rate-limit window in seconds (positive, finite)
    :raises ValueError: for a ``maxsize``, ``concurrency_limit`` or
        ``rate_limit`` below 1, a ``rate_limit`` too large for a float, a
        negative or NaN ``timeout``, or a ``rate_window`` that is not
        positive and finite
    :raises TypeError: for an argument of the wrong type (a ``logger`` that
        is not a :class:`logging.Logger`, a ``maxsize`` that is not an int)

    >>> import anyio
    >>> from cc.queues import WorkQueue
    >>> async def main() -> tuple[int, dict[int, int]]:
    ...     async def square(n: int) -> int:
    ...         return n * n
    ...
    ...     queue = WorkQueue[int](maxsize=5, concurrency_limit=3)
    ...     summary = await queue.batch_process(range(4), square, collect_results=True)
    ...     return summary.succeeded, summary.results
    >>> succeeded, results = anyio.run(main)
    >>> succeeded, sorted(results.items())
    (4, [(0, 0), (1, 1), (2, 4), (3, 9)])
    """

    __slots__ = (
        "_batch_metrics",
        "_batches",
        "_concurrency_limit",
        "_logger",
        "_queue",
        "_reserved",
        "_unprocessed",
        "_window",
    )

    def __init__(
        self,
        maxsize: int = 100,
        timeout: float = 0.1,
        concurrency_limit: int | None = None,
        logger: logging.Logger | None = None,
        *,
        rate_limit: int | None = None,
        rate_window: float = 1.0,
    ) -> None:
        logger = check_logger("logger", logger)
        self._logger = _logger if logger is None else logger
        self._queue: BoundedQueue[T] = BoundedQueue(maxsize, timeout, self._logger)
        self._concurrency_limit = (
            None
            if concurrency_limit is None
            else check_count("concurrency_limit", concurrency_limit)
        )
        self._window: RateLimiter | None = None
        if rate_limit is not None:
            limit = check_float_range(
                "rate_limit", check_count("rate_limit", rate_limit)
            )
            window = check_timeout("rate_window", rate_window)
            if window == 0 or window == math.inf:
                raise ValueError(
                    "rate_window must be a positive finite number, "
                    f"got {brief(rate_window)}"
                )
            self._window = RateLimiter(limit, period=window)
        self._batches: list[BoundedQueue[Any]] = []
        self._batch_metrics = dict.fromkeys(_METRIC_NAMES, 0)
        self._unprocessed: list[T] = []
        # Workers granted by _worker_quota() and not counted by the main
        # queue's worker_count: those of a process() call still starting, and
        # those of each running batch (for the batch's whole run).
        self._reserved = 0

    @classmethod
    def from_config(
        cls,
        config: QueueConfig,
        *,
        rate_limited: bool = False,
        timeout: float = 0.1,
        logger: logging.Logger | None = None,
    ) -> WorkQueue[T]:
        """Build a queue from a validated :class:`QueueConfig`.

        ``queue_capacity`` becomes ``maxsize`` and ``concurrency_limit`` the
        worker count. With ``rate_limited=True``, at most ``queue_capacity``
        items start in any window of ``capacity_refresh_time`` seconds.

        :param config: the settings
        :param rate_limited: whether to switch the start-rate limit on
        :param timeout: how long :meth:`put` waits for room by default
        :param logger: where worker errors are logged
        :raises TypeError: if ``config`` is not a :class:`QueueConfig` or
            ``rate_limited`` is not a bool

        >>> from cc.queues import QueueConfig, WorkQueue
        >>> config = QueueConfig(queue_capacity=8, concurrency_limit=2)
        >>> queue = WorkQueue[str].from_config(config, rate_limited=True)
        >>> queue.maxsize, queue.concurrency_limit, queue.rate_limit
        (8, 2, (8, 1.0))
        """
        if not isinstance(config, QueueConfig):
            raise TypeError(
                f"config must be a QueueConfig, not {type(config).__name__}"
            )
        check_bool("rate_limited", rate_limited)
        return cls(
            maxsize=config.queue_capacity,
            timeout=timeout,
            concurrency_limit=config.concurrency_limit,
            logger=logger,
            rate_limit=config.queue_capacity if rate_limited else None,
            rate_window=config.capacity_refresh_time,
        )

    def __repr__(self) -> str:
        queue = self._queue
        return (
            f"<{type(self).__name__} {queue.status.value} "
            f"size={queue.size}/{queue.maxsize} workers={self.worker_count} "
            f"limit={self._concurrency_limit}>"
        )

    # -- properties --------------------------------------------------------

    @property
    def status(self) -> QueueStatus:
        """Where the queue fed by :meth:`put` is in its lifecycle."""
        return self._queue.status

    @property
    def metrics(self) -> dict[str, int]:
        """A snapshot of the counters, as in :attr:`BoundedQueue.metrics`.

        Includes the items of :meth:`batch_process` runs, finished or running.
        """
        totals = self._queue.metrics
        for name, value in self._batch_metrics.items():
            totals[name] += value
        for batch in self._batches:
            for name, value in batch.metrics.items():
                totals[name] += value
        return totals

    @property
    def size(self) -> int:
        """The number of items waiting in the queue fed by :meth:`put`."""
        return self._queue.size

    @property
    def maxsize(self) -> int:
        """The most items the queue holds."""
        return self._queue.maxsize

    @property
    def is_full(self) -> bool:
        """Whether the queue fed by :meth:`put` is full."""
        return self._queue.is_full

    @property
    def is_empty(self) -> bool:
        """Whether the queue fed by :meth:`put` is empty."""
        return self._queue.is_empty

    @property
    def worker_count(self) -> int:
        """Workers running now, for :meth:`process` and for batches."""
        return self._queue.worker_count + sum(b.worker_count for b in self._batches)

    @property
    def concurrency_limit(self) -> int | None:
        """The most items processed at once, or ``None`` for no limit."""
        return self._concurrency_limit

    @property
    def rate_limit(self) -> tuple[int, float] | None:
        """``(items, seconds)``: at most that many starts per window, or ``None``."""
        window = self._window
        return None if window is None else (int(window.rate), window.period)

    @property
    def unprocessed(self) -> list[T]:
        """Items handed back by the latest :meth:`stop` or interrupted batch."""
        return list(self._unprocessed)

    # -- lifecycle ---------------------------------------------------------

    async def __aenter__(self: _W) -> _W:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._queue._task_group is None:
            return  # stopped inside the block already
        leftovers = await self.stop(timeout=None if exc is None else 0)
        if leftovers:
            self._logger.warning(
                "%s stopped with %d unprocessed item(s); they are in .unprocessed",
                type(self).__name__,
                len(leftovers),
            )

    async def start(self) -> None:
        """Start the queue (see :meth:`BoundedQueue.start`).

        :raises QueueStateError: if the queue is already running or stopping
        """
        await self._queue.start()
        self._unprocessed = []

    async def stop(self, timeout: float | None = None) -> list[T]:
        """Stop the queue and its workers (see :meth:`BoundedQueue.stop`).

        :param timeout: seconds to let busy workers finish, or ``None``
        :return: the items handed back (also in :attr:`unprocessed`, even
            when this call re-raises a cancellation of the calling task)
        :raises QueueStateError: if called from a task other than the one
            that started the queue
        """
        queue = self._queue
        running = queue.status is not QueueStatus.STOPPED
        running = running and queue.status is not QueueStatus.IDLE
        try:
            return await queue.stop(timeout)
        finally:
            # Also when stop() re-raises a cancellation of the calling task
            # (or a worker's crash): the items were handed back all the same.
            if running and queue.status is QueueStatus.STOPPED:
                self._unprocessed = queue.unprocessed

    async def put(self, item: T, timeout: float | None = None) -> bool:
        """Add an item, waiting for room (see :meth:`BoundedQueue.put`).

        :param item: the item to add
        :param timeout: seconds to wait for room; ``None`` uses the default
        :return: whether the item was added (``False``: backpressure)
        :raises QueueStateError: if the queue is not running
        """
        return await self._queue.put(item, timeout)

    async def join(self) -> None:
        """Wait until every item added with :meth:`put` has been finished."""
        await self._queue.join()

    def _worker_quota(self, num_workers: int | None) -> int:
        """Grant ``count`` workers under the limit and reserve them at once.

        The check and the reservation happen without yielding, so two tasks
        asking at the same time cannot both pass it. The caller gives the
        reservation back with :meth:`_release_quota`: :meth:`process` once
        its workers are counted by the main queue (or failed to start), a
        batch when it ends.
        """
        limit = self._concurrency_limit
        if num_workers is None:
            count = 1 if limit is None else limit
        else:
            count = check_count("num_workers", num_workers)
        running = self._queue.worker_count + self._reserved
        if limit is not None and running + count > limit:
            raise ValueError(
                f"starting {count} worker(s) next to the {running} running would "
                f"exceed concurrency_limit={limit}"
            )
        self._reserved += count
        return count

    def _release_quota(self, count: int) -> None:
        self._reserved -= count

    async def process(
        self,
        worker_func: WorkerFunc[T],
        num_workers: int | None = None,
        error_handler: ErrorHandler[T] | None = None,
    ) -> None:
        """Start workers that call ``worker_func`` on each item put in the queue.

        Errors are handled as in :meth:`BoundedQueue.start_workers`.

        :param worker_func: the async function that processes one item
        :param num_workers: how many workers; ``None`` means
            ``concurrency_limit``, or 1 without a limit
        :param error_handler: async function called with the exception and
            the item whose processing raised it
        :raises ValueError: if ``num_workers`` is below 1 or would exceed the
            concurrency limit together with the workers already running
        :raises QueueStateError: if the queue is not running
        """
        worker_func = check_async_callable("worker_func", worker_func)
        count = self._worker_quota(num_workers)
        try:
            window = self._window
            if window is not None:
                worker_func = _rate_limited(window, worker_func)
            await self._queue.start_workers(worker_func, count, error_handler)
        finally:
            self._release_quota(count)

    async def batch_process(
        self,
        items: Iterable[T] | AsyncIterable[T],
        worker_func: Callable[[T], Awaitable[R]],
        num_workers: int | None = None,
        error_handler: ErrorHandler[T] | None = None,
        *,
        collect_results: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> BatchSummary[R]:
        """Process every item of ``items`` and return a summary.

        ``items`` may be any iterable or async iterable, including a
        generator of unbounded length: it is read lazily, one item at a
        time, and only when the internal queue has room, so memory stays
        bounded by ``maxsize`` plus the number of workers however many items
        flow through (unless ``collect_results`` keeps every result). The
        call returns when every item has been processed.

        The batch runs on a queue of its own with this queue's ``maxsize``,
        concurrency limit, rate limit and logger, whether or not this queue
        is started; :attr:`metrics` include its counts, while :attr:`status`,
        :attr:`size` and :meth:`join` keep describing the queue fed by
        :meth:`put`. Errors are handled as in :meth:`process`. If the
        iterable raises, or the call is cancelled, the workers are cancelled
        and the items taken from the iterable but not finished (interrupted,
        then queued, then the one being put, if any) replace
        :attr:`unprocessed` before the exception propagates (an interrupted
        batch with nothing to hand back empties it); they are counted in
        ``metrics["handed_back"]``, and ``metrics["enqueued"]`` counts every
        item the batch took from the iterable.

        :param items: the items to process
        :param worker_func: the async function that processes one item
        :param num_workers: how many workers; ``None`` means
            ``concurrency_limit``, or 1 without a limit
        :param error_handler: async function called with the exception and
            the item whose processing raised it
        :param collect_results: keep each result and each exception, by the
            item's position, in the summary
        :param on_progress: called as ``on_progress(done, total)`` after each
            item is finished (successfully or not); ``total`` is ``len(items)``
            when ``items`` has a length, else ``None``. It runs in a worker
            and should return quickly; an exception it raises is logged.
        :return: the counts, and the results and errors if asked for
        :raises ValueError: if ``num_workers`` is below 1 or would exceed the
            concurrency limit
        :raises TypeError: if ``items`` is not iterable, a function is not
            callable, ``num_workers`` is not an int or ``collect_results`` is
            not a bool (before any worker starts); or, once running, if
            ``worker_func`` or ``error_handler`` returns something that is
            not awaitable (a sync function): the first such call stops the
            batch, counts its item in ``metrics["errors"]`` and hands back
            the items not processed (see :attr:`unprocessed`)
        """
        total = len(items) if isinstance(items, Sized) else None
        if not isinstance(items, AsyncIterable):
            try:
                items = iter(items)  # the same iterator is read by _feed()
            except TypeError:
                raise TypeError(
                    "items must be an iterable or an async iterable, "
                    f"not {type(items).__name__}"
                ) from None
        worker_func = check_async_callable("worker_func", worker_func)
        if error_handler is not None:
            error_handler = check_async_callable("error_handler", error_handler)
        if on_progress is not None:
            check_callable("on_progress", on_progress)
        check_bool("collect_results", collect_results)
        state: _BatchState[T, R] = _BatchState(
            worker_func,
            error_handler,
            self._window,
            collect_results,
            on_progress,
            total,
            self._logger,
        )
        queue: BoundedQueue[tuple[int, T]] = BoundedQueue(
            self._queue.maxsize, math.inf, self._logger
        )
        # The batch holds its share of the limit until it ends.
        count = self._worker_quota(num_workers)
        self._batches.append(queue)
        held: list[T] = []  # an item _feed() took but put() did not accept
        finished = False
        try:
            await queue.start()
            try:
                await queue.start_workers(state.run, count, state.on_error)
                await _feed(queue, items, held)
                await queue.join()
            except BaseException:
                await queue.stop(timeout=0)
                raise
            await queue.stop()
            finished = True
        finally:
            self._release_quota(count)
            self._batches.remove(queue)
            metrics = self._batch_metrics
            for name, value in queue.metrics.items():
                metrics[name] += value
            if not finished:
                # An interrupted batch always replaces .unprocessed, even with
                # nothing to hand back, so that it never shows older items.
                leftovers = [item for _, item in queue.unprocessed] + held
                # The item read from the iterable but not accepted yet counts
                # as taken and handed back, like the others.
                metrics["enqueued"] += len(held)
                metrics["handed_back"] += len(held)
                self._unprocessed = leftovers
                if leftovers:
                    self._logger.warning(
                        "batch_process was interrupted with %d unprocessed item(s); "
                        "they are in .unprocessed",
                        len(leftovers),
                    )
        return BatchSummary(
            total=state.done,
            succeeded=state.done - state.failed,
            failed=state.failed,
            results=state.results,
            errors=state.errors,
        )


def _rate_limited(
    window: RateLimiter, worker_func: WorkerFunc[T]
) -> Callable[[T], Awaitable[Any]]:
    """Wrap ``worker_func`` so that each call first waits for its turn."""

    @functools.wraps(worker_func)
    async def wait_then_work(item: T) -> Any:
        await window.acquire()
        return await worker_func(item)

    return wait_then_work


async def _feed(
    queue: BoundedQueue[tuple[int, T]],
    items: Iterable[T] | AsyncIterable[T],
    held: list[T],
) -> None:
    """Put each item with its position, reading the next only once it fits.

    If a ``put()`` is interrupted (cancelled, or the queue stopped), the item
    it was adding is appended to ``held`` so that the caller can hand it back.
    """
    index = 0
    if isinstance(items, AsyncIterable):
        async for item in items:
            try:
                await queue.put((index, item))
            except BaseException:
                held.append(item)
                raise
            index += 1
    else:
        for item in items:
            try:
                await queue.put((index, item))
            except BaseException:
                held.append(item)
                raise
            index += 1
