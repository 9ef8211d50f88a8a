"""Deadlock detection through a store that shares waits and learned orders.

Each manager on a :class:`SharingMemoryStore` stands for a process of its
own (``pid 101 on memory``, ``pid 102 on memory``...), and each registers
the locks in an order of its own, so that only the waits shared through the
store can show the cycle. cc-redis runs the same across real processes.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import anyio
import pytest

from cc.locks import (
    AsyncLockManager,
    DeadlockError,
    LockManager,
    LockOrderError,
    LockTimeoutError,
)

from .memory_store import SharingMemoryStore

JOIN = 10.0


def wait_for(predicate: Any) -> None:
    """Wait for ``predicate`` (a hang guard only: it is bound by logic)."""
    deadline = time.monotonic() + JOIN
    while not predicate():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.001)


def cycle_in_threads(
    store: SharingMemoryStore, policy: str, first_timeout: float
) -> tuple[list[Any], list[LockManager]]:
    """Manager 1 holds x and asks for y; then manager 2 holds y, asks for x.

    Returns what each got (``"acquired"`` or the error) and the managers.
    """
    managers = [
        LockManager({"x": 1, "y": 2}, policy=policy, backend=store),  # type: ignore[arg-type]
        LockManager({"y": 1, "x": 2}, policy=policy, backend=store),  # type: ignore[arg-type]
    ]
    for manager in managers:  # opened in order: pid 101, then 102
        manager.get_lock_status()
    outcome: list[Any] = [None, None]
    holding = threading.Barrier(3)
    asking = [threading.Event(), threading.Event()]

    def member(index: int, first: str, second: str, timeout: float) -> None:
        with managers[index].acquire(first):
            holding.wait(JOIN)
            asking[index].wait(JOIN)
            try:
                with managers[index].acquire(second, timeout=timeout):
                    outcome[index] = "acquired"
            except (DeadlockError, LockTimeoutError) as exc:
                outcome[index] = exc

    threads = [
        threading.Thread(target=member, args=(0, "x", "y", first_timeout), name="one"),
        threading.Thread(target=member, args=(1, "y", "x", JOIN), name="two"),
    ]
    for thread in threads:
        thread.start()
    holding.wait(JOIN)
    asking[0].set()
    wait_for(lambda: len(store.waits) == 1)
    asking[1].set()
    if policy == "warn":  # while both wait: the live cycle, seen from outside
        wait_for(lambda: len(store.waits) == 2)
        live = managers[0].detect_potential_deadlocks()
        assert any(
            r.startswith("live deadlock across processes: ")
            and "(pid 101 on memory)" in r
            and "(pid 102 on memory)" in r
            for r in live
        ), live
    for thread in threads:
        thread.join(JOIN)
        assert not thread.is_alive()
    return outcome, managers


def test_raise_gives_the_youngest_waiter_a_deadlock_error() -> None:
    store = SharingMemoryStore()
    outcome, managers = cycle_in_threads(store, "raise", JOIN)
    assert outcome[0] == "acquired"
    error = outcome[1]
    assert isinstance(error, DeadlockError)
    assert error.cycle == ("x", "y", "x")
    assert error.holders == (
        "thread 'one' (pid 101 on memory)",
        "thread 'two' (pid 102 on memory)",
    )
    message = str(error)
    assert message.startswith(
        "deadlock across processes: thread 'two' (pid 102 on memory) waits for "
        "'x', held by thread 'one' (pid 101 on memory), which waits for 'y', "
        "held by thread 'two' (pid 102 on memory). thread 'two' (pid 102 on "
        "memory) asked at "
    )
    assert "is the youngest waiter of the cycle" in message
    reports = managers[1].detect_potential_deadlocks()
    assert any(r.startswith("deadlock across processes averted: ") for r in reports)
    assert store.waits == {}
    for manager in managers:
        manager.close()


def test_warn_logs_once_and_waits_until_the_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = SharingMemoryStore()
    with caplog.at_level(logging.WARNING, logger="cc.locks"):
        outcome, managers = cycle_in_threads(store, "warn", 0.3)
    assert isinstance(outcome[0], LockTimeoutError)
    assert not isinstance(outcome[0], DeadlockError)
    assert outcome[1] == "acquired"  # once the first timed out
    warned = [r.getMessage() for r in caplog.records]
    assert warned and all(m.startswith("deadlock across processes: ") for m in warned)
    assert "each of them waits until its timeout" in warned[0]
    assert len(warned) <= 2  # at most once in each manager, not at every try
    for manager in managers:
        manager.close()


def test_off_publishes_no_wait() -> None:
    store = SharingMemoryStore()
    manager = LockManager({"x": 1}, policy="off", backend=store)  # type: ignore[arg-type]
    other = LockManager({"x": 1}, policy="off", backend=store)  # type: ignore[arg-type]
    with manager, other, manager.acquire("x"):
        with pytest.raises(LockTimeoutError):
            with other.acquire("x", timeout=0.05):
                pass  # pragma: no cover
        assert store.waits == {} and other.detect_potential_deadlocks() == []


def test_an_order_learned_elsewhere_is_checked_here() -> None:
    store = SharingMemoryStore()
    with LockManager({"a": None, "b": None}, backend=store) as first:  # type: ignore[arg-type]
        with first.acquire("a"), first.acquire("b"):
            pass
    # A manager opened later, that never overlapped with the first one.
    with LockManager({"a": None, "b": None}, backend=store) as second:  # type: ignore[arg-type]
        with second.acquire("b"):
            with pytest.raises(LockOrderError) as caught:
                with second.acquire("a"):
                    pass  # pragma: no cover
    message = str(caught.value)
    assert "thread 'MainThread' (pid 102 on memory) takes 'a'" in message
    assert "thread 'MainThread' (pid 101 on memory) took 'b'" in message
    assert "test_shared_detection.py" in message
    assert caught.value.cycle == ("b", "a", "b")


def test_warn_reports_an_order_published_against_one_learned_here(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = SharingMemoryStore()
    first = LockManager({"a": None, "b": None, "c": 5}, policy="warn", backend=store)  # type: ignore[arg-type]
    second = LockManager({"a": None, "b": None}, policy="warn", backend=store)  # type: ignore[arg-type]
    with first, second, caplog.at_level(logging.WARNING, logger="cc.locks"):
        with first.acquire("a"), first.acquire("b"):
            pass
        with second.acquire("b"), second.acquire("a"):  # let pass, and shared
            pass
        with second.acquire("b"), second.acquire("a"):  # known: once
            pass
        reports = first.detect_potential_deadlocks()
    [heard] = [r for r in reports if r.startswith("potential deadlock")]
    assert "thread 'MainThread' (pid 102 on memory) took 'a'" in heard
    assert "thread 'MainThread' (pid 101 on memory) took 'b'" in heard
    messages = [r.getMessage() for r in caplog.records]
    assert heard in messages and len(messages) == 2  # once here, once there


@pytest.mark.anyio
async def test_tasks_get_one_deadlock_error_across_managers() -> None:
    store = SharingMemoryStore()
    managers = [
        AsyncLockManager({"x": 1, "y": 2}, backend=store),  # type: ignore[arg-type]
        AsyncLockManager({"y": 1, "x": 2}, backend=store),  # type: ignore[arg-type]
    ]
    outcome: list[Any] = [None, None]
    holding = [anyio.Event(), anyio.Event()]
    asking = [anyio.Event(), anyio.Event()]

    async def member(index: int, first: str, second: str) -> None:
        async with managers[index].acquire(first):
            holding[index].set()
            await asking[index].wait()
            try:
                async with managers[index].acquire(second, timeout=JOIN):
                    outcome[index] = "acquired"
            except DeadlockError as exc:
                outcome[index] = exc

    async with managers[0], managers[1]:  # opened in order: pid 101, then 102
        async with anyio.create_task_group() as group:
            group.start_soon(member, 0, "x", "y", name="first")
            group.start_soon(member, 1, "y", "x", name="second")
            for event in holding:
                await event.wait()
            asking[0].set()
            while not store.waits:  # noqa: ASYNC110 (a store of the test)
                await anyio.sleep(0.001)
            asking[1].set()
    assert outcome[0] == "acquired"
    assert isinstance(outcome[1], DeadlockError)
    assert "task 'second' (pid 102 on memory) waits for 'x'" in str(outcome[1])
    assert outcome[1].holders == (
        "task 'first' (pid 101 on memory)",
        "task 'second' (pid 102 on memory)",
    )


def test_a_cycle_through_a_wait_inside_one_manager_is_found_there() -> None:
    # Manager A: "t1" holds x, waits for y held by its "t2" (a wait the store
    # does not see); "t2" waits for z, held by manager B's "tb", which waits
    # for x. Only A sees the whole cycle: "t2", its member waiting through
    # the store, is the victim.
    store = SharingMemoryStore()
    a = LockManager({"x": 1, "y": 2, "z": 3}, backend=store)  # type: ignore[arg-type]
    b = LockManager({"z": 1, "x": 2}, backend=store)  # type: ignore[arg-type]
    a.get_lock_status()  # opened in order: pid 101, then 102
    b.get_lock_status()
    held = {name: threading.Event() for name in ("x", "y", "z")}
    go = {name: threading.Event() for name in ("t1", "t2", "tb")}
    got: dict[str, Any] = {}

    def member(mine: LockManager, first: str, second: str, name: str) -> None:
        with mine.acquire(first):
            held[first].set()
            go[name].wait(JOIN)
            try:
                with mine.acquire(second, timeout=JOIN):
                    got[name] = "acquired"
            except DeadlockError as exc:
                got[name] = exc

    threads = [
        threading.Thread(target=member, args=(a, "x", "y", "t1"), name="t1"),
        threading.Thread(target=member, args=(a, "y", "z", "t2"), name="t2"),
        threading.Thread(target=member, args=(b, "z", "x", "tb"), name="tb"),
    ]
    for thread in threads:
        thread.start()
    for event in held.values():
        event.wait(JOIN)
    go["t2"].set()
    wait_for(lambda: len(store.waits) == 1)
    go["tb"].set()
    wait_for(lambda: len(store.waits) == 2)
    go["t1"].set()
    for thread in threads:
        thread.join(JOIN)
    assert got["t1"] == got["tb"] == "acquired"
    error = got["t2"]
    assert isinstance(error, DeadlockError)
    assert error.cycle == ("z", "x", "y", "z")
    assert error.holders == (
        "thread 'tb' (pid 102 on memory)",
        "thread 't1' (pid 101 on memory)",
        "thread 't2' (pid 101 on memory)",
    )
    a.close()
    b.close()


def test_a_declared_order_violation_names_pid_and_host() -> None:
    store = SharingMemoryStore()
    with LockManager({"a": 1, "b": 2}, backend=store) as manager:  # type: ignore[arg-type]
        with manager.acquire("b"), pytest.raises(LockOrderError) as caught:
            with manager.acquire("a"):
                pass  # pragma: no cover
    assert str(caught.value).startswith(
        "lock order violation: thread 'MainThread' (pid 101 on memory) asks for 'a'"
    )
