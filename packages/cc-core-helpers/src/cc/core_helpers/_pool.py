"""The engine of async_gather and async_map: a task per job, at most ``limit`` at once.

Every job runs in a task of its own, in a task group owned by the call, so
nothing a job does (a lock it takes, a token it borrows, the task anyio
reports, the context variables it sets) is seen as done by the caller or by
another job. (Running jobs that finish at once in the calling task, or
several in one worker task, was faster, and let a job re-enter a lock its
caller held.)

The calling task is the *feeder*: it takes the next job from the source (so
a source is always read by the task that called the helper) and spawns a task
for it, until ``limit`` jobs are running; then it waits until one finishes.
Jobs are taken, and their tasks spawned, in input order; when several tasks
are spawned at the same moment, the backend decides which runs first (trio
deliberately varies it).

The first failure cancels the task group (jobs in flight are cancelled,
jobs not taken or not started never start) and the pool waits for every task
to finish before anything is raised. Job tasks record their exceptions
instead of letting them into the task group; the pool decides what to raise.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import anyio
from anyio.abc import TaskGroup
from anyio.lowlevel import checkpoint_if_cancelled

from cc.core_helpers._validation import close_coroutines

__all__ = ["FatalError", "JobPool"]

logger = logging.getLogger(__name__)


class FatalError(Exception):
    """Raised by a job that could not even start: the pool raises ``error``.

    ``return_exceptions`` does not apply: a programming error, not a result.
    """

    def __init__(self, error: BaseException) -> None:
        super().__init__(error)
        self.error = error


class JobPool:
    """Run each job of ``source`` in a task of its own, at most ``limit`` at once.

    :param source: the jobs (an iterator, or an async iterator if ``is_async``),
        read by the feeder; the pool never closes it
    :param call: turns a job into an awaitable, in the job's own task; ``None``
        when the jobs are awaitables (then a job that never starts is closed)
    """

    __slots__ = (
        "_call",
        "_exhausted",
        "_failures",
        "_is_async",
        "_job_name",
        "_limit",
        "_name",
        "_results",
        "_return_exceptions",
        "_running",
        "_slot_freed",
        "_source",
        "_stopping",
        "_task_group",
    )

    def __init__(
        self,
        source: Iterator[Any] | AsyncIterator[Any],
        *,
        name: str,
        limit: float,
        return_exceptions: bool,
        call: Callable[[Any], Awaitable[Any]] | None = None,
        is_async: bool = False,
    ) -> None:
        self._source = source
        self._is_async = is_async
        self._call = call
        self._name = name
        self._job_name = f"{name} job"
        self._limit = limit
        self._return_exceptions = return_exceptions
        self._exhausted = False
        self._results: list[Any] = []
        self._failures: list[BaseException] = []
        self._stopping = False
        self._running = 0  # job tasks spawned that have not finished
        self._slot_freed: anyio.Event | None = None  # the feeder waits on it
        self._task_group: TaskGroup | None = None

    async def next_results(self, quota: float) -> list[Any]:
        """Run the next ``quota`` jobs (or all that are left) to completion.

        :return: their outcomes in input order; empty once the source is done
        :raises BaseException: the chosen failure, if any (see
            :meth:`_failure_to_raise`)
        """
        self._results = []
        self._failures = []
        if self._exhausted:
            return self._results
        self._stopping = False
        self._running = 0
        self._slot_freed = None
        error: BaseException | None = None
        try:
            async with anyio.create_task_group() as task_group:
                self._task_group = task_group
                await self._feed(task_group, quota)
        except BaseException as exc:
            # Only a cancellation from outside (or a KeyboardInterrupt delivered
            # to this task) gets here: job tasks and the feeder never raise.
            error = exc
        finally:
            self._task_group = None
        if error is None and not self._failures:
            return self._results
        try:
            failure = await self._failure_to_raise(error)
        finally:
            del error
        try:
            raise failure
        finally:
            del failure
            self._failures = []

    async def _feed(self, task_group: TaskGroup, quota: float) -> None:
        """Start ``quota`` jobs, a task each, keeping at most ``limit`` running."""
        start_soon = task_group.start_soon
        run_job = self._run_job
        name = self._job_name
        source: Any = self._source
        is_async = self._is_async
        ended = StopAsyncIteration if is_async else StopIteration
        results = self._results
        while not self._stopping and quota > 0:
            if self._running >= self._limit:
                self._slot_freed = slot_freed = anyio.Event()
                await slot_freed.wait()
                continue
            try:
                job = await anext(source) if is_async else next(source)
            except ended:
                self._exhausted = True
                return
            except BaseException as exc:
                # The source itself failed: that ends the pool, whatever
                # return_exceptions says.
                self._fail(exc)
                return
            quota -= 1
            self._running += 1
            index = len(results)
            results.append(None)
            start_soon(run_job, index, job, name=name)

    async def _run_job(self, index: int, job: Any) -> None:
        """Run one job in its own task, record its outcome and free its slot."""
        try:
            call = self._call
            if self._stopping:
                if call is None:
                    close_coroutines((job,))
                return
            self._results[index] = await (job if call is None else call(job))
        except BaseException as exc:
            if (
                self._return_exceptions
                and isinstance(exc, Exception)
                and not isinstance(exc, FatalError)
            ):
                self._results[index] = exc
            else:
                self._fail(exc.error if isinstance(exc, FatalError) else exc)
        finally:
            self._running -= 1
            slot_freed = self._slot_freed
            if slot_freed is not None:
                self._slot_freed = None
                slot_freed.set()

    def _fail(self, exc: BaseException) -> None:
        """Record a failure; the first one cancels everything still in flight."""
        self._failures.append(exc)
        if not self._stopping:
            self._stopping = True
            assert self._task_group is not None
            self._task_group.cancel_scope.cancel()

    # -- choosing what to raise ----------------------------------------------

    async def _failure_to_raise(self, error: BaseException | None) -> BaseException:
        """Pick the one exception to raise once every job task has finished.

        In order: what reached the calling task itself unless a cancellation;
        the first job failure that is not a cancellation (a BaseException
        first; the others noted on it and logged, as async_gather documents);
        the cancellation that reached the caller, or the first recorded.
        """
        cancelled = anyio.get_cancelled_exc_class()
        if error is not None and not _is_cancellation(error, cancelled):
            return error
        failures = [f for f in self._failures if not _is_cancellation(f, cancelled)]
        if failures:
            primary = next(
                (f for f in failures if not isinstance(f, Exception)), failures[0]
            )
            others = [f for f in failures if f is not primary]
            if others:
                self._report_others(primary, others)
            return primary
        if error is not None:
            return error
        # Jobs were cancelled although nothing here cancelled them. If the
        # cancellation is aimed at the calling task, let it arrive as itself.
        await checkpoint_if_cancelled()
        return self._failures[0]

    def _report_others(
        self, primary: BaseException, others: list[BaseException]
    ) -> None:
        summary = ", ".join(repr(exc) for exc in others[:5])
        if len(others) > 5:
            summary += f", and {len(others) - 5} more"
        _add_note(
            primary,
            f"{self._name}: {len(others)} other failure(s) happened while this one "
            f"was being handled (they are not raised): {summary}",
        )
        for exc in others:
            logger.debug(
                "%s: failure not raised because %r was raised first",
                self._name,
                primary,
                exc_info=exc,
            )


def _is_cancellation(exc: BaseException, cancelled: type[BaseException]) -> bool:
    """Return whether ``exc`` is a cancellation, or a group of nothing else.

    (A cancelled raw trio nursery raises its Cancelled in a group; groups are
    recognised by the ``exceptions`` tuple the 3.10 backport shares.)
    """
    if isinstance(exc, cancelled):
        return True
    inner = getattr(exc, "exceptions", None)
    return (
        isinstance(inner, tuple)
        and bool(inner)
        and all(
            isinstance(e, BaseException) and _is_cancellation(e, cancelled)
            for e in inner
        )
    )


def _add_note(exc: BaseException, note: str) -> None:
    # BaseException.add_note() exists from Python 3.11; __notes__ is what it
    # appends to, and the exceptiongroup backport displays it on 3.10 too.
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, list):
        notes.append(note)
    else:
        exc.__notes__ = [note]  # type: ignore[attr-defined,unused-ignore]
