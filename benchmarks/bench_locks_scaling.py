"""How the lock managers' costs grow with history and with the work in hand.

* Random pairs among 1,000 declared locks: the cost of one acquire/release
  after 1,000, 10,000 and 100,000 such calls, with every check (policy
  "raise") and with none (policy "off"), on threads and on tasks. Declared
  pairs need no learned order, so the checked cost must stay flat and at
  most 2x the unchecked one.
* ``detect_potential_deadlocks()`` with 10, 100 and 1,000 tasks waiting in
  one chain (each waits for a lock the next one holds), among 1,001
  registered locks: one pass over the wait-for graph, so at most 20x from 10
  to 1,000 waiters, under 2 ms.
* Memory of a registered managed lock (threads, tasks), in bytes.
"""

from __future__ import annotations

import gc
import random
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from cc.locks import AsyncLockManager, LockManager

from harness import Suite

GROUP = "locks scaling"
LOCKS = 1_000
HISTORY = [1_000, 10_000, 100_000]
OPS = 20_000
WAITERS = [10, 100, 1_000]
CASE = f"random pairs among {LOCKS:,} declared locks"
POLICIES = {
    "all checks": {},
    "checks off": {"policy": "off", "detect_deadlocks": False},
}


def _pairs(seed: int) -> Callable[[], tuple[str, str]]:
    rng = random.Random(seed)
    names = [f"lock-{i}" for i in range(LOCKS)]
    return lambda: tuple(rng.sample(names, 2))  # type: ignore[return-value]


def _hierarchy() -> dict[str, int]:
    return {f"lock-{i}": i for i in range(LOCKS)}


def _thread_run(policy: str) -> Callable[[int], Callable[[int], None]]:
    def make_run(history: int) -> Callable[[int], None]:
        manager = LockManager(_hierarchy(), **POLICIES[policy])
        pair = _pairs(history)

        def run(n: int) -> None:
            for _ in range(n):
                with manager.acquire(*pair()):
                    pass

        run(history)  # the calls made before: not timed
        return run

    return make_run


def _task_run(
    policy: str,
) -> Callable[[int], Callable[[], Callable[[int], Awaitable[None]]]]:
    def for_history(history: int) -> Callable[[], Callable[[int], Awaitable[None]]]:
        def make_run() -> Callable[[int], Awaitable[None]]:
            manager = AsyncLockManager(_hierarchy(), **POLICIES[policy])
            pair = _pairs(history)
            before = [history]

            async def run(n: int) -> None:
                n += before.pop() if before else 0  # the history, on the untimed call
                for _ in range(n):
                    async with manager.acquire(*pair()):
                        pass

            return run

        return make_run

    return for_history


async def _detect_cost(waiters: int, rounds: int) -> float:
    """Seconds per detect_potential_deadlocks() with ``waiters`` chained waiters.

    The manager has the same 1,001 locks at every size: only the waiters grow.
    """
    manager = AsyncLockManager({f"c{i}": i for i in range(WAITERS[-1] + 1)})
    holding = [anyio.Event() for _ in range(waiters + 1)]

    async def link(index: int) -> None:
        async with manager.acquire(f"c{index}", timeout=None):
            holding[index].set()
            if index < waiters:  # wait for the next one's lock, held forever
                await holding[index + 1].wait()
                async with manager.acquire(f"c{index + 1}", timeout=None):
                    pass  # pragma: no cover
            else:
                await anyio.sleep_forever()

    async with anyio.create_task_group() as tg:
        for index in range(waiters + 1):
            tg.start_soon(link, index)
        while len(manager._engine.waiting) < waiters:  # noqa: ASYNC110
            await anyio.sleep(0.001)
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(rounds):
                assert await manager.detect_potential_deadlocks() == []
            best = min(best, (time.perf_counter() - started) / rounds)
        tg.cancel_scope.cancel()
    return best


def _memory(manager_class: Any) -> float:
    manager = manager_class()
    entries = [(f"lock-{i}", i, "", None) for i in range(5_000)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    manager._register(entries)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    return sum(s.size_diff for s in after.compare_to(before, "filename")) / 5_000


def collect(suite: Suite) -> None:
    """History, waiters and memory rows of the lock managers."""
    for policy in POLICIES:
        impl = f"cc LockManager ({policy})"
        suite.time_sync_scaling(
            GROUP, CASE, impl, sizes=HISTORY, size_label="calls made before",
            make_run=_thread_run(policy), ops=OPS,
            max_growth=1.5 if policy == "all checks" else None,
        )  # fmt: skip
        suite.time_sync(
            GROUP, f"{CASE}, after {HISTORY[-1]:,} calls", impl,
            _thread_run(policy)(HISTORY[-1]), OPS, baseline=policy == "checks off",
        )  # fmt: skip
        impl = f"cc AsyncLockManager ({policy})"
        suite.time_async_scaling(
            GROUP, CASE, impl, "asyncio", sizes=HISTORY,
            size_label="calls made before", make_run=_task_run(policy), ops=OPS,
            max_growth=1.5 if policy == "all checks" else None,
        )  # fmt: skip
        suite.time_async(
            GROUP, f"{CASE}, after {HISTORY[-1]:,} calls", impl, "asyncio",
            _task_run(policy)(HISTORY[-1]), OPS, baseline=policy == "checks off",
        )  # fmt: skip
    for kind, backend in (("LockManager", "threads"), ("AsyncLockManager", "asyncio")):
        suite.goal(
            GROUP, f"{CASE}, after {HISTORY[-1]:,} calls", f"cc {kind} (all checks)",
            f"cc {kind} (checks off)", 2.0, backend=backend,
        )  # fmt: skip

    row = suite.scaling(
        GROUP, "detect_potential_deadlocks(), waiters in one chain",
        "cc AsyncLockManager", backend="asyncio", size_label="waiting tasks",
        max_growth=20.0, note="goal: under 2,000 us with 1,000 waiters",
    )  # fmt: skip
    for waiters in WAITERS:
        rounds = suite.ops(max(20, 20_000 // waiters))
        row.add(waiters, anyio.run(_detect_cost, waiters, rounds) * 1e6)

    for manager_class in (LockManager, AsyncLockManager):
        suite.record(
            GROUP, "memory of one registered lock", f"cc {manager_class.__name__}",
            _memory(manager_class), "B/lock",
        )  # fmt: skip
