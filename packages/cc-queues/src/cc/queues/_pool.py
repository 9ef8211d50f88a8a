"""Workers on demand: crews of workers that start as items wait and retire when idle.

Each :meth:`~cc.queues.BoundedQueue.start_workers` (or
:meth:`~cc.queues.WorkQueue.process`) call adds a *crew*: a worker function,
an error handler and a cap on how many workers may run it. No worker starts
then. When an item arrives and no consumer waits for it, one worker of a
crew with room starts (see :class:`~cc.queues._buffer.Buffer`); a worker
that finds no item sleeps in the queue's lot of idle workers until one
arrives; and the queue's supervisor retires the workers that stayed idle for
``worker_idle_timeout`` seconds. So a pool costs what it uses: none of it
exists before work arrives, and an idle pool shrinks back to nothing, while a
busy one runs exactly ``min(cap, items waiting)`` workers.

Workers live in the queue's task group (the one its host opened), each in a
cancel scope of its own, so that a stop's deadline cancels the workers and
never the host.
"""

from __future__ import annotations

import logging
import math
import reprlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
from anyio.abc import TaskGroup

from cc.primitives.lowlevel import take_checkpoint
from cc.queues._buffer import CLOSED, NO_HOST, Buffer
from cc.queues._status import QueueStatus
from cc.queues._validation import NotAwaitableError, NotStartedError

__all__ = ["Crew", "ErrorHandler", "Pool", "WorkerFunc", "report_error"]

T = TypeVar("T")

WorkerFunc = Callable[[T], Awaitable[Any]]
"""An async function that processes one item."""

ErrorHandler = Callable[[Exception, T], Awaitable[Any]]
"""An async function called with the exception and the item that raised it."""

_PROCESSING = QueueStatus.PROCESSING
_STOPPING = QueueStatus.STOPPING


@dataclass(slots=True, eq=False)
class Crew:
    """The workers of one ``start_workers()``/``process()`` call."""

    worker_func: WorkerFunc[Any]
    error_handler: ErrorHandler[Any] | None
    cap: int
    running: int = 0

    @property
    def name(self) -> str:
        """The name of the crew's worker tasks."""
        func = self.worker_func
        return (
            f"cc.queues worker {getattr(func, '__qualname__', type(func).__qualname__)}"
        )


class Pool(Buffer[T]):
    """The worker pool: crews, starting and retiring workers, the work loop."""

    __slots__ = (
        "_crews",
        "_failure",
        "_host_coro",
        "_interrupted",
        "_live",
        "_logger",
        "_task_group",
        "_worker_deadline",
        "_worker_scopes",
        "_workers_gone",
    )

    def __init__(self, maxsize: int, logger: logging.Logger) -> None:
        super().__init__(maxsize)
        self._logger = logger
        self._crews: list[Crew] = []
        # The host's task group, which the workers run in, while the queue runs.
        self._task_group: TaskGroup | None = None
        # Workers that have started and not finished, their cancel scopes,
        # the deadline a stop set for them, and who waits for the last one.
        self._live = 0
        self._worker_scopes: set[anyio.CancelScope] = set()
        self._worker_deadline = math.inf
        self._workers_gone: anyio.Event | None = None
        # The coroutine of the task that started the queue: its cr_frame is
        # None once that task has ended (see the lifecycle).
        self._host_coro: Any = NO_HOST
        self._interrupted: list[T] = []
        # The TypeError that stopped the work (a function that must be async
        # returned no awaitable), raised by stop().
        self._failure: TypeError | None = None

    @property
    def _name(self) -> str:
        return type(self).__name__

    @property
    def worker_count(self) -> int:
        """The number of worker tasks running now.

        Workers start as items wait and retire when the queue has been idle,
        so this is at most the cap of each ``start_workers()`` call.
        """
        return sum(crew.running for crew in self._crews)

    def _add_crew(
        self,
        worker_func: WorkerFunc[T],
        error_handler: ErrorHandler[T] | None,
        cap: int,
    ) -> None:
        """Let up to ``cap`` more workers run ``worker_func``, from now on."""
        self._crews.append(Crew(worker_func, error_handler, cap))
        self._spare += cap
        # Items already waiting get their workers at once.
        while self._spare and len(self._items) > self._woken_getters + self._starting:
            self._start_worker()

    def _start_worker(self) -> None:
        task_group = self._task_group
        if task_group is None:  # pragma: no cover - _spare is 0 when stopped
            return
        crew = next(c for c in self._crews if c.running < c.cap)
        crew.running += 1
        self._spare -= 1
        self._starting += 1
        task_group.start_soon(self._work, crew, name=crew.name)

    def _retire_crews(self) -> None:
        """No worker may start any more (the queue stops)."""
        self._spare = 0
        for crew in self._crews:
            crew.cap = 0  # a worker that ends frees no room any more

    def _cancel_workers_at(self, deadline: float) -> None:
        """Cancel the workers still busy at ``deadline`` (never the host)."""
        if deadline < self._worker_deadline:
            self._worker_deadline = deadline
            for scope in self._worker_scopes:
                scope.deadline = deadline

    async def _workers_exited(self, *, starting: bool = True) -> None:
        """Wait until every worker has finished.

        :param starting: whether to wait for the workers started and not
            running yet too (not when their task group is cancelled: a task
            cancelled before its first step never runs)
        """
        while self._live or (starting and self._starting):
            gone = self._workers_gone = anyio.Event()
            await gone.wait()

    async def _work(self, crew: Crew) -> None:
        """One worker: take items and process them until told to stop."""
        # One frame, no helper coroutine: each wake-up resumes every frame.
        self._starting -= 1
        self._live += 1
        items = self._items
        idle = self._idle
        worker_func = crew.worker_func
        error_handler = crew.error_handler
        try:
            with anyio.CancelScope(deadline=self._worker_deadline) as scope:
                self._worker_scopes.add(scope)
                while True:
                    if next(self._due):  # the toolkit's one checkpoint rule
                        self._due = await take_checkpoint(self._due)
                    if self._serving.cr_frame is None:  # stopped, or host ended
                        return
                    if len(items) <= self._woken_getters and not (
                        await self._wait_for_item(idle)
                    ):
                        return  # stopped, or retired
                    item = self._take()
                    try:
                        await worker_func(item)
                    except NotStartedError:
                        # Another worker's misuse stopped the work while this
                        # item waited for its start-rate turn: handed back.
                        self._interrupted.append(item)
                        return
                    except Exception as exc:
                        self._errors += 1
                        try:
                            if isinstance(exc, NotAwaitableError):
                                raise
                            await report_error(self._logger, exc, item, error_handler)
                        finally:
                            self._finish()
                    except BaseException:
                        # Cancelled by stop(timeout) (or a crash): hand it back.
                        self._interrupted.append(item)
                        raise
                    else:
                        self._processed += 1
                        self._finish()
        except NotAwaitableError as misuse:
            raise self._fail(misuse) from None
        finally:
            self._worker_scopes.discard(scope)
            self._live -= 1
            crew.running -= 1
            if crew.running < crew.cap:
                self._spare += 1
            gone = self._workers_gone
            if gone is not None:  # the waiter checks again what it waits for
                self._workers_gone = None
                gone.set()

    def _unfailed(self) -> bool:
        """Whether no misuse has stopped the work (new items may start)."""
        return self._failure is None

    def _fail(self, misuse: NotAwaitableError) -> TypeError:
        """Stop the work after a misuse: take no new item, refuse new ones.

        The worker raises the returned error out of its task, which crashes
        the pool, so the other workers are cancelled (their items are handed
        back) and the task that started the queue too, whose :meth:`stop`
        then raises it.
        """
        failure = TypeError(str(misuse))
        if self._failure is None:
            self._failure = failure
        self._accepting = self._serving = CLOSED
        if self._status is _PROCESSING:
            self._status = _STOPPING
        return failure


async def report_error(
    logger: logging.Logger,
    exc: Exception,
    item: object,
    error_handler: ErrorHandler[Any] | None,
) -> None:
    """Pass a worker's error to ``error_handler``, or log it.

    What the handler raises is logged, but for :class:`NotAwaitableError`
    (a misuse, which stops the work).
    """
    if error_handler is None:
        logger.error("worker failed on item %s", reprlib.repr(item), exc_info=exc)
        return
    try:
        await error_handler(exc, item)
    except NotAwaitableError:
        raise
    except Exception:
        logger.exception(
            "error handler %r failed on item %s", error_handler, reprlib.repr(item)
        )
