"""Taking locks with some already in hand: the lean path must check what it skips.

``take_free`` takes a set without calling the checks when no check can
fail: from an empty hand, or from a hand whose top and ceiling are declared
orders below the set's first. Each test here is a case where a check *must*
run (or a re-entry be counted) with locks in hand, on both managers.
"""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest

from cc.locks import AsyncLockManager, LockManager, LockOrderError, LockTimeoutError

POLICIES = ["raise", "warn", "off"]


def _held(status: dict[str, dict[str, Any]]) -> dict[str, int]:
    return {name: s["depth"] for name, s in status.items() if s["is_locked"]}


# -- threads -------------------------------------------------------------------


def test_a_lower_order_under_a_held_one_is_refused_and_nothing_stays_held() -> None:
    manager = LockManager({"a": 1, "b": 2, "c": 3})
    with manager.acquire("c"):
        with (
            pytest.raises(LockOrderError, match=r"'a'.*'c'"),
            manager.acquire("b", "a"),
        ):
            pytest.fail("took b and a under c")  # pragma: no cover
        assert _held(manager.get_lock_status()) == {"c": 1}
    assert _held(manager.get_lock_status()) == {}


def test_the_ceiling_counts_and_not_only_the_top() -> None:
    # c, then a (a violation, only warned), then b: b is above the top (a)
    # but below the ceiling (c), so it is a violation too.
    manager = LockManager({"a": 1, "b": 2, "c": 3}, policy="warn")
    with manager.acquire("c"), manager.acquire("a"), manager.acquire("b"):
        assert _held(manager.get_lock_status()) == {"a": 1, "b": 1, "c": 1}
    reports = manager.detect_potential_deadlocks()
    assert any("'a'" in r and "'c'" in r for r in reports), reports
    assert any("'b'" in r and "'c'" in r for r in reports), reports


def test_an_undeclared_top_or_lock_is_learned_from_a_hand() -> None:
    manager = LockManager({"a": 1, "u": None})
    with manager.acquire("a"), manager.acquire("u"):  # learns a -> u
        pass
    with (
        manager.acquire("u"),
        pytest.raises(LockOrderError, match="'a'"),
        manager.acquire("a"),
    ):
        pytest.fail("took a under u against the learned order")  # pragma: no cover
    assert _held(manager.get_lock_status()) == {}


@pytest.mark.parametrize("policy", POLICIES)
def test_a_held_lock_in_the_set_is_reentered_not_retaken(policy: str) -> None:
    manager = LockManager({"a": 1, "b": 2}, policy=policy)  # type: ignore[arg-type]
    with manager.acquire("a"):
        with manager.acquire("b", "a"):
            assert _held(manager.get_lock_status()) == {"a": 2, "b": 1}
        assert _held(manager.get_lock_status()) == {"a": 1}
        assert manager.get_lock_info("a").statistics().acquisitions == 1
    assert _held(manager.get_lock_status()) == {}


@pytest.mark.parametrize("policy", POLICIES)
def test_a_busy_lock_under_a_hand_waits_and_times_out(policy: str) -> None:
    manager = LockManager({"a": 1, "b": 2}, policy=policy)  # type: ignore[arg-type]
    held, done = threading.Event(), threading.Event()

    def hold_b() -> None:
        with manager.acquire("b"):
            held.set()
            done.wait(10)

    other = threading.Thread(target=hold_b, name="other")
    other.start()
    try:
        assert held.wait(10)
        with manager.acquire("a"):
            with (
                pytest.raises(LockTimeoutError, match="thread 'other'"),
                manager.acquire("b", timeout=0.05),
            ):
                pytest.fail("took a held lock")  # pragma: no cover
            assert _held(manager.get_lock_status()) == {"a": 1, "b": 1}
            assert manager.get_lock("a").owned_by_current_thread()
            assert not manager.get_lock("b").owned_by_current_thread()
    finally:
        done.set()
        other.join(10)
    assert _held(manager.get_lock_status()) == {}


def test_with_checks_off_any_order_goes_and_releases_cleanly() -> None:
    manager = LockManager({"a": 1, "b": 2}, policy="off", detect_deadlocks=False)
    with manager.acquire("b"), manager.acquire("a"):
        assert manager.get_lock_info("a").owner == manager.get_lock_info("b").owner
    with manager.acquire("a"), manager.acquire("b"):
        pass
    assert _held(manager.get_lock_status()) == {}
    assert manager.detect_potential_deadlocks() == []


# -- tasks -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_task_lower_order_under_a_held_one_is_refused() -> None:
    manager = AsyncLockManager({"a": 1, "b": 2, "c": 3})
    async with manager.acquire("c"):
        with pytest.raises(LockOrderError, match=r"'a'.*'c'"):
            async with manager.acquire("b", "a"):
                pytest.fail("took b and a under c")  # pragma: no cover
        assert _held(await manager.get_lock_status()) == {"c": 1}
    assert _held(await manager.get_lock_status()) == {}


@pytest.mark.anyio
async def test_task_ceiling_counts_and_undeclared_orders_are_learned() -> None:
    manager = AsyncLockManager({"a": 1, "b": 2, "c": 3, "u": None}, policy="warn")
    async with manager.acquire("c"), manager.acquire("a"), manager.acquire("b"):
        pass
    async with manager.acquire("a"), manager.acquire("u"):  # learns a -> u
        pass
    async with manager.acquire("u"), manager.acquire("a"):  # an inversion
        pass
    reports = await manager.detect_potential_deadlocks()
    assert any("'b'" in r and "'c'" in r for r in reports), reports
    assert any("'u'" in r and "'a'" in r and "learned" in r for r in reports), reports


@pytest.mark.anyio
@pytest.mark.parametrize("policy", POLICIES)
async def test_task_held_lock_in_the_set_is_reentered(policy: str) -> None:
    manager = AsyncLockManager({"a": 1, "b": 2}, policy=policy)  # type: ignore[arg-type]
    async with manager.acquire("a"):
        async with manager.acquire("a", "b"):
            assert _held(await manager.get_lock_status()) == {"a": 2, "b": 1}
        assert _held(await manager.get_lock_status()) == {"a": 1}
    assert _held(await manager.get_lock_status()) == {}


@pytest.mark.anyio
@pytest.mark.parametrize("policy", POLICIES)
async def test_task_busy_lock_under_a_hand_times_out_keeping_the_hand(
    policy: str,
) -> None:
    manager = AsyncLockManager({"a": 1, "b": 2}, policy=policy)  # type: ignore[arg-type]
    held, done = anyio.Event(), anyio.Event()

    async def hold_b() -> None:
        async with manager.acquire("b"):
            held.set()
            await done.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(hold_b, name="other")
        await held.wait()
        async with manager.acquire("a"):
            with pytest.raises(LockTimeoutError, match="task 'other'"):
                async with manager.acquire("b", timeout=0.05):
                    pytest.fail("took a held lock")  # pragma: no cover
            status = await manager.get_lock_status()
            assert _held(status) == {"a": 1, "b": 1}
            assert status["a"]["owner"] != status["b"]["owner"]
        done.set()
    assert _held(await manager.get_lock_status()) == {}
