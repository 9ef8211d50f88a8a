"""async_gather / async_map jobs hold AsyncLockManager locks as tasks of their own.

The manager tracks which task holds which lock and refuses an acquisition
that breaks the declared order for the *acquiring task*. A job must be judged
by what its own task holds, not by what the caller holds: a job that holds
nothing may take a low-order lock while the caller holds a high-order one,
and a job asking for a lock the caller holds must wait for it (not re-enter
it). Checked through the installed meta-package on every backend, with and
without ``limit``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from cc.concurrency import AsyncLockManager, async_gather, async_map

pytestmark = pytest.mark.anyio

Job = Callable[[], Awaitable[Any]]


async def _call(job: Job) -> Any:
    return await job()


async def gather_all(jobs: list[Job]) -> list[Any]:
    return await async_gather(*(job() for job in jobs))


async def gather_limited(jobs: list[Job]) -> list[Any]:
    return await async_gather(*(job() for job in jobs), limit=2)


async def map_limited(jobs: list[Job]) -> list[Any]:
    return await async_map(_call, jobs, limit=2)


RUNNERS = [
    pytest.param(gather_all, id="gather"),
    pytest.param(gather_limited, id="gather-limit"),
    pytest.param(map_limited, id="map-limit"),
]
Runner = Callable[[list[Job]], Awaitable[list[Any]]]


async def _manager() -> AsyncLockManager:
    manager = AsyncLockManager()
    await manager.register_locks({"low": 10, "high": 20})
    return manager


@pytest.mark.parametrize("run", RUNNERS)
async def test_a_job_holding_nothing_may_take_a_lower_lock(run: Runner) -> None:
    manager = await _manager()

    async def takes_low(wait: bool) -> str:
        async with manager.acquire("low", timeout=5):
            if wait:
                await anyio.lowlevel.checkpoint()
            return "took low"

    async def at_once() -> str:
        return await takes_low(False)

    async def after_a_checkpoint() -> str:
        return await takes_low(True)

    async with manager.acquire("high", timeout=5):
        # Were a job run in the caller's task, the manager would see "low"
        # requested while "high" is held and raise LockOrderError.
        results = await run([at_once, after_a_checkpoint, at_once])
    assert results == ["took low"] * 3


@pytest.mark.parametrize("run", RUNNERS)
async def test_a_job_waits_for_a_managed_lock_the_caller_holds(run: Runner) -> None:
    manager = await _manager()
    outcomes: list[str] = []

    async def wants_high() -> None:
        try:
            async with manager.acquire("high", timeout=0.05):
                outcomes.append("entered")  # pragma: no cover - must not happen
        except TimeoutError:
            outcomes.append("timed out")

    async with manager.acquire("high", timeout=5):
        await run([wants_high, wants_high])
    # The caller held "high" throughout: mutual exclusion means the jobs,
    # in tasks of their own, waited and timed out instead of re-entering.
    assert outcomes == ["timed out", "timed out"]
