"""Regressions found by the stress suite (tests-stress/test_lock_managers.py)."""

from __future__ import annotations

import threading

import anyio
import pytest
from anyio.lowlevel import checkpoint

from cc.locks import AsyncLockManager, LockManager, LockTimeoutError


@pytest.mark.parametrize("how", ["manager.acquire", "ManagedLock.acquire"])
def test_spent_deadline_on_a_held_lock_is_a_timeout(how: str) -> None:
    manager = LockManager({"a": 1})
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        with manager.acquire("a", timeout=None):
            held.set()
            done.wait(10)

    holder = threading.Thread(target=hold, name="holder")
    holder.start()
    try:
        assert held.wait(10)
        if how == "manager.acquire":
            with (
                pytest.raises(LockTimeoutError, match="thread 'holder'"),
                manager.acquire("a", timeout=0),
            ):
                pytest.fail("acquired a held lock")  # pragma: no cover
        else:
            assert manager.get_lock("a").acquire(timeout=0) is False
    finally:
        done.set()
        holder.join(10)
    assert not holder.is_alive()


@pytest.mark.anyio
async def test_timeout_names_the_task_a_lock_was_handed_to() -> None:
    manager = AsyncLockManager({"a": 1})

    async def next_in_line() -> None:
        async with manager.acquire("a", timeout=None):
            pass

    async with anyio.create_task_group() as tg:
        async with manager.acquire("a"):
            tg.start_soon(next_in_line, name="next-in-line")
            while (await manager.get_lock_status())["a"]["waiters"] == 0:
                await checkpoint()
        # released: handed to next-in-line, which has not run yet
        with pytest.raises(LockTimeoutError) as caught:
            async with manager.acquire("a", blocking=False):
                pytest.fail(
                    "acquired a lock handed to another task"
                )  # pragma: no cover
    assert caught.value.holder == "task 'next-in-line'", str(caught.value)
    assert "just handed" in str(caught.value)
