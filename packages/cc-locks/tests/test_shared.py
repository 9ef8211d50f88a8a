"""Managers with a backend: the shared path, on a store in this process's memory.

cc-redis runs the same path against a real Redis server, across processes;
these tests pin down what the managers themselves do with any store.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from cc.locks import (
    AsyncLockManager,
    Lease,
    LockBackendError,
    LockLostError,
    LockManager,
    LockOrderError,
    LockTimeoutError,
)
from cc.locks._steps import arun as run_async
from cc.locks._steps import run as run_sync
from cc.locks.lowlevel import Call, Shielded

from .memory_store import AWAIT, DIRECT, IN_THREAD, MemoryStore

HIERARCHY = {"a": 1, "b": 2}
JOIN = 10.0


# -- threads -----------------------------------------------------------------------


def test_threads_share_locks_through_the_store() -> None:
    store = MemoryStore()
    with (
        LockManager(HIERARCHY, backend=store) as first,
        LockManager(HIERARCHY, backend=store) as second,
    ):
        assert "backend=<MemoryStore>" in repr(first) and first.backend is store
        with first.acquire("b", "a"):
            lease = first.lease("a")
            assert isinstance(lease, Lease) and not lease.lost
            assert lease.expires_in > 0
            with pytest.raises(LockTimeoutError, match="blocking=False") as caught:
                with second.acquire("a", blocking=False):
                    pass  # pragma: no cover
            assert caught.value.holder == "thread 'MainThread' (pid 1 on memory)"
            status = second.get_lock_status()["a"]
            assert status["is_locked"] and not status["held_here"]
            assert status["fencing_token"] == lease.fencing_token
            assert status["depth"] is None and status["hold_time"] >= 0
            assert first.get_lock_status()["a"]["held_here"]
            got: list[float] = []

            def wait() -> None:
                started = time.monotonic()
                with second.acquire("a", timeout=JOIN):
                    got.append(time.monotonic() - started)

            waiter = threading.Thread(target=wait)
            waiter.start()
            while not second.get_lock_info("a").waiters:
                time.sleep(0.001)
            assert second.get_lock_status()["a"]["waiting"]
        waiter.join(JOIN)
        assert got and second.statistics()["a"].contended_acquisitions == 1
        assert second.get_lock_status()["b"]["host"] is None
        with pytest.raises(RuntimeError, match="does not hold lock 'a'"):
            first.lease("a")


def test_thread_managed_locks_and_order_checks_with_a_store() -> None:
    store = MemoryStore()
    with LockManager(HIERARCHY, backend=store) as manager:
        a, b = manager.get_lock("a"), manager.get_lock("b")
        with a, a:  # re-entry costs nothing in the store
            assert manager.get_lock_status()["a"]["depth"] == 2
        assert a.acquire() and b.acquire(timeout=1)
        assert manager.held_locks() == ["a", "b"]
        a.release()  # out of order
        b.release()
        with manager.acquire("b"), pytest.raises(LockOrderError):
            manager.acquire("a").__enter__()
        assert manager.held_locks() == []
        with pytest.raises(RuntimeError, match="it is not held"):
            a.release()


def test_closing_with_a_lock_held_loses_its_lease() -> None:
    store = MemoryStore()
    manager = LockManager(HIERARCHY, backend=store)
    lock = manager.get_lock("a")
    assert lock.acquire()  # connects on first use
    manager.close()
    manager.close()  # twice is fine
    assert store.lost and store.lost[0].lost
    with pytest.raises(LockLostError, match="manager was closed"):
        lock.release()
    assert not lock.locked() and store.keys == {}
    with manager.acquire("a"):  # it connects again
        assert manager.lease("a").fencing_token == 2
    manager.close()
    assert any("lease lost" in r for r in manager.detect_potential_deadlocks())


def test_a_lease_lost_in_the_store_is_raised_at_release() -> None:
    store = MemoryStore(lease=0.05)
    with LockManager(HIERARCHY, backend=store) as manager:
        with pytest.raises(LockLostError, match="'a': its lease had expired"):
            with manager.acquire("a", "b"):
                time.sleep(0.1)  # nothing renews the memory store's leases
        assert manager.held_locks() == [] and store.keys == {}


def test_an_unreachable_store_holds_nothing() -> None:
    store = MemoryStore()
    store.down = True
    manager = LockManager(HIERARCHY, backend=store)
    with pytest.raises(LockBackendError):
        manager.__enter__()
    store.down = False
    with manager:
        store.down = True
        with pytest.raises(LockBackendError), manager.acquire("a", "b"):
            pass  # pragma: no cover
        assert manager.held_locks() == []
        assert not manager.get_lock_info("a").is_locked
        store.down = False


def test_lease_needs_a_backend() -> None:
    with pytest.raises(RuntimeError, match="has no lease: its manager has no backend"):
        LockManager(HIERARCHY).lease("a")
    with pytest.raises(TypeError, match="backend must be a lock store"):
        LockManager(backend="redis://")  # type: ignore[arg-type]
    with LockManager(HIERARCHY) as plain:  # without a backend: a no-op
        plain.close()


def test_steps_run_shielded_and_calls_run_in_every_mode() -> None:
    def steps() -> Any:
        value = yield Call(lambda x: x + 1, 1)
        return (yield Shielded(inner(value), 1.0))

    def inner(value: int) -> Any:
        return (yield Call(lambda: value * 10, mode=IN_THREAD))

    assert run_sync(steps()) == 20

    async def main() -> Any:
        async def double(x: int) -> int:
            return 2 * x

        def waits() -> Any:
            yield Shielded(forever(), 0.01)

        def forever() -> Any:
            while True:
                yield Call(anyio.sleep, 1, mode=AWAIT)

        with pytest.raises(TimeoutError):
            await run_async(waits())
        return await run_async(steps()), await run_async(iter_await(double))

    def iter_await(fn: Any) -> Any:
        return (yield Call(fn, 21, mode=AWAIT))

    assert anyio.run(main) == (20, 42)


# -- tasks -------------------------------------------------------------------------


@pytest.fixture(params=[DIRECT, AWAIT, IN_THREAD], ids=["direct", "await", "thread"])
def store(request: pytest.FixtureRequest) -> MemoryStore:
    return MemoryStore(mode=request.param)


@pytest.mark.anyio
async def test_tasks_share_locks_through_the_store(store: MemoryStore) -> None:
    async with (
        AsyncLockManager(HIERARCHY, backend=store) as first,
        AsyncLockManager(HIERARCHY, backend=store) as second,
    ):
        with pytest.raises(RuntimeError, match="open already"):
            await first.__aenter__()
        taken, let_go = anyio.Event(), anyio.Event()

        async def hold() -> None:
            async with first.acquire("a", "b"):
                taken.set()
                await let_go.wait()

        async with anyio.create_task_group() as tg:
            tg.start_soon(hold, name="holder")
            await taken.wait()
            with pytest.raises(LockTimeoutError, match="task 'holder'"):
                async with second.acquire("a", blocking=False):
                    pass  # pragma: no cover
            with pytest.raises(LockTimeoutError, match=r"within 0\.02 s"):
                async with second.acquire("a", timeout=0.02):
                    pass  # pragma: no cover
            status = (await second.get_lock_status())["a"]
            assert status["owner"] == "task 'holder' (pid 1 on memory)"
            got: list[bool] = []

            async def take() -> None:
                async with second.acquire("b", "a", timeout=JOIN):
                    assert second.lease("b").fencing_token > 0
                    got.append((await second.get_lock_status())["a"]["held_here"])

            tg.start_soon(take, name="taker")
            # The taker sleeps on its manager's board when the holder lets go:
            # the release (in a worker thread with IN_THREAD) must wake it
            # from the task that released, on that task's event loop.
            while not (await second.get_lock_status())["a"]["waiting"]:
                await anyio.lowlevel.checkpoint()
            let_go.set()
        assert got == [True]
        assert second.statistics()["a"].timeouts == 2


@pytest.mark.anyio
async def test_task_managed_locks_with_a_store(store: MemoryStore) -> None:
    async with AsyncLockManager(HIERARCHY, backend=store) as manager:
        lock = await manager.get_lock("a")
        with pytest.raises(RuntimeError, match="cannot be taken without awaiting"):
            lock.acquire_nowait()
        async with lock:
            with pytest.raises(RuntimeError, match="needs a round trip"):
                lock.release()
            assert lock.owned_by_current_task()
        await lock.acquire()
        await lock.arelease()
        with pytest.raises(RuntimeError, match="it is not held"):
            await lock.arelease()
        assert store.keys == {}


@pytest.mark.anyio
async def test_a_cancelled_remote_wait_takes_nothing(store: MemoryStore) -> None:
    async with (
        AsyncLockManager(HIERARCHY, backend=store) as first,
        AsyncLockManager(HIERARCHY, backend=store) as second,
    ):
        async with first.acquire("b"):
            with anyio.move_on_after(0.05):
                async with second.acquire("a", "b", timeout=None):
                    pytest.fail("took a held lock")  # pragma: no cover
            status = await second.get_lock_status()
            assert status["b"]["waiters"] == 0 and not status["a"]["held_here"]
        async with second.acquire("a", "b", blocking=False):
            assert second.held_locks() == ["a", "b"]


@pytest.mark.anyio
async def test_a_task_manager_must_be_opened_and_closes_cleanly(
    store: MemoryStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "cc.locks")
    manager = AsyncLockManager(HIERARCHY, backend=store)
    with pytest.raises(RuntimeError, match="must be opened"):
        async with manager.acquire("a"):
            pass  # pragma: no cover
    store.down = True
    with pytest.raises(LockBackendError):
        await manager.__aenter__()
    store.down = False
    await manager.__aenter__()
    lock = await manager.get_lock("a")
    await lock.acquire()
    await manager.aclose()
    await manager.aclose()  # twice is fine
    with pytest.raises(LockLostError, match="manager was closed"):
        await lock.arelease()
    assert manager.held_locks() == []
