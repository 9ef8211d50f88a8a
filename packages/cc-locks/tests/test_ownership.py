"""Ownership on every release path, and contexts shared by several holders.

A release that does not come from the holder must raise ``RuntimeError``
naming the holder and leave the holder's hold alone, whichever way it comes
(``release()``, ``__exit__``, ``__aexit__``). One ``acquire()`` context used by
several threads or tasks gives each of them its own hold.
"""

from __future__ import annotations

import threading
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from cc.locks import AsyncLockManager, LockManager

JOIN = 10.0


async def wait_for(predicate: Any) -> None:
    """Let other tasks run until ``predicate()`` holds (fails after 5 s)."""
    with anyio.fail_after(5):
        while not predicate():  # noqa: ASYNC110 (a waiter count has no event)
            await anyio.sleep(0.001)


# -- threads -------------------------------------------------------------------


def _start_waiter(manager: LockManager, name: str, inside: threading.Event,
                  let_go: threading.Event) -> threading.Thread:  # fmt: skip
    def body() -> None:
        with manager.acquire(name, timeout=JOIN):
            inside.set()
            let_go.wait(JOIN)

    thread = threading.Thread(target=body, name="next")
    thread.start()
    return thread


@pytest.mark.parametrize("how", ["acquire", "managed lock"])
def test_thread_exit_after_an_early_release_names_the_new_owner(how: str) -> None:
    manager = LockManager({"a": 1})
    lock = manager.get_lock("a")
    inside, let_go = threading.Event(), threading.Event()
    context: Any = manager.acquire("a") if how == "acquire" else lock
    with pytest.raises(RuntimeError) as caught:
        with context:
            lock.release()  # let go early: the waiter takes it
            thread = _start_waiter(manager, "a", inside, let_go)
            assert inside.wait(JOIN)
    assert "cannot release lock 'a' from thread 'MainThread'" in str(caught.value)
    assert "it is held by thread 'next'" in str(caught.value)
    status = manager.get_lock_status()["a"]
    assert status["owner"] == "thread 'next'" and status["depth"] == 1
    assert manager.held_locks() == []
    let_go.set()
    thread.join(JOIN)
    assert not manager.get_lock_status()["a"]["is_locked"]
    with manager.acquire("a", timeout=1):  # nothing was stranded
        pass


def test_thread_exit_releases_the_rest_of_the_set_before_it_raises() -> None:
    manager = LockManager({"a": 1, "b": 2})
    with pytest.raises(RuntimeError, match=r"'a'.*it is not held"):
        with manager.acquire("a", "b"):
            manager.get_lock("a").release()
    status = manager.get_lock_status()
    assert not status["a"]["is_locked"] and not status["b"]["is_locked"]
    assert manager.held_locks() == []


def test_one_thread_context_shared_by_several_threads() -> None:
    manager = LockManager({"db": 1})
    guard = manager.acquire("db")
    inside: list[str] = []
    overlaps: list[str] = []
    barrier = threading.Barrier(3)

    def use() -> None:
        barrier.wait(JOIN)
        for _ in range(50):
            with guard:
                if inside:
                    overlaps.append(threading.current_thread().name)
                inside.append(threading.current_thread().name)
                assert manager.held_locks() == ["db"]
                inside.pop()

    threads = [threading.Thread(target=use, name=f"t{i}") for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN)
    assert overlaps == []
    assert not manager.get_lock_status()["db"]["is_locked"]
    assert manager.statistics()["db"].acquisitions == 150


# -- tasks ---------------------------------------------------------------------


async def _hold_next(manager: AsyncLockManager, name: str, inside: anyio.Event,
                     let_go: anyio.Event) -> None:  # fmt: skip
    async with manager.acquire(name, timeout=JOIN):
        inside.set()
        await let_go.wait()


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["acquire", "managed lock"])
async def test_task_exit_after_an_early_release_names_the_new_owner(how: str) -> None:
    manager = AsyncLockManager({"a": 1})
    lock = await manager.get_lock("a")
    inside, let_go = anyio.Event(), anyio.Event()
    context: Any = manager.acquire("a") if how == "acquire" else lock
    async with anyio.create_task_group() as tg:
        with pytest.raises(RuntimeError) as caught:
            async with context:
                tg.start_soon(_hold_next, manager, "a", inside, let_go, name="next")
                await wait_for(lambda: lock.info.waiters == 1)
                lock.release()  # hands the lock to "next"
                await inside.wait()
        assert "it is held by task 'next'" in str(caught.value)
        status = (await manager.get_lock_status())["a"]
        assert status["owner"] == "task 'next'" and status["depth"] == 1
        assert manager.held_locks() == []
        let_go.set()
    assert not lock.locked()
    async with manager.acquire("a", timeout=1):  # nothing was stranded
        pass


@pytest.mark.anyio
async def test_task_exit_releases_the_rest_of_the_set_before_it_raises() -> None:
    manager = AsyncLockManager({"a": 1, "b": 2})
    a = await manager.get_lock("a")
    with pytest.raises(RuntimeError, match=r"'a'.*it is not held"):
        async with manager.acquire("a", "b"):
            a.release()
    status = await manager.get_lock_status()
    assert not status["a"]["is_locked"] and not status["b"]["is_locked"]
    assert manager.held_locks() == []


@pytest.mark.anyio
async def test_a_stranger_cannot_release_through_a_managed_lock() -> None:
    manager = AsyncLockManager({"a": 1})
    lock = await manager.get_lock("a")
    errors: list[str] = []

    async def stranger() -> None:
        for release in (lock.release, lock.arelease):
            try:
                result = release()
                if result is not None:
                    await result
            except RuntimeError as exc:
                errors.append(str(exc))

    async with lock:
        async with anyio.create_task_group() as tg:
            tg.start_soon(stranger, name="stranger")
        assert lock.owned_by_current_task() and lock.info.depth == 1
    assert len(errors) == 2
    assert all("from task 'stranger'" in e and "held by task" in e for e in errors)


@pytest.mark.anyio
@pytest.mark.parametrize("share", ["acquire", "managed lock"])
async def test_one_task_context_shared_by_several_tasks(share: str) -> None:
    manager = AsyncLockManager({"db": 1})
    guard: Any = (
        manager.acquire("db") if share == "acquire" else await manager.get_lock("db")
    )
    inside: list[str] = []
    overlaps: list[int] = []

    async def use(index: int) -> None:
        for _ in range(20):
            async with guard:
                if inside:
                    overlaps.append(index)
                inside.append("x")
                assert manager.held_locks() == ["db"]
                await anyio.lowlevel.checkpoint()
                inside.pop()

    async with anyio.create_task_group() as tg:
        for index in range(3):
            tg.start_soon(use, index)
    assert overlaps == []
    status = (await manager.get_lock_status())["db"]
    assert not status["is_locked"] and status["waiters"] == 0
    assert manager.statistics()["db"].acquisitions == 60
    async with manager.acquire("db", timeout=1):
        pass


@pytest.mark.anyio
async def test_a_shared_context_reentered_by_its_holder_then_used_by_another_task() -> (
    None
):
    manager = AsyncLockManager({"db": None})
    guard = manager.acquire("db")
    first_in, second_in = anyio.Event(), anyio.Event()
    first_out = anyio.Event()
    log: list[str] = []

    async def first() -> None:
        async with guard:
            first_in.set()
            async with guard:  # the same context again, in the same task
                await second_started.wait()
            log.append("first out")
        first_out.set()

    async def second() -> None:
        second_started.set()
        async with guard:  # waits for "first"
            second_in.set()
            log.append("second in")

    second_started = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(first, name="first")
        await first_in.wait()
        tg.start_soon(second, name="second")
    assert log == ["first out", "second in"]
    assert not (await manager.get_lock_status())["db"]["is_locked"]
