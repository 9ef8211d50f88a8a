"""cc.primitives.lowlevel: the parking lot, the checkpoint rule, task identity."""

from __future__ import annotations

import threading
from collections.abc import Hashable

import anyio
import pytest

import cc.primitives
from cc.primitives import lowlevel
from cc.primitives.lowlevel import (
    CHECKPOINT_INTERVAL,
    ParkingLot,
    checkpoint,
    checkpoint_due,
    checkpoint_rule,
    take_checkpoint,
)

pytestmark = pytest.mark.anyio


async def _park_in_order(
    tg: anyio.abc.TaskGroup, lot: ParkingLot, keys: list[str], got: dict[str, object]
) -> None:
    async def waiter(key: str) -> None:
        got[key] = await lot.park(key)

    for key in keys:
        tg.start_soon(waiter, key)
        await anyio.wait_all_tasks_blocked()


async def test_tasks_are_woken_first_in_first_out_with_their_values() -> None:
    lot = ParkingLot()
    got: dict[str, object] = {}
    async with anyio.create_task_group() as tg:
        await _park_in_order(tg, lot, ["a", "b", "c", "d"], got)
        assert len(lot) == 4 and lot and "c" in lot and "x" not in lot
        assert lot.first() == "a"
        assert lot.unpark("for a") == "a"
        assert lot.first() == "b"
        assert lot.unpark_n(2, "for b and c") == 2
        assert len(lot) == 1
        assert lot.unpark_all("for d") == 1
        assert not lot and len(lot) == 0
    assert got == {"a": "for a", "b": "for b and c", "c": "for b and c", "d": "for d"}


async def test_unpark_n_and_all_stop_at_the_parked_count() -> None:
    lot = ParkingLot()
    got: dict[str, object] = {}
    async with anyio.create_task_group() as tg:
        await _park_in_order(tg, lot, ["a", "b"], got)
        assert lot.unpark_n(5) == 2
    assert got == {"a": None, "b": None}
    assert lot.unpark_all() == 0
    assert lot.unpark_n(3) == 0


def test_an_empty_lot_refuses_to_unpark_or_peek() -> None:
    lot = ParkingLot()
    with pytest.raises(LookupError, match="no task is parked"):
        lot.unpark()
    with pytest.raises(LookupError, match="no task is parked"):
        lot.first()
    assert repr(lot) == "<ParkingLot parked=0>"


async def test_default_keys_are_fresh_and_distinct() -> None:
    lot = ParkingLot()
    keys: list[Hashable] = []
    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(lot.park)
        await anyio.wait_all_tasks_blocked()
        while lot:
            keys.append(lot.unpark())
    assert len(set(keys)) == 3


async def test_a_key_parks_only_once() -> None:
    lot = ParkingLot()
    async with anyio.create_task_group() as tg:
        tg.start_soon(lot.park, "k")
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(RuntimeError, match="'k' is already parked"):
            await lot.park("k")
        assert len(lot) == 1
        lot.unpark()


async def test_cancelled_while_parked_leaves_without_a_trace() -> None:
    lot = ParkingLot()
    handed: list[object] = []
    got: dict[str, object] = {}
    async with anyio.create_task_group() as tg:
        await _park_in_order(tg, lot, ["a"], got)
        for key in ("b", "c"):
            async with anyio.create_task_group() as doomed:
                doomed.start_soon(lot.park, key, handed.append)
                await anyio.wait_all_tasks_blocked()
                assert key in lot
                doomed.cancel_scope.cancel()
            assert key not in lot
        assert len(lot) == 1 and lot.first() == "a"
        lot.unpark("only a")
    assert got == {"a": "only a"}
    assert handed == []
    assert not lot


async def test_the_last_waiter_cancelled_empties_the_lot() -> None:
    lot = ParkingLot()
    async with anyio.create_task_group() as doomed:
        doomed.start_soon(lot.park)
        await anyio.wait_all_tasks_blocked()
        assert len(lot) == 1
        doomed.cancel_scope.cancel()
    assert not lot and len(lot) == 0
    got: dict[str, object] = {}
    async with anyio.create_task_group() as tg:
        await _park_in_order(tg, lot, ["again"], got)
        lot.unpark(1)
    assert got == {"again": 1}


async def test_a_value_without_hand_back_is_dropped_and_the_cancel_propagates() -> None:
    lot = ParkingLot()
    async with anyio.create_task_group() as tg:
        tg.start_soon(lot.park)
        await anyio.wait_all_tasks_blocked()
        tg.cancel_scope.cancel()
        lot.unpark("nobody needs this back")
    assert tg.cancel_scope.cancelled_caught
    assert not lot


async def test_cancelled_then_woken_before_it_resumes_hands_the_value_back() -> None:
    """Cancelled first, woken by another task in the same tick: the value
    reaches ``hand_back`` on every backend, and the cancellation propagates."""
    lot = ParkingLot()
    received: list[object] = []
    handed: list[object] = []

    async def waiter() -> None:
        received.append(await lot.park(hand_back=handed.append))

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        tg.cancel_scope.cancel()
        lot.unpark("token")
    assert tg.cancel_scope.cancelled_caught
    assert (received, handed) == ([], ["token"])
    assert not lot


async def test_woken_then_cancelled_keeps_the_value() -> None:
    """Woken first, cancelled in the same tick: the task resumes with the
    value (anyio never interrupts a wait that already ended) and the
    cancellation arrives at its next checkpoint."""
    lot = ParkingLot()
    received: list[object] = []
    handed: list[object] = []

    async def waiter() -> None:
        received.append(await lot.park(hand_back=handed.append))
        await checkpoint()
        received.append("not cancelled")  # pragma: no cover

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        lot.unpark("token")
        tg.cancel_scope.cancel()
    assert received + handed == ["token"]
    assert not lot


@pytest.mark.parametrize(
    "anyio_backend",
    [
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("asyncio", {"use_uvloop": True}), id="asyncio+uvloop"),
    ],
)
async def test_native_asyncio_cancel_of_a_woken_waiter_hands_the_value_back() -> None:
    """asyncio's own Task.cancel() (asyncio.wait_for, a framework) throws into
    a wait that has already ended: the value goes to hand_back. (trio has no
    such cancellation; the other tests cover it.)"""
    lot = ParkingLot()
    handed: list[object] = []
    outcome: list[str] = []
    task: list[object] = []

    async def waiter() -> None:
        task.append(lowlevel.current_task_key())
        try:
            await lot.park(hand_back=handed.append)
        except BaseException as exc:  # the native cancellation
            outcome.append(type(exc).__name__)
        else:  # pragma: no cover
            outcome.append("resumed")

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        lot.unpark("token")
        task[0].cancel()  # type: ignore[attr-defined]
    assert outcome == ["CancelledError"]
    assert handed == ["token"]


async def test_hand_back_may_pass_the_value_to_the_next_waiter() -> None:
    lot = ParkingLot()
    got: dict[str, object] = {}

    def pass_on(value: object) -> None:
        lot.unpark(value)

    async with anyio.create_task_group() as tg:
        async with anyio.create_task_group() as inner:
            inner.start_soon(lot.park, "first", pass_on)
            await anyio.wait_all_tasks_blocked()
            await _park_in_order(tg, lot, ["second"], got)
            inner.cancel_scope.cancel()
            assert lot.unpark("baton") == "first"  # cancelled, not resumed yet
    assert got == {"second": "baton"}
    assert not lot


async def test_a_lot_can_be_reused_after_it_empties() -> None:
    lot = ParkingLot()
    for round_ in range(3):
        got: dict[str, object] = {}
        async with anyio.create_task_group() as tg:
            await _park_in_order(tg, lot, ["x", "y"], got)
            assert len(lot) == 2
            lot.unpark_all(round_)
        assert got == {"x": round_, "y": round_}
        assert not lot


def test_checkpoint_rule_resolves_fast_acquire() -> None:
    _align()
    rule = checkpoint_rule(None)  # spends the same budget as checkpoint_due
    calls = [
        next(rule) if n % 2 else checkpoint_due() for n in range(CHECKPOINT_INTERVAL)
    ]
    assert calls == [False] * (CHECKPOINT_INTERVAL - 1) + [True]
    always, never = checkpoint_rule(False), checkpoint_rule(True)
    assert [next(always) for _ in range(3 * CHECKPOINT_INTERVAL)] == [True] * (
        3 * CHECKPOINT_INTERVAL
    )
    assert not any(next(never) for _ in range(3 * CHECKPOINT_INTERVAL))
    # neither spends the thread's budget
    assert [checkpoint_due() for _ in range(CHECKPOINT_INTERVAL)] == [False] * (
        CHECKPOINT_INTERVAL - 1
    ) + [True]


@pytest.mark.parametrize("bad", [1, 0, "yes", 1.0, object()])
def test_checkpoint_rule_refuses_anything_but_a_bool_or_none(bad: object) -> None:
    with pytest.raises(TypeError, match="fast_acquire must be True, False or None"):
        checkpoint_rule(bad)  # type: ignore[arg-type]


def _align() -> None:
    """Spend the thread's budget until a checkpoint was just due."""
    while not checkpoint_due():
        pass


def test_checkpoint_due_once_in_every_interval_of_calls() -> None:
    _align()
    calls = [checkpoint_due() for _ in range(5 * CHECKPOINT_INTERVAL)]
    assert calls.count(True) == 5
    for start in range(0, len(calls), CHECKPOINT_INTERVAL):
        window = calls[start : start + CHECKPOINT_INTERVAL]
        assert window == [False] * (CHECKPOINT_INTERVAL - 1) + [True]


def test_checkpoint_budget_is_per_thread() -> None:
    _align()
    for _ in range(CHECKPOINT_INTERVAL - 1):
        assert not checkpoint_due()
    # This thread is one call away from a checkpoint; another thread's calls
    # neither spend nor refill this thread's budget.
    other: list[bool] = []
    thread = threading.Thread(
        target=lambda: other.extend(
            checkpoint_due() for _ in range(2 * CHECKPOINT_INTERVAL - 1)
        )
    )
    thread.start()
    thread.join()
    assert other.count(True) == 1  # a fresh thread starts with a full budget
    assert other[CHECKPOINT_INTERVAL - 1] is True
    assert checkpoint_due() is True


def test_take_checkpoint_rebinds_a_rule_to_the_thread_that_runs_it() -> None:
    _align()
    for _ in range(CHECKPOINT_INTERVAL - 1):
        checkpoint_due()
    rule = checkpoint_rule(None)  # bound to this thread, one call from due
    seen: list[object] = []

    async def elsewhere() -> None:
        nonlocal rule
        assert next(rule)  # still this thread's budget: due
        rule = await take_checkpoint(rule)  # now the running thread's
        _align()
        seen.extend(
            next(rule) if n % 2 else checkpoint_due()
            for n in range(CHECKPOINT_INTERVAL)
        )
        for fast_acquire in (False, True):
            fixed = checkpoint_rule(fast_acquire)
            assert await take_checkpoint(fixed) is fixed

    thread = threading.Thread(target=anyio.run, args=(elsewhere,))
    thread.start()
    thread.join()
    assert seen == [False] * (CHECKPOINT_INTERVAL - 1) + [True]
    # the other thread spent this thread's last unit once, then its own
    assert checkpoint_due() is False


@pytest.mark.parametrize("fast_acquire", [None, False])
async def test_a_loop_of_non_waiting_calls_lets_others_run_and_ends_at_its_deadline(
    fast_acquire: bool | None,
) -> None:
    """The issue's loop, on an operation built from the lowlevel pieces: the
    other task runs, and the loop ends after its deadline, within two
    checkpoints (2 * CHECKPOINT_INTERVAL calls). At the first one the event
    loop turns the deadline into a cancellation (asyncio) or may run the
    looping task first in its batch (trio); the second one settles it."""
    due = checkpoint_rule(fast_acquire)
    ran = False

    async def operation() -> None:
        if next(due):
            await checkpoint()

    async def other() -> None:
        nonlocal ran
        ran = True

    calls = 0
    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
        while not ran:
            await operation()
            calls += 1
    assert calls <= 2 * CHECKPOINT_INTERVAL

    late_calls = 0
    with anyio.move_on_after(0.02) as scope:
        while True:
            await operation()
            if scope.cancel_called:  # the event loop has processed the deadline
                late_calls += 1
    assert scope.cancelled_caught
    assert late_calls <= 2 * CHECKPOINT_INTERVAL


async def test_a_cancellation_is_noticed_within_the_interval() -> None:
    due = checkpoint_rule(None)
    calls_after_cancel = 0
    with anyio.CancelScope() as scope:
        scope.cancel()
        while True:
            if next(due):
                await checkpoint()
            calls_after_cancel += 1
    assert calls_after_cancel < CHECKPOINT_INTERVAL


async def test_a_loop_that_never_checkpoints_with_fast_acquire_true() -> None:
    due = checkpoint_rule(True)
    assert not any(next(due) for _ in range(10 * CHECKPOINT_INTERVAL))


def test_lowlevel_exports_its_names_and_the_task_identity() -> None:
    for name in lowlevel.__all__:
        assert getattr(lowlevel, name) is not None, name
        assert getattr(lowlevel, name).__doc__, name
    assert lowlevel.current_task_key is cc.primitives.current_task_key
    assert lowlevel.task_name is cc.primitives.task_name
    assert isinstance(CHECKPOINT_INTERVAL, int) and CHECKPOINT_INTERVAL > 1
