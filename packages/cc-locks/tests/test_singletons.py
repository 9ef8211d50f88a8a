"""The process-wide managers: one instance, even under concurrent first calls."""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio
import pytest

import cc.locks._singletons as singletons
from cc.locks import (
    AsyncLockManager,
    LockManager,
    get_async_lock_manager,
    get_lock_manager,
)


@pytest.fixture
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend no manager was created yet, and make creating one slow.

    A slow constructor widens the window in which an unguarded getter would
    build two instances, so that the test fails reliably if it is unguarded.
    """
    monkeypatch.setattr(singletons, "_managers", {})
    for cls in (LockManager, AsyncLockManager):
        original = cls.__init__

        def slow_init(
            self: Any, *args: Any, _original: Any = original, **kw: Any
        ) -> None:
            time.sleep(0.02)
            _original(self, *args, **kw)

        monkeypatch.setattr(cls, "__init__", slow_init)


def _call_together(target: Any, count: int = 12) -> list[Any]:
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        barrier.wait(5)
        results[index] = target()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()
    return results


@pytest.mark.usefixtures("fresh_process")
def test_concurrent_first_calls_share_one_lock_manager() -> None:
    managers = _call_together(get_lock_manager)
    assert all(isinstance(m, LockManager) for m in managers)
    assert len({id(m) for m in managers}) == 1
    assert get_lock_manager() is managers[0]


@pytest.mark.usefixtures("fresh_process")
def test_concurrent_first_calls_share_one_async_lock_manager() -> None:
    def in_own_event_loop() -> AsyncLockManager:
        return anyio.run(get_async_lock_manager)

    managers = _call_together(in_own_event_loop)
    assert all(isinstance(m, AsyncLockManager) for m in managers)
    assert len({id(m) for m in managers}) == 1


@pytest.mark.usefixtures("global_lock_manager")
def test_the_global_manager_loads_a_declared_hierarchy() -> None:
    manager = get_lock_manager()
    manager.register_locks(
        {"orchestration": (0, "hub start-up"), "logger": 100, "config": 200}
    )
    with manager.acquire("config", "orchestration"):
        assert manager.held_locks() == ["orchestration", "config"]
    with pytest.raises(ValueError, match="already registered"):
        get_lock_manager().register_locks({"extra": 300, "logger": 101})
    assert sorted(get_lock_manager().get_lock_status()) == [
        "config",
        "logger",
        "orchestration",
    ]


def test_the_global_manager_is_left_empty_by_the_previous_test() -> None:
    assert get_lock_manager().get_lock_status() == {}
