"""Regressions found by the stress suite (tests-stress/test_lock_managers.py)."""

from __future__ import annotations

import math
import threading
from fractions import Fraction

import anyio
import pytest
from anyio.lowlevel import checkpoint

from cc.locks import AsyncLockManager, LockManager, LockTimeoutError
from cc.primitives.lowlevel import checkpoint_due


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
            # Neither the release nor the attempt below may be the checkpoint
            # rule's due call (next-in-line would run in between): spend the
            # thread's budget up to that call.
            while not checkpoint_due():
                pass
        # released: handed to next-in-line, which has not run yet
        with pytest.raises(LockTimeoutError) as caught:
            async with manager.acquire("a", blocking=False):
                pytest.fail(
                    "acquired a lock handed to another task"
                )  # pragma: no cover
    assert caught.value.holder == "task 'next-in-line'", str(caught.value)
    assert "just handed" in str(caught.value)


# Bad arguments found by tests-stress/test_bad_input.py: each must raise the
# documented error, naming the argument, not an error from deep inside.

BAD_TIMEOUT_TYPES = ["1", [], True, False, object()]


@pytest.mark.parametrize("timeout", BAD_TIMEOUT_TYPES, ids=repr)
def test_lock_manager_acquire_refuses_a_timeout_that_is_not_a_number(
    timeout: object,
) -> None:
    manager = LockManager({"a": 1})
    # Cache contexts for 0, 1 and 10: a bool equal to one must still be refused.
    for valid in (0, 1, 1.0, 10.0):
        with manager.acquire("a", timeout=valid):
            pass
    with pytest.raises(TypeError, match=r"^timeout must be a number of seconds"):
        manager.acquire("a", timeout=timeout)  # type: ignore[arg-type]


@pytest.mark.parametrize("timeout", [math.nan, -1, -0.5])
def test_lock_manager_acquire_refuses_a_negative_or_nan_timeout(
    timeout: float,
) -> None:
    with pytest.raises(ValueError, match=r"^timeout must be a number of seconds >= 0"):
        LockManager({"a": 1}).acquire("a", timeout=timeout)


def test_lock_manager_acquire_accepts_any_real_timeout() -> None:
    manager = LockManager({"a": 1})
    for timeout in (Fraction(1, 2), 3, 10**100, math.inf, None):
        with manager.acquire("a", timeout=timeout):  # type: ignore[arg-type]
            assert manager.held_locks() == ["a"]


@pytest.mark.parametrize("timeout", [*BAD_TIMEOUT_TYPES, None], ids=repr)
def test_managed_lock_acquire_refuses_a_timeout_that_is_not_a_number(
    timeout: object,
) -> None:
    lock = LockManager({"a": 1}).get_lock("a")
    with pytest.raises(TypeError, match=r"^timeout must be a number of seconds or -1"):
        lock.acquire(timeout=timeout)  # type: ignore[arg-type]
    assert not lock.locked()


def test_managed_lock_acquire_refuses_nan_and_keeps_minus_one() -> None:
    lock = LockManager({"a": 1}).get_lock("a")
    with pytest.raises(ValueError, match=r"timeout must be a number of seconds >= 0"):
        lock.acquire(timeout=math.nan)
    assert lock.acquire(timeout=-1) is True
    assert lock.acquire(timeout=2.5) is True
    lock.release()
    lock.release()
    assert not lock.locked()


@pytest.mark.anyio
@pytest.mark.parametrize("timeout", BAD_TIMEOUT_TYPES, ids=repr)
async def test_async_lock_manager_acquire_refuses_a_timeout_that_is_not_a_number(
    timeout: object,
) -> None:
    manager = AsyncLockManager({"a": 1})
    with pytest.raises(TypeError, match=r"^timeout must be a number of seconds"):
        manager.acquire("a", timeout=timeout)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^timeout must be a number of seconds >= 0"):
        manager.acquire("a", timeout=math.nan)
    async with manager.acquire("a", timeout=Fraction(1, 2)):  # type: ignore[arg-type]
        assert manager.held_locks() == ["a"]


@pytest.mark.parametrize("name", [["a"], 5, None, b"a"], ids=repr)
def test_lock_manager_refuses_a_name_that_is_not_a_str(name: object) -> None:
    manager = LockManager({"a": 1})
    for call in (
        lambda: manager.acquire(name),  # type: ignore[arg-type]
        lambda: manager.acquire("a", name),  # type: ignore[arg-type]
        lambda: manager.get_lock(name),  # type: ignore[arg-type]
        lambda: manager.get_lock_info(name),  # type: ignore[arg-type]
        lambda: manager.lease(name),  # type: ignore[arg-type]
        lambda: manager.register_lock(name, 2),  # type: ignore[arg-type]
    ):
        with pytest.raises(TypeError, match=r"\bname must be a str\b"):
            call()
    assert manager.held_locks() == []


@pytest.mark.anyio
@pytest.mark.parametrize("name", [["a"], 5, None], ids=repr)
async def test_async_lock_manager_refuses_a_name_that_is_not_a_str(
    name: object,
) -> None:
    manager = AsyncLockManager({"a": 1})
    with pytest.raises(TypeError, match=r"\bname must be a str\b"):
        manager.acquire(name)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"\bname must be a str\b"):
        await manager.get_lock(name)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"\bname must be a str\b"):
        manager.get_lock_info_nowait(name)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"\bname must be a str\b"):
        await manager.register_lock(name, 2)  # type: ignore[arg-type]


@pytest.mark.parametrize("how", ["manager.acquire", "ManagedLock.acquire"])
def test_huge_finite_timeout_on_a_held_lock_waits(how: str) -> None:
    # 1e10 s is above threading.TIMEOUT_MAX: RLock.acquire raised OverflowError.
    assert threading.TIMEOUT_MAX < 1e10
    manager = LockManager({"a": 1})
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with manager.acquire("a", timeout=None):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold, name="holder")
    holder.start()
    try:
        assert held.wait(10)
        threading.Timer(0.05, release.set).start()
        if how == "manager.acquire":
            with manager.acquire("a", timeout=1e10):
                assert manager.held_locks() == ["a"]
        else:
            lock = manager.get_lock("a")
            assert lock.acquire(timeout=1e10) is True
            lock.release()
    finally:
        release.set()
        holder.join(10)
    assert not holder.is_alive()
