"""BoundedQueue: a bounded FIFO queue with backpressure, workers and a clean stop."""

from __future__ import annotations

import logging
from typing import TypeVar

from cc.primitives.lowlevel import take_checkpoint
from cc.queues._lifecycle import QueueBase
from cc.queues._pool import ErrorHandler, WorkerFunc
from cc.queues._status import QueueStateError, QueueStatus
from cc.queues._validation import check_count

__all__ = ["BoundedQueue"]

T = TypeVar("T")

_PROCESSING = QueueStatus.PROCESSING


class BoundedQueue(QueueBase[T]):
    """A first-in first-out queue of at most ``maxsize`` items, with workers.

    Producers call :meth:`put`, which applies backpressure: when the queue is
    full it waits up to a timeout for room and returns ``False`` if none
    comes. Items are consumed either by hand with :meth:`get` and
    :meth:`task_done`, or by worker tasks (:meth:`start_workers`), which call
    an async function on each item. The queue only accepts items while it is
    :attr:`~QueueStatus.PROCESSING`.

    **Workers on demand.** :meth:`start_workers` sets how many workers may
    run a function; they start as items wait (never more than there are
    items waiting) and retire once they have been idle for
    ``worker_idle_timeout`` seconds, so an idle pool costs nothing and
    :attr:`worker_count` reports the workers running now. Idle workers sleep
    until an item arrives or the queue stops: nothing polls.

    **Lifecycle.** The workers live in task groups that the queue owns.
    ``async with queue:`` is the structured way to run it: the block starts
    the queue and leaving it stops the queue (waiting for the workers to
    finish the item in hand, or cancelling them at once if the block raised).
    :meth:`start` and :meth:`stop` do the same imperatively, with the
    constraint every anyio task group has: the task that calls :meth:`start`
    (the queue's *host*) must be the one that calls :meth:`stop`, and any
    cancel scope or task group it opens in between must be closed before
    :meth:`stop` (pair them with ``try``/``finally``; to bound the time
    :meth:`stop` takes, use its ``timeout`` rather than wrapping it in
    ``anyio.fail_after``). :meth:`stop` from any other task raises
    :class:`QueueStateError`; any task (or a thread, through an anyio
    portal) may instead call :meth:`request_stop`, which has the queue stop
    itself, and await :meth:`wait_stopped`. ``stop(timeout=N, drain=True)``
    (or ``request_stop(N, drain=True)``) finishes what is queued within N
    seconds, then hands back the rest.

    **A host that ends.** If the host *ends* without stopping the queue (say
    :meth:`start` ran in a request handler or a child task), the queue stops
    from that moment on, whichever call notices first (any call or property
    of the queue, or its supervisor within a second): :attr:`status` reads
    :attr:`~QueueStatus.STOPPING`, then :attr:`~QueueStatus.STOPPED`;
    :meth:`put`, :meth:`get` and :meth:`start_workers` raise
    :class:`QueueStateError` saying why; busy workers are cancelled and
    every item not processed is handed back into :attr:`unprocessed`; a
    warning is logged; and :meth:`stop` from any task returns those items.
    The backend reports the misnesting too (anyio raises a
    :class:`RuntimeError` about cancel scopes, trio a "nursery stack
    corrupted" error). While the queue runs, its host is inside the queue's
    task group, so if a worker crashes (workers catch :class:`Exception`;
    only a :class:`BaseException` such as :class:`KeyboardInterrupt` gets
    through) the host is cancelled and :meth:`stop` re-raises the crash.

    **Nothing is lost.** Every item accepted by :meth:`put` is processed,
    reported to the error handler, returned by :meth:`get`, or handed back by
    a stop (which hands back the items whose processing it interrupted and
    those still queued, keeps them in :attr:`unprocessed`, and returns them
    from :meth:`stop`). Hence, once the queue has stopped and every
    :meth:`get` item is marked done, ``enqueued == processed + errors +
    handed_back``. Items handed back and never collected are reported with
    a warning when they are dropped (see :attr:`unprocessed`).

    **Cost.** Waiting producers, consumers and idle workers park in FIFO
    order on :class:`cc.primitives.lowlevel.ParkingLot` and are woken
    directly, first come first served; a call that need not wait allocates
    nothing and, like :class:`asyncio.Queue`, does not yield, except as the
    toolkit's one checkpoint rule says (see the cc.primitives guide): every
    :data:`~cc.primitives.lowlevel.CHECKPOINT_INTERVAL`-th cc operation on a
    thread that need not wait is a full checkpoint, so that no loop of queue
    calls can starve the event loop, miss a cancellation or outlive its
    deadline by more than two checkpoints. A call that waits ends the
    thread's count, as a checkpoint does, so the task that runs next starts
    a whole one. A queue belongs to one event loop and is not thread-safe.
    It logs on the ``cc.queues`` logger unless given another.

    :param maxsize: the most items the queue holds, at least 1
    :param timeout: how long :meth:`put` waits for room by default, in
        seconds (``0`` means do not wait, :data:`math.inf` or an int too
        large for a float wait forever)
    :param logger: where worker errors and warnings are logged (default:
        the ``cc.queues`` logger)
    :param worker_idle_timeout: how long a worker may stay idle before it
        retires, in seconds (positive; :data:`math.inf`: never)
    :raises ValueError: for a ``maxsize`` below 1, a negative or NaN
        ``timeout``, or a ``worker_idle_timeout`` that is not positive
    :raises TypeError: for a ``maxsize`` that is not an int, a ``timeout``
        that is not a number or a ``logger`` that is not a
        :class:`logging.Logger`

    >>> import anyio
    >>> from cc.queues import BoundedQueue
    >>> async def main() -> list[int]:
    ...     done: list[int] = []
    ...
    ...     async def work(item: int) -> None:
    ...         done.append(item * 10)
    ...
    ...     async with BoundedQueue[int](maxsize=2) as queue:
    ...         await queue.start_workers(work, num_workers=2)
    ...         for item in range(5):
    ...             await queue.put(item, timeout=1.0)
    ...         await queue.join()
    ...     return sorted(done)
    >>> anyio.run(main)
    [0, 10, 20, 30, 40]
    """

    __slots__ = ()

    def __init__(
        self,
        maxsize: int = 100,
        timeout: float = 0.1,
        logger: logging.Logger | None = None,
        *,
        worker_idle_timeout: float = 1.0,
    ) -> None:
        super().__init__(maxsize, timeout, logger, worker_idle_timeout)

    async def start_workers(
        self,
        worker_func: WorkerFunc[T],
        num_workers: int,
        error_handler: ErrorHandler[T] | None = None,
    ) -> None:
        """Let up to ``num_workers`` tasks call ``worker_func`` on each item.

        Workers start as items wait and retire when idle (see the class
        documentation); ``num_workers`` is the most that run at once. Each
        worker takes the next item, awaits ``worker_func(item)`` and counts
        it as processed, then takes the next. If ``worker_func`` raises an
        :class:`Exception`, the item is counted in ``metrics["errors"]`` and
        ``await error_handler(exc, item)`` is called, or, without a handler,
        the error is logged with its traceback. An exception raised by the
        handler is logged too; the worker carries on either way. Calling
        this again adds more workers (with their own function).

        :param worker_func: the async function that processes one item (its
            return value is ignored)
        :param num_workers: the most workers that run it at once, at least 1
        :param error_handler: async function called with the exception and
            the item whose processing raised it
        :raises ValueError: if ``num_workers`` is below 1
        :raises TypeError: if ``num_workers`` is not an int or a function is
            not callable. A function that is not ``async def`` is checked
            when called instead: the first call that returns something that
            is not awaitable (a sync function) stops the work with a
            :class:`TypeError` naming the function, raised once by
            :meth:`stop` (and so by leaving ``async with``), not reported per
            item: its item counts in ``metrics["errors"]``, the other workers
            are cancelled, and every item not processed is handed back
        :raises QueueStateError: if the queue is not running
        """
        count = check_count("num_workers", num_workers)
        await self._attach("start_workers", worker_func, error_handler, lambda: count)

    async def get(self) -> T:
        """Remove and return the item at the front, waiting for one if empty.

        Consumers waiting for an item are woken first come, first served
        (before idle workers), and the item that wakes one cannot be taken
        by another. Call :meth:`task_done` once the item is dealt with, so
        that :meth:`join` can tell when everything is finished. While the
        queue drains (``stop(drain=True)``), :meth:`get` still hands out the
        items queued.

        :return: the oldest item in the queue
        :raises QueueStateError: if the queue is not running, or stops while
            this call waits
        """
        if self._serving.cr_frame is None:  # stopped, or its host has ended
            raise self._refusal("get")
        if next(self._due):  # the toolkit's one checkpoint rule
            self._due = await take_checkpoint(self._due)
            if self._serving.cr_frame is None:  # it may have stopped meanwhile
                raise self._refusal("get")
        if len(self._items) <= self._woken_getters and not await self._wait_for_item(
            self._getters
        ):
            raise QueueStateError(
                "the queue stopped while get() was waiting", self._status
            )
        item = self._take()
        self._taken += 1
        return item

    def task_done(self) -> None:
        """Mark an item returned by :meth:`get` as dealt with.

        It counts as processed. Workers mark their items themselves; this is
        for consumers that call :meth:`get`.

        :raises ValueError: if called more times than :meth:`get` returned
            items
        """
        if self._taken <= 0:
            raise ValueError("task_done() called more times than get() returned items")
        self._taken -= 1
        self._processed += 1
        self._finish()
