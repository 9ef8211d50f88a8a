"""Bad input at the boundary: ``blocking`` must be a bool, huge numbers mean forever.

An int too large for a float (``10**400``) is a valid number of seconds: as a
timeout or a threshold it means "as long as it takes" (the arguments accept
``None`` for that), and the manager stays usable afterwards.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import anyio
import pytest

from cc.locks import AsyncLockManager, LockManager

HUGE = 10**400
NOT_BOOLS = ["False", None, 0, 1, 1.0, [], object()]


@pytest.mark.parametrize("blocking", NOT_BOOLS, ids=repr)
def test_thread_blocking_must_be_a_bool(blocking: Any) -> None:
    manager = LockManager({"a": 1})
    with pytest.raises(TypeError, match=r"^blocking must be a bool, not "):
        manager.acquire("a", blocking=blocking)
    with pytest.raises(TypeError, match=r"^blocking must be a bool, not "):
        manager.get_lock("a").acquire(blocking)
    assert not manager.get_lock("a").locked()
    with manager.acquire("a", blocking=False):  # still usable
        assert manager.held_locks() == ["a"]


@pytest.mark.anyio
@pytest.mark.parametrize("blocking", NOT_BOOLS, ids=repr)
async def test_task_blocking_must_be_a_bool(blocking: Any) -> None:
    manager = AsyncLockManager({"a": 1})
    with pytest.raises(TypeError, match=r"^blocking must be a bool, not "):
        manager.acquire("a", blocking=blocking)
    async with manager.acquire("a", blocking=False):
        assert manager.held_locks() == ["a"]


def _held_by_another_thread(manager: LockManager, name: str) -> threading.Event:
    """Hold ``name`` in a thread until 50 ms after this returns."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with manager.acquire(name, timeout=None):
            held.set()
            release.wait(10)

    threading.Thread(target=hold, name="holder", daemon=True).start()
    assert held.wait(10)
    threading.Timer(0.05, release.set).start()
    return release


def test_a_huge_int_timeout_waits_as_long_as_it_takes_on_threads() -> None:
    manager = LockManager({"a": 1})
    with manager.acquire("a", timeout=HUGE):  # free: taken at once
        pass
    _held_by_another_thread(manager, "a")
    with manager.acquire("a", timeout=HUGE):  # held: waits until released
        assert manager.held_locks() == ["a"]
    _held_by_another_thread(manager, "a")
    lock = manager.get_lock("a")
    assert lock.acquire(timeout=HUGE) is True
    lock.release()
    assert manager.statistics()["a"].timeouts == 0


@pytest.mark.anyio
async def test_a_huge_int_timeout_waits_as_long_as_it_takes_on_tasks() -> None:
    manager = AsyncLockManager({"a": 1})
    async with manager.acquire("a", timeout=HUGE):
        pass
    taken = anyio.Event()

    async def hold() -> None:
        async with manager.acquire("a"):
            taken.set()
            await anyio.sleep(0.05)

    async with anyio.create_task_group() as tg:
        tg.start_soon(hold)
        await taken.wait()
        async with manager.acquire("a", timeout=HUGE):  # has to wait
            assert manager.held_locks() == ["a"]
    assert manager.statistics()["a"].contended_acquisitions == 1


@pytest.mark.parametrize("manager_class", [LockManager, AsyncLockManager])
def test_a_huge_long_hold_threshold_never_warns(
    manager_class: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="cc.locks")
    manager = manager_class({"a": 1}, long_hold_threshold=HUGE)
    assert manager.long_hold_threshold is None  # forever, like None
    if manager_class is LockManager:
        with manager.acquire("a"):
            pass
        assert manager.detect_potential_deadlocks() == []
    assert caplog.records == []


@pytest.mark.parametrize("manager_class", [LockManager, AsyncLockManager])
@pytest.mark.parametrize("threshold", [-1, "x", float("nan"), True], ids=repr)
def test_a_bad_long_hold_threshold_is_named(manager_class: Any, threshold: Any) -> None:
    with pytest.raises((TypeError, ValueError), match="long_hold_threshold"):
        manager_class(long_hold_threshold=threshold)
