"""The engine of async_gather and async_map: a pool of workers that grows on demand.

A task per awaitable is the obvious structured design, and an expensive one:
spawning through an anyio task group costs several times what
``asyncio.gather`` pays per awaitable. Most awaitables, however, either finish
without ever waiting, or wait only briefly, and a task of their own buys them
nothing. So the pool works like this:

* The calling task is the first worker. A worker claims the next job, creates
  a fresh copy of its context (what a task of its own would have given the
  job) and advances the job by hand (see :mod:`cc.core_helpers._driving`).
* A job that finishes without waiting costs no task at all.
* When a job has to wait for the first time, and jobs are left to claim, the
  worker spawns more workers into the pool's task group before handing the
  wait to the event loop, unless spawned workers have yet to start. A new
  worker starts on the next job; if that one waits too, it spawns the next.
  So while a job waits, a worker is always on its way to start the next one,
  and no job waits for one that will never start (unless ``limit`` workers
  are busy, which is what a limit means).
* How many to spawn adapts: one at a time while jobs keep finishing (short
  waits: a few workers cycling through the jobs are enough), twice as many
  as last time when none has finished since the last spawn (long waits: the
  jobs must all be in flight at once, and doubling gets them there in a
  logarithmic number of event loop iterations rather than one per job).
* A worker runs one job at a time, so at most ``limit`` jobs are in flight.

Failure handling is structured: the first failure cancels the task group
(every job still in flight is cancelled, jobs not claimed yet never start) and
the pool waits for every worker to finish before anything is raised. Workers
never let an exception escape into the task group; they record it, and
:meth:`WorkerPool.run` decides what to raise once nothing is running any more.
"""

from __future__ import annotations

import logging
from contextvars import copy_context
from typing import Any

import anyio
from anyio.abc import TaskGroup
from anyio.lowlevel import checkpoint_if_cancelled

from cc.core_helpers._driving import resume_in, step_iterator

__all__ = ["FatalError", "WorkerPool"]

logger = logging.getLogger(__name__)


class FatalError(Exception):
    """Raised by a job to stop the whole pool with ``error``.

    ``return_exceptions`` does not apply: the pool raises ``error`` itself.
    Used when the job cannot even be started (``async_map``'s function did
    not return an awaitable), which is a programming error, not a result.
    """

    def __init__(self, error: BaseException) -> None:
        super().__init__(error)
        self.error = error


class WorkerPool:
    """Run jobs with at most ``limit`` in flight; collect results in order.

    Subclasses provide the jobs through :meth:`_claim` (or :meth:`_claim_async`
    when ``_async_source`` is true) and say through :meth:`_claimable` how many
    more jobs a new worker could find at most.
    """

    __slots__ = (
        "_async_source",
        "_burst",
        "_call",
        "_completed",
        "_completed_at_spawn",
        "_failures",
        "_job",
        "_limit",
        "_name",
        "_results",
        "_return_exceptions",
        "_stopping",
        "_task_group",
        "_unstarted",
        "_worker_name",
        "_workers",
    )

    def __init__(self, *, name: str, limit: float, return_exceptions: bool) -> None:
        self._name = name
        self._worker_name = f"{name} worker"
        self._limit = limit
        self._return_exceptions = return_exceptions
        self._async_source = False
        # Turns a claimed job into an awaitable; None when jobs are awaitables.
        self._call: Any = None
        self._job: Any = None
        self._results: list[Any] = []
        self._failures: list[BaseException] = []
        self._stopping = False
        self._workers = 0
        self._unstarted = 0  # workers spawned that have not started yet
        self._burst = 1  # how many workers the last spawn started
        self._completed = 0  # jobs finished so far
        self._completed_at_spawn = -1
        self._task_group: TaskGroup | None = None

    # -- provided by subclasses ---------------------------------------------

    def _claim(self) -> int:
        """Claim the next job: store it in ``_job`` and return its result index.

        :return: the index in ``_results``, or -1 when there is nothing to claim
        """
        raise NotImplementedError

    async def _claim_async(self) -> int:
        """Like :meth:`_claim`, for sources that must be awaited."""
        raise NotImplementedError

    def _claimable(self) -> float:
        """Return how many jobs are left to claim at most (0 once stopping)."""
        raise NotImplementedError

    def _finished(self) -> None:
        """Release what was not used, once every worker has stopped."""

    # -- running -------------------------------------------------------------

    async def run(self) -> None:
        """Run every claimable job; raise the chosen failure if any.

        On return, ``_results`` holds one outcome per claimed job.
        """
        self._stopping = False
        self._workers = 1  # the calling task
        self._unstarted = 0
        self._burst = 1
        self._completed_at_spawn = -1
        error: BaseException | None = None
        try:
            async with anyio.create_task_group() as task_group:
                self._task_group = task_group
                await self._work()
        except BaseException as exc:
            # Only a cancellation from outside (or a KeyboardInterrupt delivered
            # to this task) gets here: workers never raise.
            error = exc
        finally:
            self._task_group = None
            self._finished()
        if error is None and not self._failures:
            return
        try:
            failure = await self._failure_to_raise(error)
        finally:
            del error
        try:
            raise failure
        finally:
            del failure
            self._failures = []

    async def _work(self) -> None:
        """Claim and run jobs one at a time until none is left or the pool stops."""
        results = self._results
        call = self._call
        while not self._stopping:
            try:
                index = (
                    await self._claim_async() if self._async_source else self._claim()
                )
            except BaseException as exc:
                # The source itself failed: that ends the pool, whatever
                # return_exceptions says.
                self._fail(exc)
                return
            if index < 0:
                return
            job = self._job
            context = copy_context()
            try:
                steps = step_iterator(job if call is None else context.run(call, job))
                try:
                    pending = context.run(steps.send, None)
                except StopIteration as stop:
                    results[index] = stop.value
                    self._completed += 1
                    continue
                # The job has to wait: make sure the next one can start meanwhile.
                if not self._unstarted and self._workers < self._limit:
                    self._spawn_workers()
                results[index] = await resume_in(context, steps, pending)
                self._completed += 1
            except BaseException as exc:
                if (
                    self._return_exceptions
                    and isinstance(exc, Exception)
                    and not isinstance(exc, FatalError)
                ):
                    results[index] = exc
                    self._completed += 1
                    continue
                self._fail(exc.error if isinstance(exc, FatalError) else exc)
                return

    def _spawn_workers(self) -> None:
        if self._completed == self._completed_at_spawn:
            self._burst *= 2  # nothing finished since the last spawn: speed up
        else:
            self._burst = 1
        self._completed_at_spawn = self._completed
        count = int(min(self._burst, self._limit - self._workers, self._claimable()))
        assert self._task_group is not None
        for _ in range(count):
            self._unstarted += 1
            self._workers += 1
            self._task_group.start_soon(self._spawned_worker, name=self._worker_name)

    async def _spawned_worker(self) -> None:
        self._unstarted -= 1
        try:
            await self._work()
        finally:
            self._workers -= 1

    def _fail(self, exc: BaseException) -> None:
        """Record a failure; the first one cancels everything still in flight."""
        self._failures.append(exc)
        if not self._stopping:
            self._stopping = True
            assert self._task_group is not None
            self._task_group.cancel_scope.cancel()

    # -- choosing what to raise ----------------------------------------------

    async def _failure_to_raise(self, error: BaseException | None) -> BaseException:
        """Pick the one exception to raise once every worker has stopped.

        1. An exception that reached the calling task itself and is not a
           cancellation (a KeyboardInterrupt, say) always wins.
        2. Otherwise the first failure of a job that is not a cancellation,
           preferring a BaseException such as KeyboardInterrupt or SystemExit
           over an ordinary Exception. Failures of other jobs are attached to
           it as a note and logged at DEBUG level, never raised in a group.
        3. Otherwise (only cancellations) the cancellation that reached the
           calling task, or, failing that, the first one recorded.
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

    (A raw trio nursery that is cancelled raises its Cancelled in a group.)
    Exception groups are recognised by their ``exceptions`` tuple, which the
    builtin class and the ``exceptiongroup`` backport of Python 3.10 share.
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
