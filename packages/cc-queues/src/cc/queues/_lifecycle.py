"""The life of a queue: start, stop by its host, put, join, and what is refused.

A running queue owns a task group opened by the task that calls
:meth:`~QueueBase.start` (its *host*), holding the queue's supervisor (see
:mod:`cc.queues._supervisor`), which owns the workers. The host closes that
task group when it stops the queue or leaves ``async with``; a queue whose
host ended without doing so stops itself (the orphan rule of
:class:`~cc.queues.BoundedQueue`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

import anyio
from anyio.abc import TaskGroup

from cc.primitives.lowlevel import checkpoint, take_checkpoint
from cc.queues._buffer import NO_HOST
from cc.queues._pool import ErrorHandler, WorkerFunc
from cc.queues._status import QueueStateError, QueueStatus
from cc.queues._supervisor import HandBack, Supervisor
from cc.queues._validation import (
    check_async_callable,
    check_bool,
    check_count,
    check_logger,
    check_timeout,
)

__all__ = ["LOGGER", "QueueBase"]

T = TypeVar("T")
_Q = TypeVar("_Q", bound="QueueBase[Any]")

# The public logger: the queues log here unless given a logger of their own.
LOGGER = logging.getLogger("cc.queues")

_IDLE = QueueStatus.IDLE
_PROCESSING = QueueStatus.PROCESSING
_STOPPING = QueueStatus.STOPPING
_STOPPED = QueueStatus.STOPPED


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


class QueueBase(Supervisor[T]):
    """What :class:`~cc.queues.BoundedQueue` and :class:`~cc.queues.WorkQueue` share.

    Not public: read the documentation of those two classes.
    """

    __slots__ = ("_host", "_timeout")

    def __init__(
        self,
        maxsize: int,
        timeout: float,
        logger: logging.Logger | None,
        worker_idle_timeout: float,
    ) -> None:
        maxsize = check_count("maxsize", maxsize)
        wait = check_timeout("timeout", timeout)
        idle = check_timeout("worker_idle_timeout", worker_idle_timeout)
        if idle == 0:
            raise ValueError("worker_idle_timeout must be > 0 seconds, got 0")
        logger = check_logger("logger", logger)
        super().__init__(maxsize, LOGGER if logger is None else logger, idle)
        self._timeout = wait
        self._host: object = None

    def __repr__(self) -> str:
        return (
            f"<{self._name} {self._status.value} "
            f"size={len(self._items)}/{self._maxsize} workers={self.worker_count}>"
        )

    # -- what can be seen --------------------------------------------------

    @property
    def status(self) -> QueueStatus:
        """Where the queue is in its lifecycle.

        A queue whose starting task has ended without stopping it reads
        :attr:`~QueueStatus.STOPPING` at once (the queue stops itself and
        hands back what it did not process), then
        :attr:`~QueueStatus.STOPPED`.
        """
        if self._status is _PROCESSING and self._host_coro.cr_frame is None:
            self._orphan()
        return self._status

    @property
    def metrics(self) -> dict[str, int]:
        """A snapshot of the queue's counters (a new dict on every access).

        * ``enqueued``: items accepted by :meth:`put`
        * ``processed``: items a worker processed without error, plus items
          from ``get()`` marked with ``task_done()``
        * ``errors``: items whose worker function raised
        * ``backpressure_events``: :meth:`put` calls that found the queue
          full, so that backpressure applied: each waited for room (or, with
          a timeout of 0, gave up at once), whether or not room came in time
        * ``refused_puts``: those of them that gave up and returned ``False``
          (the item was not added)
        * ``handed_back``: items handed back unprocessed by a stop

        Every accepted item ends as exactly one of processed, errors or
        handed back, so once the queue has stopped (and every ``get()``
        item is marked done), ``enqueued == processed + errors +
        handed_back``.
        """
        return self._ledger()

    @property
    def unprocessed(self) -> list[T]:
        """The items handed back by the latest stop (a copy).

        Useful after ``async with``, whose exit stops the queue for you.
        Reading it *collects* them: items handed back and never collected
        (neither read here nor taken from :meth:`stop`'s result) are
        reported with a warning on the ``cc.queues`` logger when they are
        dropped, that is when the queue starts again or is garbage
        collected. Emptied when the queue is started again.
        """
        return self._hand_back.collect()

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
        if self._task_group is not None:
            await self._stop(None if exc is None else 0, drain=False)

    async def start(self) -> None:
        """Start the queue: open its task group and accept items.

        The calling task becomes the queue's host: it must be the task that
        later calls :meth:`stop` (or leaves ``async with``). A stopped queue
        may be started again; its counters keep running.

        :raises QueueStateError: if the queue is already running or stopping,
            or was stopped by :meth:`request_stop` and its host has not
            closed its task group yet (and the caller is not that host)
        """
        await checkpoint()  # first: a cancelled start() changes nothing
        status = self.status
        if status is _PROCESSING or status is _STOPPING:
            raise QueueStateError(
                f"start() needs an idle or stopped queue; this one is {status.value}",
                status,
            )
        current = anyio.get_current_task()
        if self._task_group is not None:
            if current.id != self._host:
                raise QueueStateError(
                    "start() refused: the queue was stopped by request, and the "
                    "task that started it has not left 'async with' or called "
                    "stop() yet (its task group is still open)",
                    status,
                )
            await self._close(self._task_group)
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        self._host = current.id
        coro = current.coro
        self._host_coro = coro if hasattr(coro, "cr_frame") else NO_HOST
        self._accepting = self._serving = self._host_coro
        self._run += 1
        self._hand_back = HandBack([], self._logger, self._name)
        self._failure = None
        self._orphaned = False
        self._stop_deadline = None
        self._stop_signal = anyio.Event()
        self._stopped = anyio.Event()
        self._host_stops = False
        self._status = _PROCESSING
        task_group.start_soon(
            self._supervise, name=f"cc.queues {self._name} supervisor"
        )

    async def stop(
        self,
        timeout: float | None = None,  # noqa: ASYNC109 - the documented API
        *,
        drain: bool = False,
    ) -> list[T]:  # fmt: skip
        """Stop the queue and its workers; hand back what was not processed.

        The queue stops accepting items at once: producers waiting in
        :meth:`put` get a :class:`QueueStateError`. Without ``drain``, it
        also stops handing items out: consumers waiting in ``get()`` get a
        :class:`QueueStateError`, idle workers exit, and busy workers finish
        the item in hand. With ``drain=True``, workers (and ``get()``
        callers) go on with the items already queued until every accepted
        item is finished, as :meth:`join` would wait for. With a
        ``timeout``, whatever is still busy after that many seconds is
        cancelled (``0`` cancels it at once) and every item not finished is
        handed back: so ``stop(timeout=N, drain=True)`` means "finish what
        is queued within N seconds, then hand back the rest". Stopping an
        idle or stopped queue does nothing.

        :param timeout: seconds to let the workers finish (the item in hand,
            or with ``drain`` everything queued), or ``None`` to wait as long
            as they take
        :param drain: whether to process the items already queued before
            stopping
        :return: the items handed back, which are also kept in
            :attr:`unprocessed` and counted in ``metrics["handed_back"]``:
            first those whose processing was interrupted, then those still
            queued, in queue order
        :raises QueueStateError: if called from a task other than the one
            that started the queue while that task is still running (use
            :meth:`request_stop` there)
        :raises ValueError: for a negative or NaN ``timeout``
        :raises TypeError: for a ``drain`` that is not a bool, or if the work
            stopped because ``worker_func`` or ``error_handler`` returned
            something that is not awaitable (see ``start_workers()``; the
            queue is stopped all the same)
        :raises BaseExceptionGroup: if a worker crashed with a
            :class:`BaseException` (the queue is stopped all the same)
        """
        if await self._stop(timeout, drain):
            return self._hand_back.collect()
        return []

    async def _stop(self, timeout: float | None, drain: bool) -> bool:  # noqa: ASYNC109
        """Stop the running queue, if any: whether this call stopped a run."""
        wait = None if timeout is None else check_timeout("timeout", timeout)
        check_bool("drain", drain)
        task_group = self._task_group
        if task_group is None:
            await checkpoint()
            return False
        if anyio.get_current_task().id != self._host:
            if self._host_coro.cr_frame is not None:
                raise QueueStateError(
                    "stop() must be called by the task that started the queue, "
                    "because the queue's task group belongs to that task; from "
                    "another task, call queue.request_stop() (and await "
                    "queue.wait_stopped()), or use 'async with' around the queue",
                    self._status,
                )
            # The host ended without stopping the queue: its task group can
            # no longer be closed; the supervisor does everything else.
            self._orphan()
            stopped = self._stopped
            assert stopped is not None
            await stopped.wait()
            self._forget_host()
            if self._failure is not None:
                raise self._failure
            return True
        deadline = math.inf if wait is None else anyio.current_time() + wait
        self._request_stop(deadline, drain, by_host=True)
        await self._close(task_group)
        return True

    async def _close(self, task_group: TaskGroup) -> None:
        """Close the host's task group (the host only), ending the run.

        When the host's own :meth:`stop` stops the queue, the steps run
        here: the drain, if any; the end of serving; then the task group's
        exit waits for the workers (cancelled at the stop's deadline).
        """
        pending: BaseException | None = None
        if self._host_stops:
            try:
                await self._drain()
            except BaseException as exc:  # a crash, or the host cancelled
                pending = exc
            self._end_serving()
        try:
            if pending is None:
                await task_group.__aexit__(None, None, None)
            elif not await task_group.__aexit__(
                type(pending), pending, pending.__traceback__
            ):
                raise pending
        except BaseException as exc:
            failure = self._failure
            if failure is not None and _only(exc, failure):
                raise failure from None
            raise
        finally:
            self._forget_host()
            self._end_run()  # unless the supervisor ended it already

    def _forget_host(self) -> None:
        self._task_group = None
        self._host = None
        self._host_coro = NO_HOST

    # -- producing -----------------------------------------------------------

    def _refusal(self, operation: str) -> QueueStateError:
        """Build the error for an operation the queue's state does not allow."""
        if self._host_coro.cr_frame is None:  # the host has ended
            self._orphan()
        status = self._status
        if self._orphaned:
            return QueueStateError(
                f"{operation}() refused: the task that started this queue has "
                "ended without stopping it, leaving the queue's task group open "
                "(the task that calls start() must also call stop(), and must "
                "not end in between); the queue stopped and handed back what it "
                "had not processed (see .unprocessed)",
                status,
            )
        if self._failure is not None:
            state = "is stopping" if status is _STOPPING else "stopped"
            return QueueStateError(
                f"{operation}() refused: the queue {state} because {self._failure}",
                status,
            )
        return QueueStateError(
            f"{operation}() needs a running queue, but this one is {status.value}; "
            "start it with 'await queue.start()' or 'async with queue:'",
            status,
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
        :raises QueueStateError: if the queue is not running (its host
            ended, it is stopping, or it was never started), or stops while
            this call waits (the item was not added)
        :raises ValueError: for a negative or NaN ``timeout``
        """
        if self._accepting.cr_frame is None:  # stopped, or its host has ended
            raise self._refusal("put")
        if timeout is not None:
            timeout = check_timeout("timeout", timeout)
        if next(self._due):  # the toolkit's one checkpoint rule
            self._due = await take_checkpoint(self._due)
            if self._accepting.cr_frame is None:  # it may have stopped meanwhile
                raise self._refusal("put")
        if len(self._items) + self._woken_putters < self._maxsize:
            self._admit(item)
            return True
        # No room: backpressure applies, whether or not a slot comes in time.
        self._backpressure_events += 1
        wait = self._timeout if timeout is None else timeout
        if wait > 0 and await self._wait_for_room(wait):
            self._admit(item)
            return True
        self._refused_puts += 1
        return False

    async def join(self) -> None:
        """Wait until every accepted item has been finished.

        An item is finished when a worker has processed it (successfully or
        not), when ``task_done()`` marks an item from ``get()``, or when a
        stop hands it back. Returns at once if nothing is pending (following
        the toolkit's checkpoint rule, see the class documentation).
        """
        if self._status is _PROCESSING and self._host_coro.cr_frame is None:
            self._orphan()
        await self._join()

    async def _attach(
        self,
        operation: str,
        worker_func: WorkerFunc[T],
        error_handler: ErrorHandler[T] | None,
        grant: Callable[[], int],
    ) -> None:
        """Add a crew of up to ``grant()`` workers, if the queue is running.

        The functions are checked first, and the share granted after the
        checkpoint, without yielding before the crew is added.
        """
        worker_func = check_async_callable("worker_func", worker_func)
        if error_handler is not None:
            error_handler = check_async_callable("error_handler", error_handler)
        worker_func = self._paced(worker_func)
        if next(self._due):  # the toolkit's one checkpoint rule
            self._due = await take_checkpoint(self._due)
        if self._accepting.cr_frame is None:  # stopped, or its host has ended
            raise self._refusal(operation)
        self._add_crew(worker_func, error_handler, grant())

    def _paced(self, worker_func: WorkerFunc[T]) -> WorkerFunc[T]:
        """Return ``worker_func`` as the workers call it (a WorkQueue paces it)."""
        return worker_func
