"""Every job of async_gather and async_map runs in a task of its own.

Whatever is task-owned (a cc ``Lock``, a ``CapacityLimiter`` token,
``anyio.get_current_task()``) must see the task that really runs the job:
never the caller's task, and never the task of another job running at the
same time. Each test runs through ``async_gather`` (with and without
``limit``) and ``async_map`` (awaited and iterated, over a list and an async
generator), on every backend.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from cc.core_helpers import async_gather, async_map
from cc.primitives import CapacityLimiter, Lock

pytestmark = pytest.mark.anyio

Job = Callable[[], Awaitable[Any]]


async def _items(jobs: list[Job]) -> AsyncIterator[Job]:
    for job in jobs:
        yield job


async def _call(job: Job) -> Any:
    return await job()


async def gather_all(jobs: list[Job]) -> list[Any]:
    return await async_gather(*(job() for job in jobs))


async def gather_limited(jobs: list[Job]) -> list[Any]:
    return await async_gather(*(job() for job in jobs), limit=2)


async def map_awaited(jobs: list[Job]) -> list[Any]:
    return await async_map(_call, jobs, limit=len(jobs))


async def map_limited_async_source(jobs: list[Job]) -> list[Any]:
    return await async_map(_call, _items(jobs), limit=2)


async def map_iterated(jobs: list[Job]) -> list[Any]:
    return [result async for result in async_map(_call, jobs, limit=len(jobs))]


RUNNERS = [
    pytest.param(gather_all, id="gather"),
    pytest.param(gather_limited, id="gather-limit"),
    pytest.param(map_awaited, id="map"),
    pytest.param(map_limited_async_source, id="map-limit-async-source"),
    pytest.param(map_iterated, id="map-iterated"),
]
Runner = Callable[[list[Job]], Awaitable[list[Any]]]


def _try_acquire(lock: Lock) -> bool:
    try:
        return bool(lock.acquire_nowait())
    except anyio.WouldBlock:
        return False


@pytest.mark.parametrize("run", RUNNERS)
async def test_a_job_cannot_enter_a_lock_the_caller_holds(run: Runner) -> None:
    lock = Lock()

    async def at_once() -> bool:
        entered = _try_acquire(lock)
        if entered:
            lock.release()
        return entered

    async def after_a_checkpoint() -> bool:
        await anyio.lowlevel.checkpoint()
        return await at_once()

    async with lock:
        results = await run([at_once, after_a_checkpoint, at_once])
    # The caller holds the lock: no job may get in, not even one that never
    # waits (which a pool driving it in the caller's task would let re-enter).
    assert results == [False, False, False]
    assert not lock.locked()


@pytest.mark.parametrize("run", RUNNERS)
async def test_a_job_waits_for_a_lock_the_caller_holds(run: Runner) -> None:
    lock = Lock()
    gave_up = anyio.CancelScope()
    entered: list[str] = []

    async def waits_for_the_lock() -> str:
        with gave_up:
            async with lock:
                entered.append("job")  # pragma: no cover - must not happen
        return "gave up" if gave_up.cancel_called else "entered"

    async def sees_it_waiting() -> str:
        # The other job is parked on the lock (mutual exclusion holds): end
        # its wait, since the caller cannot release before the gather ends.
        with anyio.fail_after(5):
            while lock.statistics().tasks_waiting != 1:
                await anyio.lowlevel.checkpoint()
        gave_up.cancel()
        return "saw it wait"

    async with lock:
        results = await run([waits_for_the_lock, sees_it_waiting])
    assert results == ["gave up", "saw it wait"]
    assert entered == []


@pytest.mark.parametrize("run", RUNNERS)
async def test_a_job_borrows_its_own_limiter_token(run: Runner) -> None:
    limiter = CapacityLimiter(4)

    async def borrows(wait: bool) -> int:
        async with limiter:
            if wait:
                await anyio.lowlevel.checkpoint()
            return limiter.borrowed_tokens

    async def at_once() -> int:
        return await borrows(False)

    async def after_a_checkpoint() -> int:
        return await borrows(True)

    async with limiter:  # the caller holds a token of the same limiter
        results = await run([at_once, after_a_checkpoint, at_once])
        assert limiter.borrowed_tokens == 1
    assert all(2 <= tokens <= 4 for tokens in results), results
    assert limiter.borrowed_tokens == 0


@pytest.mark.parametrize("run", RUNNERS)
async def test_every_job_runs_in_a_task_of_its_own(run: Runner) -> None:
    caller = anyio.get_current_task().id
    running: set[int] = set()  # tasks of the jobs running right now
    partners = [anyio.Event() for _ in range(6)]

    def job(n: int) -> Job:
        async def record() -> int:
            task = anyio.get_current_task().id
            assert task != caller
            assert task not in running, "two jobs share a task at the same time"
            running.add(task)
            try:
                # Jobs 2k and 2k+1 wait for each other, so both are in
                # `running` at once (the runners with limit=2 claim them
                # together).
                partners[n].set()
                await partners[n ^ 1].wait()
                # Still the same task after waiting.
                assert anyio.get_current_task().id == task
            finally:
                running.discard(task)
            return task

        return record

    tasks = await run([job(n) for n in range(6)])
    assert caller not in tasks
    for k in range(0, 6, 2):
        assert tasks[k] != tasks[k + 1]


@pytest.mark.parametrize("run", RUNNERS)
async def test_a_job_that_never_waits_does_not_run_in_the_caller(run: Runner) -> None:
    caller = anyio.get_current_task().id

    async def where() -> int:
        return anyio.get_current_task().id

    assert caller not in await run([where])
    assert caller not in await run([where, where, where])
