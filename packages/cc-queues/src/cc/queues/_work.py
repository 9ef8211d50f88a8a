"""WorkQueue: a worker pool with a concurrency limit, a rate limit and batches."""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Sized
from typing import Any, TypeVar

from cc.primitives import RateLimiter
from cc.queues._batch import (
    BatchState,
    BatchSummary,
    ProgressCallback,
    feed,
    rate_limited,
)
from cc.queues._bounded import BoundedQueue
from cc.queues._config import QueueConfig
from cc.queues._lifecycle import QueueBase
from cc.queues._pool import ErrorHandler, WorkerFunc
from cc.queues._supervisor import HandBack
from cc.queues._validation import (
    brief,
    check_async_callable,
    check_bool,
    check_callable,
    check_count,
    check_float_range,
    check_timeout,
)

__all__ = ["WorkQueue"]

T = TypeVar("T")
R = TypeVar("R")


class WorkQueue(QueueBase[T]):
    """A pool of workers fed through a bounded queue.

    Start it (``async with`` or :meth:`start`), attach workers with
    :meth:`process`, feed it with :meth:`put`, wait with :meth:`join`, and
    stop it; or let :meth:`batch_process` do all of that for an iterable.
    The lifecycle, backpressure, drain, stop-request and hand-back rules are
    those of :class:`BoundedQueue`.

    ``concurrency_limit`` caps how many items are processed at once: it is
    the default for ``num_workers``, and asking for more workers than it
    leaves room for (across :meth:`process` calls and running batches)
    raises :class:`ValueError`. A call's share of the limit is granted
    before the call yields, so of two tasks asking at once for more than is
    left, the second gets the :class:`ValueError`; a batch holds its share
    until it returns. Workers start as items wait and retire when idle, so a
    large limit costs nothing up front: ``num_workers`` and the limit are
    caps, and :attr:`worker_count` counts the workers running now.
    Optionally, ``rate_limit`` caps how many items *start* in any
    ``rate_window`` seconds: a :class:`cc.primitives.RateLimiter` (an exact
    sliding window) shared by all workers, waited for after a worker takes
    an item and before it calls the worker function.

    :param maxsize: the most items the queue holds, at least 1
    :param timeout: how long :meth:`put` waits for room by default, in seconds
        (an int too large for a float waits forever)
    :param concurrency_limit: the most items processed at once (at least 1),
        or ``None`` for no limit and one worker by default
    :param logger: where worker errors and warnings are logged (default: the
        ``cc.queues`` logger)
    :param rate_limit: the most items started per ``rate_window``, or
        ``None`` for no rate limit
    :param rate_window: the rate-limit window in seconds (positive, finite)
    :param worker_idle_timeout: how long a worker may stay idle before it
        retires, in seconds (positive; :data:`math.inf`: never)
    :raises ValueError: for a ``maxsize``, ``concurrency_limit`` or
        ``rate_limit`` below 1, a ``rate_limit`` too large for a float, a
        negative or NaN ``timeout``, a ``rate_window`` that is not positive
        and finite, or a ``worker_idle_timeout`` that is not positive
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
        "_batch_ledger",
        "_batch_share",
        "_batches",
        "_concurrency_limit",
        "_idle_timeout",
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
        worker_idle_timeout: float = 1.0,
    ) -> None:
        super().__init__(maxsize, timeout, logger, worker_idle_timeout)
        self._idle_timeout = worker_idle_timeout
        self._concurrency_limit = (
            None
            if concurrency_limit is None
            else check_count("concurrency_limit", concurrency_limit)
        )
        self._window: RateLimiter | None = None
        if rate_limit is not None:
            limit = check_count("rate_limit", rate_limit)
            check_float_range("rate_limit", limit)
            window = check_timeout("rate_window", rate_window)
            if window == 0 or window == math.inf:
                raise ValueError(
                    "rate_window must be a positive finite number, "
                    f"got {brief(rate_window)}"
                )
            # Only the workers acquire it, each right after its loop spent a
            # unit of the checkpoint rule: a second unit would only make the
            # loop's checkpoints come twice as often. Waiting still yields.
            self._window = RateLimiter(limit, period=window, fast_acquire=True)
        self._batches: list[BoundedQueue[Any]] = []
        # The counts of the batches that have ended, and the share of the
        # concurrency limit the running ones hold.
        self._batch_ledger = dict.fromkeys(self._ledger(), 0)
        self._batch_share = 0

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
        limit on workers. With ``rate_limited=True``, at most
        ``queue_capacity`` items start in any window of
        ``capacity_refresh_time`` seconds.

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
        return f"{super().__repr__()[:-1]} limit={self._concurrency_limit}>"

    # -- properties --------------------------------------------------------

    @property
    def metrics(self) -> dict[str, int]:
        """A snapshot of the counters, as in :attr:`BoundedQueue.metrics`.

        Includes the items of :meth:`batch_process` runs, finished or running.
        """
        totals = self._ledger()
        for name, value in self._batch_ledger.items():
            totals[name] += value
        for batch in self._batches:
            for name, value in batch.metrics.items():
                totals[name] += value
        return totals

    @property
    def worker_count(self) -> int:
        """Workers running now, for :meth:`process` and for batches.

        Workers start as items wait and retire when idle, so this is at most
        ``concurrency_limit``.
        """
        return super().worker_count + sum(b.worker_count for b in self._batches)

    @property
    def concurrency_limit(self) -> int | None:
        """The most items processed at once, or ``None`` for no limit."""
        return self._concurrency_limit

    @property
    def rate_limit(self) -> tuple[int, float] | None:
        """``(items, seconds)``: at most that many starts per window, or ``None``."""
        window = self._window
        return None if window is None else (int(window.rate), window.period)

    # -- workers -------------------------------------------------------------

    def _grant(self, num_workers: int | None) -> int:
        """Grant a share of the concurrency limit, without yielding."""
        limit = self._concurrency_limit
        if num_workers is None:
            count = 1 if limit is None else limit
        else:
            count = check_count("num_workers", num_workers)
        granted = sum(crew.cap for crew in self._crews) + self._batch_share
        if limit is not None and granted + count > limit:
            raise ValueError(
                f"starting {count} worker(s) next to the {granted} already granted "
                f"would exceed concurrency_limit={limit}"
            )
        return count

    async def process(
        self,
        worker_func: WorkerFunc[T],
        num_workers: int | None = None,
        error_handler: ErrorHandler[T] | None = None,
    ) -> None:
        """Let workers call ``worker_func`` on each item put in the queue.

        Up to ``num_workers`` of them run at once; they start as items wait
        and retire when idle. Errors are handled as in
        :meth:`BoundedQueue.start_workers`.

        :param worker_func: the async function that processes one item
        :param num_workers: the most workers; ``None`` means
            ``concurrency_limit``, or 1 without a limit
        :param error_handler: async function called with the exception and
            the item whose processing raised it
        :raises ValueError: if ``num_workers`` is below 1 or would exceed the
            concurrency limit together with the workers already granted
        :raises TypeError: as :meth:`BoundedQueue.start_workers` does
        :raises QueueStateError: if the queue is not running
        """
        if num_workers is not None:
            check_count("num_workers", num_workers)
        await self._attach(
            "process", worker_func, error_handler, lambda: self._grant(num_workers)
        )

    def _paced(self, worker_func: WorkerFunc[T]) -> WorkerFunc[T]:
        if self._window is None:
            return worker_func
        return rate_limited(self._window, worker_func, self._unfailed)

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
        call returns when every item has been processed. Workers start as
        items wait, so a small batch with a large limit starts only as many
        workers as it has items.

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
        :param num_workers: the most workers; ``None`` means
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
                items = iter(items)  # the same iterator is read by feed()
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
        state: BatchState[T, R] = BatchState(
            worker_func,
            error_handler,
            self._window,
            collect_results,
            on_progress,
            total,
            self._logger,
        )
        # The batch holds its share of the limit until it ends.
        count = self._grant(num_workers)
        self._batch_share += count
        queue: BoundedQueue[tuple[int, T]] = BoundedQueue(
            self._maxsize,
            math.inf,
            self._logger,
            worker_idle_timeout=self._idle_timeout,
        )
        self._batches.append(queue)
        held: list[T] = []  # an item feed() took but put() did not accept
        try:
            async with queue:  # on an error, stops with timeout=0
                await queue.start_workers(state.run, count, state.on_error)
                await feed(queue, items, held)
                await queue.join()
        except BaseException:
            self._end_batch(queue, count, held, interrupted=True)
            raise
        self._end_batch(queue, count, held, interrupted=False)
        return BatchSummary(
            total=state.done,
            succeeded=state.done - state.failed,
            failed=state.failed,
            results=state.results,
            errors=state.errors,
        )

    def _end_batch(
        self,
        queue: BoundedQueue[tuple[int, T]],
        count: int,
        held: list[T],
        *,
        interrupted: bool,
    ) -> None:
        self._batch_share -= count
        self._batches.remove(queue)
        ledger = self._batch_ledger
        for name, value in queue.metrics.items():
            ledger[name] += value
        if interrupted:
            # An interrupted batch always replaces .unprocessed, even with
            # nothing to hand back, so that it never shows older items. The
            # item read from the iterable but not accepted yet counts as
            # taken and handed back, like the others.
            leftovers = [item for _, item in queue.unprocessed] + held
            ledger["enqueued"] += len(held)
            ledger["handed_back"] += len(held)
            self._hand_back = HandBack(
                leftovers, self._logger, f"{self._name}.batch_process"
            )
