"""Workers on demand: they start as items wait, up to the cap, and retire when idle.

Idle periods are timers: every test runs on asyncio and trio with a virtual
clock (the root conftest's ``virtual_time_backend``), which moves only when
every task waits, so "idle now, not retired yet" and "retired after the idle
period" hold exactly, however loaded the machine is.
"""

from __future__ import annotations

import math
from typing import Any

import anyio
import pytest
from anyio.lowlevel import checkpoint

from cc.queues import BoundedQueue, WorkQueue

from ._helpers import settle

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend(virtual_time_backend: Any) -> Any:
    return virtual_time_backend


async def until(condition: Any, seconds: float = 5.0) -> None:
    """Wait until ``condition()`` holds, polling, for at most ``seconds``."""
    with anyio.fail_after(seconds):
        for _ in range(100_000):  # pragma: no branch - bounded by the deadline
            if condition():
                return
            await anyio.sleep(0.005)


class Gate:
    """A worker function that holds every item until the gate opens."""

    def __init__(self) -> None:
        self.open = anyio.Event()
        self.running = 0
        self.most = 0
        self.done: list[int] = []

    async def __call__(self, item: int) -> None:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await self.open.wait()
        finally:
            self.running -= 1
        self.done.append(item)


async def test_no_worker_runs_before_items_wait_and_never_more_than_items() -> None:
    gate = Gate()
    async with BoundedQueue[int](maxsize=100) as queue:
        await queue.start_workers(gate, num_workers=10)
        await settle()
        assert queue.worker_count == 0  # an idle pool costs nothing
        for item in range(3):
            await queue.put(item)
        assert queue.worker_count == 3  # one per waiting item
        await settle()
        assert gate.running == 3
        for item in range(3, 30):
            await queue.put(item)
        await settle()
        assert queue.worker_count == 10  # the cap
        assert gate.running == 10
        gate.open.set()
        await queue.join()
    assert sorted(gate.done) == list(range(30))
    assert gate.most == 10
    assert queue.worker_count == 0


async def test_items_queued_before_the_workers_get_them_at_once() -> None:
    gate = Gate()
    async with BoundedQueue[int](maxsize=10) as queue:
        for item in range(4):
            await queue.put(item)
        await queue.start_workers(gate, num_workers=8)
        assert queue.worker_count == 4
        gate.open.set()
        await queue.join()
    assert sorted(gate.done) == [0, 1, 2, 3]


async def test_idle_workers_retire_and_come_back_when_work_does() -> None:
    done: list[int] = []

    async def work(item: int) -> None:
        await checkpoint()
        done.append(item)

    queue = WorkQueue[int](maxsize=20, concurrency_limit=4, worker_idle_timeout=0.02)
    async with queue:
        await queue.process(work)
        for item in range(8):
            await queue.put(item)
        await queue.join()
        assert 1 <= queue.worker_count <= 4  # idle now, not retired yet
        await until(lambda: queue.worker_count == 0)
        for item in range(8, 12):
            await queue.put(item)
        assert queue.worker_count >= 1  # started again by the new items
        await queue.join()
    assert sorted(done) == list(range(12))


async def test_a_busy_worker_is_never_retired() -> None:
    gate = Gate()
    async with BoundedQueue[int](worker_idle_timeout=0.01) as queue:
        await queue.start_workers(gate, num_workers=2)
        await queue.put(1)
        await queue.put(2)
        await anyio.sleep(0.1)  # ten idle periods: nobody was idle
        assert queue.worker_count == 2
        gate.open.set()
        await queue.join()


async def test_workers_that_never_retire() -> None:
    async def work(item: int) -> None:
        pass

    async with BoundedQueue[int](worker_idle_timeout=math.inf) as queue:
        await queue.start_workers(work, num_workers=3)
        for item in range(3):
            await queue.put(item)
        await queue.join()
        count = queue.worker_count
        await anyio.sleep(1.1)  # past the supervisor's watch period
        assert queue.worker_count == count >= 1


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (0, ValueError, "worker_idle_timeout must be > 0"),
        (-1, ValueError, "worker_idle_timeout must be >= 0"),
        (math.nan, ValueError, "worker_idle_timeout must be >= 0"),
        ("1", TypeError, "worker_idle_timeout must be a number"),
    ],
)
def test_worker_idle_timeout_is_validated(value: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        BoundedQueue[int](worker_idle_timeout=value)
    with pytest.raises(error, match=match):
        WorkQueue[int](worker_idle_timeout=value)


async def test_a_huge_limit_starts_only_the_workers_a_small_batch_needs() -> None:
    gate = Gate()

    async def open_later() -> None:
        await settle()
        gate.open.set()

    queue = WorkQueue[int](maxsize=100, concurrency_limit=200_000)
    async with anyio.create_task_group() as tg:
        tg.start_soon(open_later)
        summary = await queue.batch_process(range(100), gate)
    assert summary.succeeded == 100
    assert gate.most == 100  # never more workers than items
    assert queue.worker_count == 0


async def test_the_cap_holds_when_workers_are_cancelled_while_starting() -> None:
    async def work(item: int) -> None:
        await anyio.sleep_forever()

    queue = BoundedQueue[int](maxsize=10)
    await queue.start()
    await queue.start_workers(work, num_workers=3)
    for item in range(5):
        await queue.put(item)
    # Stop before the started workers ever ran: nothing is counted twice.
    leftovers = await queue.stop(timeout=0)
    assert sorted(leftovers) == [0, 1, 2, 3, 4]
    assert queue.worker_count == 0
    await queue.start()
    await queue.start_workers(work, num_workers=1)
    await queue.put(9)
    assert queue.worker_count == 1
    assert await queue.stop(timeout=0) == [9]
