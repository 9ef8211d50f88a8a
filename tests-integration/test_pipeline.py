"""Cross-package scenarios, run against the installed meta-package on every
backend: queues with shared limiters and ordered locks, async_map feeding a
queue, lock managers used from threads, and shutdown mid-flight."""

from __future__ import annotations

import threading
from collections import Counter

import anyio
import anyio.to_thread
import pytest
from anyio.lowlevel import checkpoint

from cc.concurrency import (
    AsyncLockManager,
    BoundedQueue,
    CapacityLimiter,
    LockManager,
    RateLimiter,
    WorkQueue,
    async_gather,
    async_map,
)

pytestmark = pytest.mark.anyio


async def test_workers_share_limiters_and_take_ordered_locks() -> None:
    manager = AsyncLockManager()
    await manager.register_locks({"accounts": 10, "ledger": 20, "audit": 30})
    limiter = CapacityLimiter(3)
    rate = RateLimiter(400, period=1.0)
    in_flight = peak = 0
    handled: list[int] = []
    balance = {"accounts": 0, "ledger": 0}

    async def work(item: int) -> None:
        nonlocal in_flight, peak
        async with rate, limiter:
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                # Named in the "wrong" order on purpose: the manager sorts.
                names = ("ledger", "accounts") if item % 2 else ("accounts", "ledger")
                async with manager.acquire(*names, timeout=5.0):
                    before = dict(balance)
                    await checkpoint()
                    balance["accounts"] = before["accounts"] + 1
                    balance["ledger"] = before["ledger"] + 1
                if item % 7 == 0:
                    async with manager.acquire("audit", timeout=5.0):
                        await checkpoint()
                handled.append(item)
            finally:
                in_flight -= 1

    queue = WorkQueue[int](maxsize=16, concurrency_limit=8)
    summary = await queue.batch_process(range(200), work)
    assert sorted(handled) == list(range(200))
    assert balance == {"accounts": 200, "ledger": 200}  # no lost update
    assert peak <= 3
    assert limiter.borrowed_tokens == 0
    assert queue.metrics["processed"] == 200
    assert summary is not None
    assert await manager.detect_potential_deadlocks() == []
    status = await manager.get_lock_status()
    assert not any(entry["is_locked"] for entry in status.values())


async def test_async_map_feeds_a_bounded_queue() -> None:
    consumed: list[int] = []

    async def fetch(n: int) -> int:
        await anyio.sleep(0.001 * (n % 3))  # finish out of order
        return n * n

    async def consume(item: int) -> None:
        consumed.append(item)

    async with BoundedQueue[int](maxsize=4) as queue:
        await queue.start_workers(consume, num_workers=2)
        async for square in async_map(fetch, range(50), limit=5):
            assert await queue.put(square, timeout=5.0)
        await queue.join()
        metrics = queue.metrics
    assert sorted(consumed) == sorted(n * n for n in range(50))
    assert metrics["enqueued"] == metrics["processed"] == 50


async def test_lock_manager_from_worker_threads() -> None:
    manager = LockManager()
    manager.register_locks({"db": 1, "cache": 2})
    counter = {"value": 0}
    threads_seen: set[int] = set()

    def job(n: int) -> None:
        for _ in range(50):
            with manager.acquire("cache", "db", timeout=5.0):
                threads_seen.add(threading.get_ident())
                value = counter["value"]
                counter["value"] = value + 1

    async with anyio.create_task_group() as tg:
        for n in range(8):
            tg.start_soon(anyio.to_thread.run_sync, job, n)
    assert counter["value"] == 400
    assert len(threads_seen) >= 2
    status = manager.get_lock_status()
    assert not status["db"]["is_locked"] and not status["cache"]["is_locked"]
    assert manager.detect_potential_deadlocks() == []


async def test_shutdown_mid_flight_loses_nothing() -> None:
    manager = AsyncLockManager()
    await manager.register_lock("resource", 1)
    started = anyio.Event()
    processed: list[int] = []
    failed: list[int] = []

    async def work(item: int) -> None:
        started.set()
        async with manager.acquire("resource", timeout=5.0):
            await anyio.sleep(0.002)
        if item % 5 == 0:
            raise ValueError(f"bad item {item}")
        processed.append(item)

    async def on_error(exc: Exception, item: int) -> None:
        failed.append(item)

    queue = WorkQueue[int](maxsize=1000, concurrency_limit=4)
    await queue.start()
    try:
        await queue.process(work, error_handler=on_error)
        for item in range(300):
            assert await queue.put(item)
        await started.wait()
        await anyio.sleep(0.01)
    finally:
        handed_back = await queue.stop(timeout=0.05)
    metrics = queue.metrics
    assert handed_back, "the queue should have been stopped mid-flight"
    accounted = Counter(processed) + Counter(failed) + Counter(handed_back)
    assert sorted(accounted.elements()) == list(range(300))  # each exactly once
    assert metrics["enqueued"] == 300
    assert metrics["processed"] + metrics["errors"] + len(handed_back) == 300
    status = await manager.get_lock_status()
    assert not status["resource"]["is_locked"]  # no lock stranded by stop()


async def test_gather_with_limit_over_queue_producers() -> None:
    results: list[int] = []

    async def work(item: int) -> None:
        results.append(item)

    async with WorkQueue[int](maxsize=8, concurrency_limit=3) as queue:
        await queue.process(work)

        async def produce(base: int) -> int:
            for i in range(20):
                assert await queue.put(base * 100 + i, timeout=5.0)
            return base

        assert await async_gather(*(produce(b) for b in range(5)), limit=2) == [
            0, 1, 2, 3, 4,
        ]  # fmt: skip
        await queue.join()
    assert len(results) == 100
