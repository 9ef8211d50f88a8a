"""A bounded FIFO queue with backpressure, worker tasks and a clean shutdown.

How waiting works (and why it is cheap):

* Items live in one ``deque``. Producers that find the queue full and
  consumers (``get()`` callers and workers) that find it empty park on an
  :class:`anyio.Event` of their own, kept in FIFO deques of waiters. An
  operation that does not have to wait allocates nothing: no event, no cancel
  scope, no timeout.
* When an item arrives, the oldest waiting consumer is woken directly and
  *reserved* that item (``_woken_getters`` counts reservations); when an item
  leaves, the oldest waiting producer is woken and reserved the free slot
  (``_woken_putters``). The fast paths only use what is not reserved, so a
  newcomer cannot barge in front of a task that was already woken, and a
  timed ``put()`` that was woken always gets its slot. Tasks woken in the
  same scheduling round may resume in any order (trio randomizes it), so
  among *those*, which consumer takes which item, or whose item lands
  first, is the backend's choice; everything else is first in, first out.
* Reservations are never lost: a woken task that is cancelled, or that finds
  the queue stopped when it resumes, passes its reservation on to the next
  waiter. Items stay in the ``deque`` until a task takes them, so a
  cancellation can never drop one.
* Idle workers wait exactly like ``get()``: no timeouts, no polling.
  ``stop()`` wakes every waiter at once.

Checkpoint policy: ``put()``, ``get()`` and the workers' loop complete
without yielding when they need not wait (as :class:`asyncio.Queue` does),
because a full anyio checkpoint costs several times an uncontended hand-off.
To keep a loop of such calls from starving the event loop (or from never
noticing a cancellation), every 64th call on a queue is a full checkpoint.
Any call that waits is, of course, a checkpoint.
"""

from __future__ import annotations

import logging
import math
import reprlib
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Generic, TypeVar

import anyio
from anyio.abc import TaskGroup
from anyio.lowlevel import checkpoint

from cc.queues._errors import QueueStateError
from cc.queues._status import QueueStatus
from cc.queues._validation import (
    NotAwaitableError,
    check_async_callable,
    check_count,
    check_logger,
    check_timeout,
)

__all__ = ["BoundedQueue", "ErrorHandler", "WorkerFunc"]

T = TypeVar("T")
_Q = TypeVar("_Q", bound="BoundedQueue[Any]")

WorkerFunc = Callable[[T], Awaitable[Any]]
"""An async function that processes one item."""

ErrorHandler = Callable[[Exception, T], Awaitable[Any]]
"""An async function called with the exception and the item that raised it."""

_logger = logging.getLogger(__name__)

_IDLE = QueueStatus.IDLE
_PROCESSING = QueueStatus.PROCESSING
_STOPPING = QueueStatus.STOPPING
_STOPPED = QueueStatus.STOPPED

# Every this-many non-waiting operations on a queue, one is a full checkpoint.
_CHECKPOINT_INTERVAL = 64

# How long stop() waits for the workers of an orphaned queue to exit.
_ORPHAN_GRACE = 1.0


class _NoHost:
    """Stands in for the host's coroutine when it cannot be watched."""

    __slots__ = ()
    cr_frame = True  # like a coroutine that has not finished


_NO_HOST = _NoHost()


class _Brief:
    """Formats an item for a log line lazily and at a bounded length."""

    __slots__ = ("item",)

    def __init__(self, item: object) -> None:
        self.item = item

    def __str__(self) -> str:
        return reprlib.repr(self.item)


def _only(error: BaseException, failure: BaseException) -> bool:
    """Return whether ``error`` is ``failure``, alone or in exception groups.

    Groups are recognised by their ``exceptions`` tuple, which the builtin
    class and the ``exceptiongroup`` backport of Python 3.10 share.
    """
    if error is failure:
        return True
    inner = getattr(error, "exceptions", None)
    return (
        isinstance(inner, tuple)
        and bool(inner)
        and all(isinstance(e, BaseException) and _only(e, failure) for e in inner)
    )


class BoundedQueue(Generic[T]):
    """A first-in first-out queue of at most ``maxsize`` items, with workers.

    Producers call :meth:`put`, which applies backpressure: when the queue is
    full it waits up to a timeout for room and returns ``False`` (counting a
    backpressure event) if none comes. Items are consumed either by hand with
    :meth:`get` and :meth:`task_done`, or by worker tasks started with
    :meth:`start_workers`, which call an async function on each item. The
    queue only accepts and hands out items while it is
    :attr:`~QueueStatus.PROCESSING`.

    **Lifecycle.** The worker tasks live in a task group that the queue owns.
    ``async with queue:`` is the structured way to run it: the block starts
    the queue and leaving it stops the queue (waiting for the workers to
    finish the item in hand, or cancelling them at once if the block raised).
    :meth:`start` and :meth:`stop` do the same imperatively, with the
    constraint every anyio task group has: the task that calls :meth:`start`
    must be the one that calls :meth:`stop`, and any cancel scope or task
    group it opens in between must be closed before :meth:`stop` (pair them
    with ``try``/``finally``; to bound the time :meth:`stop` takes, use its
    ``timeout`` rather than wrapping it in ``anyio.fail_after``). Otherwise
    the backend refuses to close the task group: anyio raises a
    :class:`RuntimeError` about cancel scope nesting and trio reports
    "nursery misnesting". :meth:`stop` from any other task raises
    :class:`QueueStateError` instead of corrupting the task group.

    If the starting task *ends* without stopping the queue (say
    :meth:`start` ran in a child task), the backend reports it as above
    and the queue notices too: :attr:`status` reads
    :attr:`~QueueStatus.STOPPING`, :meth:`put`, :meth:`get` and
    :meth:`start_workers` raise :class:`QueueStateError` saying so (a
    :meth:`put` or :meth:`get` that need not wait checks only on its
    periodic checkpoint, so up to 63 of them may still succeed first: the
    check costs more than the hand-off itself; the items they add are not
    lost), and
    :meth:`stop`, from any task, cancels the workers (waiting up to one
    second for them to exit) and hands back every item queued or
    interrupted; an item a worker drops even later is added to
    :attr:`unprocessed` when it does. A cancel scope or task group that the
    starting task opened after :meth:`start` and closed before :meth:`stop`
    cannot be detected through anyio's public API: the backend raises when
    it closes, the queue keeps running, and its starting task can still stop
    it (and gets every item back) as usual. While the
    queue runs, its starting task is inside the queue's task group, so if a
    worker ever crashes (workers catch :class:`Exception`; only a
    :class:`BaseException` such as :class:`KeyboardInterrupt` gets through)
    that task is cancelled and :meth:`stop` re-raises the crash.

    **Nothing is lost.** Every item accepted by :meth:`put` is processed,
    reported to the error handler, returned by :meth:`get`, or handed back by
    :meth:`stop` (which returns the items still queued and those whose
    processing it interrupted, and also keeps them in :attr:`unprocessed`).
    Hence, at any moment, ``enqueued == size + processed + errors +
    handed_back`` plus the items being processed or held by :meth:`get`
    callers, and once the queue has stopped and every :meth:`get` item is
    marked done, ``enqueued == processed + errors + handed_back``.

    **Cost.** Waiting producers, consumers and idle workers each sleep on an
    event of their own and are woken directly, first come first served; a
    call that need not wait allocates nothing and, like :class:`asyncio.Queue`,
    does not yield, except that every 64th call on a queue is a full
    checkpoint so that a loop of such calls cannot starve the event loop or
    miss a cancellation. A queue belongs to one event loop and is not
    thread-safe.

    :param maxsize: the most items the queue holds, at least 1
    :param timeout: how long :meth:`put` waits for room by default, in
        seconds (``0`` means do not wait, :data:`math.inf` or an int too
        large for a float wait forever)
    :param logger: where worker errors are logged (default: this module's
        logger, a child of ``cc.queues``)
    :raises ValueError: for a ``maxsize`` below 1 or a negative or NaN
        ``timeout``
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

    __slots__ = (
        "_all_done",
        "_backpressure_events",
        "_enqueued",
        "_errors",
        "_failure",
        "_getters",
        "_handed_back",
        "_host",
        "_host_coro",
        "_interrupted",
        "_items",
        "_logger",
        "_maxsize",
        "_processed",
        "_putters",
        "_refused_puts",
        "_run",
        "_since_checkpoint",
        "_status",
        "_taken",
        "_task_group",
        "_timeout",
        "_unfinished",
        "_unprocessed",
        "_woken_getters",
        "_woken_putters",
        "_workers",
        "_workers_gone",
    )

    def __init__(
        self,
        maxsize: int = 100,
        timeout: float = 0.1,
        logger: logging.Logger | None = None,
    ) -> None:
        self._maxsize = check_count("maxsize", maxsize)
        self._timeout = check_timeout("timeout", timeout)
        logger = check_logger("logger", logger)
        self._logger = _logger if logger is None else logger
        self._status = _IDLE
        self._items: deque[T] = deque()
        # FIFO waiters, and how many of them were woken but have not resumed
        # yet (each holds a reservation on an item or on a free slot).
        self._getters: deque[anyio.Event] = deque()
        self._putters: deque[anyio.Event] = deque()
        self._woken_getters = 0
        self._woken_putters = 0
        self._since_checkpoint = 0
        # Items accepted and not yet finished; join() waits for zero.
        self._unfinished = 0
        self._all_done: anyio.Event | None = None
        # Items returned by get() and not yet marked with task_done().
        self._taken = 0
        self._task_group: TaskGroup | None = None
        self._host: object = None
        # The host task's coroutine (its cr_frame is None once the task has
        # ended), or a stand-in that always looks alive.
        self._host_coro: Any = _NO_HOST
        self._workers_gone: anyio.Event | None = None
        self._run = 0
        self._workers = 0
        self._interrupted: list[T] = []
        self._unprocessed: list[T] = []
        self._enqueued = 0
        self._processed = 0
        self._errors = 0
        self._backpressure_events = 0
        self._refused_puts = 0
        self._handed_back = 0
        # The TypeError that stopped the work (a function that must be async
        # returned no awaitable), raised by stop().
        self._failure: TypeError | None = None

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self._status.value} "
            f"size={len(self._items)}/{self._maxsize} workers={self._workers}>"
        )

    # -- properties --------------------------------------------------------

    @property
    def status(self) -> QueueStatus:
        """Where the queue is in its lifecycle.

        A running queue whose starting task has ended without stopping it
        reports :attr:`~QueueStatus.STOPPING`: it refuses new work and waits
        for :meth:`stop` (see the class documentation).
        """
        status = self._status
        if status is _PROCESSING and self._host_coro.cr_frame is None:
            return _STOPPING
        return status

    @property
    def metrics(self) -> dict[str, int]:
        """A snapshot of the queue's counters (a new dict on every access).

        * ``enqueued``: items accepted by :meth:`put`
        * ``processed``: items a worker processed without error, plus items
          from :meth:`get` marked with :meth:`task_done`
        * ``errors``: items whose worker function raised
        * ``backpressure_events``: :meth:`put` calls that found the queue
          full, so that backpressure applied: each waited for room (or, with
          a timeout of 0, gave up at once), whether or not room came in time
        * ``refused_puts``: those of them that gave up and returned ``False``
          (the item was not added)
        * ``handed_back``: items returned by :meth:`stop` unprocessed
        """
        return {
            "enqueued": self._enqueued,
            "processed": self._processed,
            "errors": self._errors,
            "backpressure_events": self._backpressure_events,
            "refused_puts": self._refused_puts,
            "handed_back": self._handed_back,
        }

    @property
    def size(self) -> int:
        """The number of items waiting in the queue."""
        return len(self._items)

    @property
    def maxsize(self) -> int:
        """The most items the queue holds."""
        return self._maxsize

    @property
    def is_full(self) -> bool:
        """Whether the queue holds ``maxsize`` items."""
        return len(self._items) >= self._maxsize

    @property
    def is_empty(self) -> bool:
        """Whether the queue holds no item."""
        return not self._items

    @property
    def worker_count(self) -> int:
        """The number of worker tasks currently running."""
        return self._workers

    @property
    def unprocessed(self) -> list[T]:
        """The items handed back by the most recent :meth:`stop` (a copy).

        Useful after ``async with``, whose exit calls :meth:`stop` for you.
        Emptied when the queue is started again.
        """
        return list(self._unprocessed)

    # -- lifecycle ---------------------------------------------------------

    async def __aenter__(self: _Q) -> _Q:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task_group is None:
            return  # stopped inside the block already
        leftovers = await self.stop(timeout=None if exc is None else 0)
        if leftovers:
            self._logger.warning(
                "%s stopped with %d unprocessed item(s); they are in .unprocessed",
                type(self).__name__,
                len(leftovers),
            )

    async def start(self) -> None:
        """Start the queue: open its task group and accept items.

        The calling task becomes the queue's host: it must be the task that
        later calls :meth:`stop` (see the class documentation). A stopped
        queue may be started again; its counters keep running.

        :raises QueueStateError: if the queue is already running or stopping
        """
        status = self._status
        if status is _PROCESSING or status is _STOPPING:
            raise QueueStateError(
                f"start() needs an idle or stopped queue; this one is {status.value}",
                status,
            )
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        host = anyio.get_current_task()
        self._host = host.id
        coro = host.coro
        self._host_coro = coro if hasattr(coro, "cr_frame") else _NO_HOST
        self._run += 1
        self._unprocessed = []
        self._failure = None
        self._status = _PROCESSING

    # The documented API takes a timeout (ASYNC109 prefers a caller's scope).
    async def stop(self, timeout: float | None = None) -> list[T]:  # noqa: ASYNC109
        """Stop the queue and its workers; hand back what was not processed.

        The queue stops accepting and handing out items at once: producers
        waiting in :meth:`put` and consumers waiting in :meth:`get` get a
        :class:`QueueStateError`, idle workers exit, and busy workers finish
        the item in hand. With a ``timeout``, workers still busy after that
        many seconds are cancelled (``0`` cancels them at once). Stopping an
        idle or stopped queue does nothing.

        :param timeout: seconds to let busy workers finish, or ``None`` to
            wait as long as they take
        :return: the items handed back, which are also kept in
            :attr:`unprocessed` and counted in ``metrics["handed_back"]``:
            first those whose processing was interrupted, then those still
            queued, in queue order
        :raises QueueStateError: if called from a task other than the one
            that started the queue, while that task is still running
        :raises ValueError: for a negative or NaN ``timeout``
        :raises TypeError: if the work stopped because ``worker_func`` or
            ``error_handler`` returned something that is not awaitable (see
            :meth:`start_workers`; the queue is stopped all the same)
        :raises BaseExceptionGroup: if a worker crashed with a
            :class:`BaseException` (the queue is stopped all the same)
        """
        wait = None if timeout is None else check_timeout("timeout", timeout)
        status = self._status
        task_group = self._task_group
        if status is _IDLE or status is _STOPPED or task_group is None:
            await checkpoint()
            return []
        if anyio.get_current_task().id != self._host:
            if self._host_coro.cr_frame is None:
                return await self._stop_orphaned(task_group)
            raise QueueStateError(
                "stop() must be called by the task that started the queue, because "
                "the workers' task group belongs to that task; signal that task "
                "instead (or use 'async with' around the queue)",
                status,
            )
        self._status = _STOPPING
        queued = list(self._items)
        self._items.clear()
        self._release_waiters()
        try:
            if wait is not None:
                scope = task_group.cancel_scope
                scope.deadline = min(scope.deadline, anyio.current_time() + wait)
            await task_group.__aexit__(None, None, None)
        except BaseException as exc:
            failure = self._failure
            if failure is not None and _only(exc, failure):
                raise failure from None
            raise
        finally:
            self._task_group = None
            self._host = None
            self._host_coro = _NO_HOST
            # Every worker has exited (a task cancelled before its first step
            # never runs its own bookkeeping).
            self._workers = 0
            leftovers = self._interrupted + queued
            self._interrupted = []
            self._hand_back(leftovers)
            self._status = _STOPPED
        return leftovers

    async def _stop_orphaned(self, task_group: TaskGroup) -> list[T]:
        """Stop a queue whose host task ended without stopping it.

        Its task group can no longer be closed (the backend has already
        reported the misnesting, and has cancelled or is cancelling the
        workers), so this cancels the workers, waits up to
        ``_ORPHAN_GRACE`` seconds for them to exit, and hands back every
        item queued or interrupted.
        """
        self._status = _STOPPING
        queued = list(self._items)
        self._items.clear()
        self._release_waiters()
        try:
            task_group.cancel_scope.cancel()
            if self._workers:
                gone = self._workers_gone = anyio.Event()
                with anyio.move_on_after(_ORPHAN_GRACE, shield=True):
                    await gone.wait()
            else:
                await checkpoint()
        finally:
            self._workers_gone = None
            self._task_group = None
            self._host = None
            self._host_coro = _NO_HOST
            self._workers = 0
            leftovers = self._interrupted + queued
            self._interrupted = []
            self._hand_back(leftovers)
            self._status = _STOPPED
        self._logger.warning(
            "%s was stopped after the task that started it had ended without "
            "stopping it; %d item(s) handed back",
            type(self).__name__,
            len(leftovers),
        )
        if self._failure is not None:
            raise self._failure
        return leftovers

    def _release_waiters(self) -> None:
        """Wake every waiting producer and consumer; they see the queue stop."""
        for event in self._getters:
            event.set()
        self._woken_getters += len(self._getters)
        self._getters.clear()
        for event in self._putters:
            event.set()
        self._woken_putters += len(self._putters)
        self._putters.clear()

    def _hand_back(self, leftovers: list[T]) -> None:
        count = len(leftovers)
        self._unprocessed = leftovers
        self._handed_back += count
        self._unfinished -= count
        if self._unfinished == 0:
            self._wake_joiners()
        if count:
            self._logger.debug("%r handed back %d item(s)", self, count)

    async def start_workers(
        self,
        worker_func: WorkerFunc[T],
        num_workers: int,
        error_handler: ErrorHandler[T] | None = None,
    ) -> None:
        """Start ``num_workers`` tasks that call ``worker_func`` on each item.

        Each worker takes the next item, awaits ``worker_func(item)`` and
        counts it as processed, then takes the next; an idle worker sleeps
        until an item arrives or the queue stops. If ``worker_func`` raises an
        :class:`Exception`, the item is counted in ``metrics["errors"]`` and
        ``await error_handler(exc, item)`` is called, or, without a handler,
        the error is logged with its traceback. An exception raised by the
        handler is logged too; the worker carries on either way. Calling this
        again adds more workers (with their own function).

        :param worker_func: the async function that processes one item (its
            return value is ignored)
        :param num_workers: how many workers to start, at least 1
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
        worker_func = check_async_callable("worker_func", worker_func)
        if error_handler is not None:
            error_handler = check_async_callable("error_handler", error_handler)
        await checkpoint()
        task_group = self._task_group
        if (
            self._status is not _PROCESSING
            or task_group is None
            or self._host_coro.cr_frame is None
        ):
            raise self._not_running("start_workers")
        name = getattr(worker_func, "__qualname__", type(worker_func).__qualname__)
        for _ in range(count):
            task_group.start_soon(
                self._work, worker_func, error_handler, name=f"cc.queues worker {name}"
            )
        self._workers += count

    async def _work(
        self, worker_func: WorkerFunc[T], error_handler: ErrorHandler[T] | None
    ) -> None:
        """One worker: take items and process them until the queue stops."""
        items = self._items
        try:
            await self._work_loop(items, worker_func, error_handler)
        except NotAwaitableError as misuse:
            raise self._fail(misuse) from None
        finally:
            self._workers -= 1
            if not self._workers and self._workers_gone is not None:
                self._workers_gone.set()

    def _fail(self, misuse: NotAwaitableError) -> TypeError:
        """Stop the work after a misuse: take no new item, refuse new ones.

        The worker raises the returned error out of its task, so the task
        group cancels the other workers (their items are handed back) and
        the host, whose :meth:`stop` then raises it.
        """
        failure = TypeError(str(misuse))
        if self._failure is None:
            self._failure = failure
        if self._status is _PROCESSING:
            self._status = _STOPPING
            self._release_waiters()
        return failure

    async def _work_loop(
        self,
        items: deque[T],
        worker_func: WorkerFunc[T],
        error_handler: ErrorHandler[T] | None,
    ) -> None:
        """Take items and process them until the queue stops."""
        while True:
            self._since_checkpoint += 1
            if self._since_checkpoint >= _CHECKPOINT_INTERVAL:
                self._since_checkpoint = 0
                await checkpoint()
            if self._status is not _PROCESSING:
                return
            if len(items) <= self._woken_getters and not await self._wait_for_item():
                return
            item = self._take()
            try:
                await worker_func(item)
            except Exception as exc:
                self._errors += 1
                try:
                    if isinstance(exc, NotAwaitableError):
                        raise
                    await self._report_error(exc, item, error_handler)
                finally:
                    self._finish_one()
            except BaseException:
                # Cancelled by stop(timeout) (or a crash): hand it back.
                if self._status is _STOPPED:
                    # Too late for the stop() of an orphaned queue.
                    self._unprocessed.append(item)
                    self._handed_back += 1
                    self._finish_one()
                else:
                    self._interrupted.append(item)
                raise
            else:
                self._processed += 1
                self._finish_one()

    async def _report_error(
        self, exc: Exception, item: T, error_handler: ErrorHandler[T] | None
    ) -> None:
        if error_handler is None:
            self._logger.error("worker failed on item %s", _Brief(item), exc_info=exc)
            return
        try:
            await error_handler(exc, item)
        except NotAwaitableError:
            raise
        except Exception:
            self._logger.exception(
                "error handler %r failed on item %s", error_handler, _Brief(item)
            )

    # -- producing and consuming -------------------------------------------

    def _not_running(self, operation: str) -> QueueStateError:
        status = self._status
        if self._failure is not None and status is _STOPPING:
            return QueueStateError(
                f"{operation}() refused: the queue is stopping because {self._failure}",
                status,
            )
        if status is _PROCESSING:  # but its host task has ended
            return QueueStateError(
                f"{operation}() refused: the task that started this queue has "
                "ended without stopping it, leaving the queue's task group open "
                "(the task that calls start() must also call stop(), and must "
                "not end in between); call 'await queue.stop()' from any task to "
                "hand back the items still queued",
                _STOPPING,
            )
        return QueueStateError(
            f"{operation}() needs a running queue, but this one is {status.value}; "
            "start it with 'await queue.start()' or 'async with queue:'",
            status,
        )

    def _stopped_while_waiting(self, operation: str) -> QueueStateError:
        return QueueStateError(
            f"the queue stopped while {operation}() was waiting", self._status
        )

    async def put(self, item: T, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Add ``item`` at the end of the queue, waiting for room if it is full.

        Returns at once when there is room. When the queue is full,
        backpressure applies (``metrics["backpressure_events"]`` counts the
        call) and it waits up to ``timeout`` seconds for a slot; if none
        frees up, the item is not added, ``metrics["refused_puts"]`` counts
        the call too and the result is ``False``. Producers waiting for room
        are woken first come, first served, and a woken producer's slot
        cannot be taken by another. If the caller is cancelled while
        waiting, the item is not added.

        :param item: the item to add
        :param timeout: seconds to wait for room; ``None`` uses the queue's
            default timeout, ``0`` tries once without waiting and
            :data:`math.inf` (or an int too large for a float) waits as long
            as it takes
        :return: whether the item was added
        :raises QueueStateError: if the queue is not running, or stops while
            this call waits (the item was not added)
        :raises ValueError: for a negative or NaN ``timeout``
        """
        if self._status is not _PROCESSING:
            raise self._not_running("put")
        if timeout is not None:
            timeout = check_timeout("timeout", timeout)
        self._since_checkpoint += 1
        if self._since_checkpoint >= _CHECKPOINT_INTERVAL:
            self._since_checkpoint = 0
            await checkpoint()
            if self._host_coro.cr_frame is None:  # the host task has ended
                raise self._not_running("put")
            # Anything may have happened meanwhile (even a stop): start over.
            return await self.put(item, timeout)
        if len(self._items) + self._woken_putters < self._maxsize:
            self._admit(item)
            return True
        if self._host_coro.cr_frame is None:  # the host task has ended
            raise self._not_running("put")
        # No room: backpressure applies, whether or not a slot comes in time.
        self._backpressure_events += 1
        wait = self._timeout if timeout is None else timeout
        if wait > 0 and await self._wait_for_room(wait):
            self._admit(item)
            return True
        self._refused_puts += 1
        return False

    def _admit(self, item: T) -> None:
        items = self._items
        items.append(item)
        self._enqueued += 1
        self._unfinished += 1
        if self._getters and len(items) > self._woken_getters:
            self._woken_getters += 1
            self._getters.popleft().set()

    async def _wait_for_room(self, wait: float) -> bool:
        """Wait for a free slot: ``True`` once reserved, ``False`` on timeout."""
        run = self._run
        event = anyio.Event()
        self._putters.append(event)
        try:
            if wait == math.inf:
                await event.wait()
            else:
                with anyio.move_on_after(wait):
                    await event.wait()
        except BaseException:
            if event.is_set():
                self._woken_putters -= 1
                self._wake_putter()
            else:
                self._putters.remove(event)
            raise
        if not event.is_set():
            self._putters.remove(event)
            return False
        self._woken_putters -= 1
        if self._status is _PROCESSING and self._run == run:
            return True
        self._wake_putter()
        raise self._stopped_while_waiting("put")

    def _wake_putter(self) -> None:
        """Wake the oldest waiting producer if a slot is free for it."""
        if self._putters and len(self._items) + self._woken_putters < self._maxsize:
            self._woken_putters += 1
            self._putters.popleft().set()

    async def get(self) -> T:
        """Remove and return the item at the front, waiting for one if empty.

        Consumers waiting for an item are woken first come, first served,
        and the item that wakes one cannot be taken by another.
        Call :meth:`task_done` once the item is dealt with, so that
        :meth:`join` can tell when everything is finished.

        :return: the oldest item in the queue
        :raises QueueStateError: if the queue is not running, or stops while
            this call waits
        """
        if self._status is not _PROCESSING:
            raise self._not_running("get")
        self._since_checkpoint += 1
        if self._since_checkpoint >= _CHECKPOINT_INTERVAL:
            self._since_checkpoint = 0
            await checkpoint()
            if self._host_coro.cr_frame is None:  # the host task has ended
                raise self._not_running("get")
            return await self.get()  # re-check everything after the yield
        if len(self._items) <= self._woken_getters:
            if self._host_coro.cr_frame is None:  # the host task has ended
                raise self._not_running("get")
            if not await self._wait_for_item():
                raise self._stopped_while_waiting("get")
        item = self._take()
        self._taken += 1
        return item

    def _take(self) -> T:
        """Pop the front item and wake a producer waiting for its slot."""
        item = self._items.popleft()
        if self._putters and len(self._items) + self._woken_putters < self._maxsize:
            self._woken_putters += 1
            self._putters.popleft().set()
        return item

    async def _wait_for_item(self) -> bool:
        """Wait until an item is reserved for us: ``False`` if the queue stopped."""
        run = self._run
        event = anyio.Event()
        self._getters.append(event)
        try:
            await event.wait()
        except BaseException:
            if event.is_set():
                self._woken_getters -= 1
                self._wake_getter()
            else:
                self._getters.remove(event)
            raise
        self._woken_getters -= 1
        if self._status is _PROCESSING and self._run == run:
            return True
        self._wake_getter()
        return False

    def _wake_getter(self) -> None:
        """Wake the oldest waiting consumer if an unreserved item is there."""
        if self._getters and len(self._items) > self._woken_getters:
            self._woken_getters += 1
            self._getters.popleft().set()

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
        self._finish_one()

    def _finish_one(self) -> None:
        self._unfinished -= 1
        if self._unfinished == 0:
            self._wake_joiners()

    def _wake_joiners(self) -> None:
        all_done = self._all_done
        if all_done is not None:
            self._all_done = None
            all_done.set()

    async def join(self) -> None:
        """Wait until every accepted item has been finished.

        An item is finished when a worker has processed it (successfully or
        not), when :meth:`task_done` marks an item from :meth:`get`, or when
        :meth:`stop` hands it back. Returns at once (after a checkpoint) if
        nothing is pending.
        """
        if self._unfinished == 0:
            await checkpoint()
            return
        all_done = self._all_done
        if all_done is None:
            all_done = self._all_done = anyio.Event()
        await all_done.wait()
