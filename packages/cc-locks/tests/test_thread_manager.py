"""LockManager with real threads: ordering, deadlines, detection, reports."""

from __future__ import annotations

import logging
import random
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from cc.locks import (
    DeadlockError,
    LockInfo,
    LockManager,
    LockOrderError,
    LockTimeoutError,
    ManagedLock,
)
from cc.primitives import ConcurrencyError

THIS_FILE = __file__


def here() -> int:
    """The line number of the caller."""
    return sys._getframe(1).f_lineno


class RecordingLock:
    """A lock for ``register_lock(lock=...)`` that logs what happens to it."""

    def __init__(self, name: str, log: list[str]) -> None:
        self._lock = threading.RLock()
        self.name = name
        self.log = log
        self.timeouts: list[float] = []

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if blocking:
            self.timeouts.append(timeout)
        acquired = self._lock.acquire(blocking, timeout)
        if acquired:
            self.log.append(f"+{self.name}")
        return acquired

    def release(self) -> None:
        self.log.append(f"-{self.name}")
        self._lock.release()


def hold_until_released(
    manager: LockManager, names: tuple[str, ...]
) -> tuple[Callable[[], None], threading.Event, threading.Event]:
    """A thread body that holds ``names`` until told to let go."""
    taken = threading.Event()
    let_go = threading.Event()

    def body() -> None:
        with manager.acquire(*names):
            taken.set()
            assert let_go.wait(10)

    return body, taken, let_go


# -- registration --------------------------------------------------------------


def test_register_lock_returns_a_managed_reentrant_lock() -> None:
    manager = LockManager()
    lock = manager.register_lock("db", 10, "the database")
    assert isinstance(lock, ManagedLock)
    assert manager.get_lock("db") is lock
    assert lock.name == "db"
    info = manager.get_lock_info("db")
    assert isinstance(info, LockInfo)
    assert (info.name, info.order, info.description) == ("db", 10, "the database")
    assert info.lock is lock and lock.info is info
    with lock, lock:
        assert info.depth == 2
        assert lock.locked() and lock.owned_by_current_thread()
    assert not lock.locked() and info.depth == 0


def test_duplicate_name_and_order_name_the_clash() -> None:
    manager = LockManager()
    manager.register_lock("db", 10)
    with pytest.raises(ValueError, match="'db' is already registered"):
        manager.register_lock("db", 11)
    with pytest.raises(ValueError, match=r"order 10 of lock 'cache'.*lock 'db'"):
        manager.register_lock("cache", 10)
    assert list(manager.get_lock_status()) == ["db"]


def test_unknown_name_raises_key_error_naming_it() -> None:
    manager = LockManager({"db": 1})
    with pytest.raises(KeyError, match=r"no lock named 'nope'.*'db'"):
        manager.get_lock("nope")
    with pytest.raises(KeyError, match="'nope'"):
        manager.acquire("db", "nope")
    with pytest.raises(KeyError, match="registered: none"):
        LockManager().get_lock_info("x")


@pytest.mark.parametrize(
    ("name", "order", "description", "error"),
    [
        (1, 1, "", TypeError),
        ("", 1, "", ValueError),
        ("a", "1", "", TypeError),
        ("a", True, "", TypeError),
        ("a", 1.5, "", TypeError),
        ("a", 1, None, TypeError),
    ],
)
def test_registration_validates_its_arguments(
    name: Any, order: Any, description: Any, error: type[Exception]
) -> None:
    manager = LockManager()
    with pytest.raises(error):
        manager.register_lock(name, order, description)
    assert manager.get_lock_status() == {}


def test_register_lock_accepts_an_existing_lock_and_rejects_non_locks() -> None:
    manager = LockManager()
    plain = threading.Lock()
    manager.register_lock("plain", 2, lock=plain)  # re-entry is the manager's
    with manager.acquire("plain"), manager.acquire("plain"):
        assert plain.locked()
    assert not plain.locked()
    with pytest.raises(TypeError, match=r"expected a threading\.RLock"):
        manager.register_lock("bad", 3, lock=object())  # type: ignore[arg-type]


def test_register_lock_from_another_thread_sees_the_lock_held(
    start_thread: Any,
) -> None:
    manager = LockManager()
    raw = threading.RLock()
    manager.register_lock("mine", 1, lock=raw)
    with manager.acquire("mine"):
        probe = start_thread(lambda: raw.acquire(blocking=False), "probe")
        assert probe.join() is False


@pytest.mark.parametrize(
    "hierarchy",
    [
        {"db": 10, "cache": (20, "the cache"), "log": {"order": None}},
        [("db", 10), ("cache", 20, "the cache"), ("log", None)],
        [
            {"name": "db", "order": 10},
            {"name": "cache", "order": 20, "description": "the cache"},
            {"name": "log", "order": None, "description": ""},
        ],
        {"db": (10,), "cache": {"order": 20, "description": "the cache"}, "log": None},
    ],
)
def test_register_locks_accepts_every_documented_form(hierarchy: Any) -> None:
    manager = LockManager()
    locks = manager.register_locks(hierarchy)
    assert list(locks) == ["db", "cache", "log"]
    status = manager.get_lock_status()
    assert {name: s["order"] for name, s in status.items()} == {
        "db": 10,
        "cache": 20,
        "log": None,
    }
    assert status["cache"]["description"] == "the cache"


@pytest.mark.parametrize(
    ("hierarchy", "error", "match"),
    [
        ({"x": 1, "y": 2, "db": 3}, ValueError, "'db' is already registered"),
        ({"x": 1, "y": 10}, ValueError, "order 10 of lock 'y'.*'db'"),
        ([("x", 5), ("y", 5)], ValueError, "order 5 of lock 'y'.*'x'"),
        ([("x", 5), ("x", 6)], ValueError, "'x' is already registered"),
        ({"x": 1, "y": ("2", "two")}, TypeError, "order of lock 'y'"),
        ({"x": 1, "y": "2"}, TypeError, "entry of lock 'y'"),
        ({"x": 1, "y": (2, 3)}, TypeError, "description of lock 'y'"),
        ({"x": 1, "y": [2]}, TypeError, "entry of lock 'y'"),
        ({"x": 1, "y": {"order": 2, "colour": 1}}, ValueError, "'colour'"),
        ([("x", 1), ("y",)], TypeError, r"\(name, order\)"),
        ([("x", 1), {"name": "y"}], ValueError, "'name' and 'order'"),
        ([("x", 1), ("", 2)], ValueError, "must not be empty"),
        ("xy", TypeError, "a lock hierarchy must be"),
        (42, TypeError, "a lock hierarchy must be"),
    ],
)
def test_register_locks_is_all_or_nothing(
    hierarchy: Any, error: type[Exception], match: str
) -> None:
    manager = LockManager({"db": 10})
    with pytest.raises(error, match=match):
        manager.register_locks(hierarchy)
    assert list(manager.get_lock_status()) == ["db"]
    # nothing half-registered: the valid names are still free
    manager.register_locks({"x": 1, "y": 2})


def test_concurrent_hierarchies_never_half_register(start_thread: Any) -> None:
    manager = LockManager()
    barrier = threading.Barrier(8)

    def declare(index: int) -> bool:
        barrier.wait(5)
        try:
            manager.register_locks(
                {f"own-{index}": index, "shared": 100 + index, f"tail-{index}": None}
            )
        except ValueError:
            return False
        return True

    workers = [start_thread(lambda i=i: declare(i), f"declare-{i}") for i in range(8)]
    results = [worker.join() for worker in workers]
    assert results.count(True) == 1
    winner = results.index(True)
    assert sorted(manager.get_lock_status()) == sorted(
        ["shared", f"own-{winner}", f"tail-{winner}"]
    )
    assert manager.get_lock_status()["shared"]["order"] == 100 + winner


def test_constructor_validates_policy_and_threshold() -> None:
    with pytest.raises(ValueError, match="policy must be one of"):
        LockManager(policy="loud")  # type: ignore[arg-type]
    for bad in (-1, float("nan"), "1"):
        with pytest.raises(ValueError, match="long_hold_threshold"):
            LockManager(long_hold_threshold=bad)  # type: ignore[arg-type]
    manager = LockManager(
        policy="warn", detect_deadlocks=False, long_hold_threshold=None
    )
    assert manager.policy == "warn"
    assert manager.detect_deadlocks is False
    assert manager.long_hold_threshold is None
    assert LockManager().long_hold_threshold == 30.0
    assert "policy='warn'" in repr(manager)


# -- acquire: order, re-entry, deadline --------------------------------------------


@pytest.mark.parametrize(
    "names",
    [("a", "b", "c"), ("c", "b", "a"), ("b", "c", "a"), ("c", "a", "b", "a")],
)
def test_acquire_takes_locks_in_ascending_order(names: tuple[str, ...]) -> None:
    log: list[str] = []
    manager = LockManager()
    for name, order in (("c", 30), ("a", 10), ("b", 20)):
        manager.register_lock(name, order, lock=RecordingLock(name, log))  # type: ignore[arg-type]
    with manager.acquire(*names):
        assert manager.held_locks() == ["a", "b", "c"]
    assert log == ["+a", "+b", "+c", "-c", "-b", "-a"]


def test_learned_order_locks_come_after_declared_ones_sorted_by_name() -> None:
    log: list[str] = []
    manager = LockManager()
    for name, order in (("zeta", None), ("db", 5), ("alpha", None)):
        manager.register_lock(name, order, lock=RecordingLock(name, log))  # type: ignore[arg-type]
    with manager.acquire("zeta", "alpha", "db"):
        pass
    with manager.acquire("alpha", "db", "zeta"):
        pass
    assert log == ["+db", "+alpha", "+zeta", "-zeta", "-alpha", "-db"] * 2


def test_acquire_validates_its_arguments() -> None:
    manager = LockManager({"a": 1})
    with pytest.raises(ValueError, match="at least one lock"):
        manager.acquire()
    for bad in (-0.1, float("nan")):
        with pytest.raises(ValueError, match="timeout must be"):
            manager.acquire("a", timeout=bad)


def test_ordering_violation_names_both_sites() -> None:
    manager = LockManager({"a": 1, "b": 2})
    line_b = here() + 1
    with manager.acquire("b"):
        line_a = here() + 1
        with pytest.raises(LockOrderError) as caught, manager.acquire("a"):
            pytest.fail("took a lower-order lock")  # pragma: no cover
        assert manager.held_locks() == ["b"]
    error = caught.value
    assert isinstance(error, RuntimeError) and isinstance(error, ConcurrencyError)
    message = str(error)
    assert "thread 'MainThread' asks for 'a' (order 1)" in message
    assert "holding 'b' (order 2)" in message
    assert f"{THIS_FILE}:{line_a}" in message
    assert f"{THIS_FILE}:{line_b}" in message
    assert error.cycle == ("b", "a", "b")
    assert manager.get_lock_status()["a"]["is_locked"] is False


def test_a_thread_may_reenter_what_it_holds_even_below_its_ceiling() -> None:
    manager = LockManager({"a": 1, "b": 2, "c": 3})
    with manager.acquire("a", "b"):
        with manager.acquire("a"):  # lower than b, but already held
            with manager.acquire("c", "a"):
                status = manager.get_lock_status()
                assert status["a"]["depth"] == 3
                assert status["c"]["depth"] == 1
            assert manager.get_lock_status()["a"]["depth"] == 2
        assert manager.get_lock_status()["a"]["depth"] == 1
        assert manager.held_locks() == ["a", "b"]
    assert manager.held_locks() == []
    assert all(not s["is_locked"] for s in manager.get_lock_status().values())
    assert manager.statistics()["a"].acquisitions == 1  # re-entries not counted


def test_timeout_names_the_lock_and_its_holder(start_thread: Any) -> None:
    manager = LockManager({"a": 1})
    taken = threading.Event()
    let_go = threading.Event()

    def holder() -> None:
        line = here() + 1
        with manager.acquire("a"):
            taken.set()
            assert let_go.wait(10)
        return line

    worker = start_thread(holder, "the-holder")
    assert taken.wait(5)
    started = time.monotonic()
    with pytest.raises(LockTimeoutError) as caught, manager.acquire("a", timeout=0.05):
        pytest.fail("acquired a held lock")  # pragma: no cover
    elapsed = time.monotonic() - started
    let_go.set()
    line = worker.join()
    assert 0.04 <= elapsed < 2.0
    error = caught.value
    assert isinstance(error, TimeoutError) and isinstance(error, ConcurrencyError)
    assert error.lock_name == "a"
    assert error.holder == "thread 'the-holder'"
    message = str(error)
    assert "could not acquire 'a' (order 1) within 0.05 s" in message
    assert "held by thread 'the-holder'" in message
    assert f"{THIS_FILE}:{line} in holder" in message
    assert manager.statistics()["a"].timeouts == 1


def test_one_deadline_covers_the_whole_set(wait_until: Any) -> None:
    log: list[str] = []
    manager = LockManager()
    slow = RecordingLock("slow", log)
    rest = RecordingLock("rest", log)
    manager.register_lock("slow", 1, lock=slow)  # type: ignore[arg-type]
    manager.register_lock("rest", 2, lock=rest)  # type: ignore[arg-type]
    # Another thread holds "slow" until the main thread waits for it, and
    # "rest" throughout.
    held = threading.Event()
    done = threading.Event()
    released_at: list[float] = []

    def other() -> None:
        slow_lock, rest_lock = manager.get_lock("slow"), manager.get_lock("rest")
        slow_lock.acquire()
        rest_lock.acquire()
        held.set()
        wait_until(lambda: manager.get_lock_info("slow").waiters == 1)
        time.sleep(0.1)  # part of the one deadline goes by
        released_at.append(time.monotonic())
        slow_lock.release()
        assert done.wait(10)
        rest_lock.release()

    thread = threading.Thread(target=other)
    thread.start()
    try:
        assert held.wait(5)
        asked_at = time.monotonic()
        with (
            pytest.raises(LockTimeoutError, match="'rest'"),
            manager.acquire("slow", "rest", timeout=0.5),
        ):
            pytest.fail("acquired a held lock")  # pragma: no cover
    finally:
        done.set()
        thread.join(10)
    assert not thread.is_alive()
    # The wait for "rest" got only what was left of the one deadline.
    main_waits = [slow.timeouts[-1], rest.timeouts[-1]]
    assert main_waits[0] <= 0.5
    # "rest" was asked for only once "slow" came free: whatever the
    # scheduling delays, its wait is bounded by what was left of the one
    # deadline at that point.
    left_at_best = 0.5 - (released_at[0] - asked_at)
    assert main_waits[1] <= left_at_best + 0.005


def test_blocking_false_fails_at_once(start_thread: Any) -> None:
    manager = LockManager({"a": 1, "b": 2})
    body, taken, let_go = hold_until_released(manager, ("b",))
    worker = start_thread(body, "busy")
    assert taken.wait(5)
    started = time.monotonic()
    with (
        pytest.raises(LockTimeoutError, match="blocking=False") as caught,
        manager.acquire("a", "b", blocking=False),
    ):
        pytest.fail("acquired a held lock")  # pragma: no cover
    assert time.monotonic() - started < 1.0
    assert caught.value.holder == "thread 'busy'"
    # "a" was taken first and released again when "b" was not available
    assert manager.get_lock_status()["a"]["is_locked"] is False
    with manager.acquire("a", blocking=False):
        assert manager.held_locks() == ["a"]
    let_go.set()
    worker.join()
    with manager.acquire("a", "b", blocking=False):
        assert manager.held_locks() == ["a", "b"]


def test_partial_failure_releases_everything_taken(start_thread: Any) -> None:
    log: list[str] = []
    manager = LockManager()
    for name, order in (("a", 1), ("b", 2), ("c", 3)):
        manager.register_lock(name, order, lock=RecordingLock(name, log))  # type: ignore[arg-type]
    body, taken, let_go = hold_until_released(manager, ("c",))
    worker = start_thread(body, "c-holder")
    assert taken.wait(5)
    log.clear()
    with (
        pytest.raises(LockTimeoutError, match="'c'"),
        manager.acquire("c", "a", "b", timeout=0.05),
    ):
        pytest.fail("acquired a held lock")  # pragma: no cover
    assert log == ["+a", "+b", "-b", "-a"]
    assert manager.held_locks() == []
    # another thread can take what the failed call had taken
    probe = start_thread(lambda: manager.get_lock("a").acquire(blocking=False), "probe")
    assert probe.join() is True
    let_go.set()
    worker.join()


def test_partial_failure_keeps_locks_held_before_the_call(start_thread: Any) -> None:
    manager = LockManager({"a": 1, "b": 2, "c": 3})
    body, taken, let_go = hold_until_released(manager, ("c",))
    worker = start_thread(body, "c-holder")
    assert taken.wait(5)
    with manager.acquire("a"):
        with (
            pytest.raises(LockTimeoutError),
            manager.acquire("a", "b", "c", timeout=0.02),
        ):
            pytest.fail("acquired a held lock")  # pragma: no cover
        assert manager.held_locks() == ["a"]
        assert manager.get_lock_status()["a"]["depth"] == 1
    let_go.set()
    worker.join()


# -- the learned order graph ------------------------------------------------------


def test_ab_ba_inversion_between_two_threads_is_caught_without_deadlock(
    start_thread: Any,
) -> None:
    manager = LockManager()
    manager.register_locks({"x": None, "y": None})

    def x_then_y() -> int:
        line = here() + 1
        with manager.acquire("x"), manager.acquire("y"):
            pass
        return line

    def y_then_x() -> int:
        with manager.acquire("y"), manager.acquire("x"):
            pytest.fail("inversion not detected")  # pragma: no cover
        return 0  # pragma: no cover

    # The two threads never overlap, so they can never actually deadlock:
    # the inversion is found from the order alone.
    first_line = start_thread(x_then_y, "first").join()
    second = start_thread(y_then_x, "second")
    with pytest.raises(LockOrderError) as caught:
        second.join()
    error = caught.value
    assert not isinstance(error, DeadlockError)
    message = str(error)
    assert "potential deadlock: thread 'second' takes 'x'" in message
    assert "while holding 'y'" in message
    assert f"thread 'first' took 'y' at {THIS_FILE}:{first_line}" in message
    assert error.cycle == ("y", "x", "y")
    reports = manager.detect_potential_deadlocks()
    assert len(reports) == 1 and reports[0] == message
    assert all(not s["is_locked"] for s in manager.get_lock_status().values())


def test_a_longer_learned_cycle_is_spelled_out_edge_by_edge() -> None:
    manager = LockManager({"p": None, "q": None, "r": None})
    with manager.acquire("p"), manager.acquire("q"):
        pass
    with manager.acquire("q"), manager.acquire("r"):
        pass
    with (
        manager.acquire("r"),
        pytest.raises(LockOrderError) as caught,
        manager.acquire("p"),
    ):
        pytest.fail("inversion not detected")  # pragma: no cover
    message = str(caught.value)
    assert "took 'q' at" in message and "while holding 'p'" in message
    assert "took 'r' at" in message and "while holding 'q'" in message
    assert caught.value.cycle == ("r", "p", "q", "r")


def test_learned_edges_also_cover_locks_of_declared_order() -> None:
    manager = LockManager({"a": 1, "b": 2, "free": None})
    with manager.acquire("a"), manager.acquire("free"):
        pass
    with manager.acquire("free"), manager.acquire("b"):
        pass
    with (
        manager.acquire("b"),
        pytest.raises(LockOrderError, match="potential deadlock"),
        manager.acquire("free"),
    ):  # b -> free closes free -> b
        pytest.fail("inversion not detected")  # pragma: no cover


def test_warn_policy_logs_once_records_and_proceeds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    manager = LockManager({"a": 1, "b": 2, "x": None, "y": None}, policy="warn")
    caplog.set_level(logging.WARNING, logger="cc.locks")
    for _ in range(2):
        with manager.acquire("b"), manager.acquire("a"):
            assert manager.held_locks() == ["b", "a"]
        with manager.acquire("x"), manager.acquire("y"):
            pass
        with manager.acquire("y"), manager.acquire("x"):
            assert manager.held_locks() == ["y", "x"]
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages
    assert "lock order violation" in messages[0]
    assert "potential deadlock" in messages[1]
    assert manager.detect_potential_deadlocks() == messages


def test_warn_policy_still_sees_a_violation_under_an_earlier_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    manager = LockManager({"a": 1, "b": 2, "c": 3}, policy="warn")
    caplog.set_level(logging.WARNING, logger="cc.locks")
    with manager.acquire("c"), manager.acquire("a"), manager.acquire("b"):
        pass
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "asks for 'a' (order 1)" in messages[0]
    assert "asks for 'b' (order 2)" in messages[1]
    assert "holding 'c' (order 3)" in messages[1]


def test_off_policy_checks_nothing(caplog: pytest.LogCaptureFixture) -> None:
    manager = LockManager({"a": 1, "b": 2, "x": None, "y": None}, policy="off")
    caplog.set_level(logging.WARNING, logger="cc.locks")
    with manager.acquire("b"), manager.acquire("a"):
        pass
    with manager.acquire("x"), manager.acquire("y"):
        pass
    with manager.acquire("y"), manager.acquire("x"):
        pass
    assert caplog.records == []
    assert manager.detect_potential_deadlocks() == []


def test_managed_lock_goes_through_the_order_checks() -> None:
    manager = LockManager({"a": 1, "b": 2})
    with manager.get_lock("b"):
        with pytest.raises(LockOrderError):
            manager.get_lock("a").acquire()
        with pytest.raises(LockOrderError):
            manager.get_lock("a").acquire(blocking=False)
    assert not manager.get_lock("a").locked()


# -- the wait-for graph -------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "hierarchy"),
    [
        ("warn", {"x": None, "y": None}),  # learned order, reported only
        ("off", {"x": 1, "y": 2}),  # declared order, not enforced
    ],
)
def test_a_real_wait_for_cycle_raises_deadlock_error(
    start_thread: Any, wait_until: Any, policy: Any, hierarchy: Any
) -> None:
    manager = LockManager(hierarchy, policy=policy)
    x, y = manager.get_lock("x"), manager.get_lock("y")
    first_has_x = threading.Event()
    second_has_y = threading.Event()

    def first() -> str:
        with x:
            first_has_x.set()
            assert second_has_y.wait(5)
            # blocks: "second" holds y; it must not wait forever
            with manager.acquire("y", timeout=5):
                return "first got both"

    def second() -> None:
        assert first_has_x.wait(5)
        with y:
            second_has_y.set()
            wait_until(lambda: manager.get_lock_status()["y"]["waiters"] == 1)
            started = time.monotonic()
            try:
                with manager.acquire("x", timeout=5):
                    pytest.fail("waited into a deadlock")  # pragma: no cover
            finally:
                assert time.monotonic() - started < 1.0  # well before 5 s

    worker_1 = start_thread(first, "first")
    worker_2 = start_thread(second, "second")
    with pytest.raises(DeadlockError) as caught:
        worker_2.join()
    assert worker_1.join() == "first got both"
    error = caught.value
    assert isinstance(error, LockOrderError) and isinstance(error, RuntimeError)
    message = str(error)
    assert message.startswith(
        "deadlock: thread 'second' waits for 'x', held by thread 'first'"
    )
    assert "which waits for 'y', held by thread 'second'" in message
    assert error.cycle == ("x", "y", "x")
    assert error.holders == ("thread 'first'", "thread 'second'")
    reports = manager.detect_potential_deadlocks()
    assert any(r.startswith("deadlock averted: thread 'second'") for r in reports)
    assert all(not s["is_locked"] for s in manager.get_lock_status().values())
    assert manager.get_lock_status()["y"]["waiters"] == 0


def test_a_three_thread_cycle_is_raised_in_the_thread_that_closes_it(
    start_thread: Any, wait_until: Any
) -> None:
    manager = LockManager({"a": None, "b": None, "c": None}, policy="off")
    ready = threading.Barrier(3)

    def take(mine: str, wanted: str, waiters_first: tuple[str, ...]) -> str:
        with manager.get_lock(mine):
            ready.wait(5)
            for name in waiters_first:
                wait_until(lambda n=name: manager.get_lock_status()[n]["waiters"] == 1)
            with manager.acquire(wanted, timeout=5):
                return mine + wanted

    t1 = start_thread(lambda: take("a", "b", ()), "t1")
    t2 = start_thread(lambda: take("b", "c", ("b",)), "t2")
    t3 = start_thread(lambda: take("c", "a", ("b", "c")), "t3")
    with pytest.raises(DeadlockError) as caught:
        t3.join()
    assert t2.join() == "bc"
    assert t1.join() == "ab"
    message = str(caught.value)
    assert "thread 't3' waits for 'a', held by thread 't1'" in message
    assert "which waits for 'b', held by thread 't2'" in message
    assert "which waits for 'c', held by thread 't3'" in message
    assert caught.value.cycle == ("a", "b", "c", "a")


def test_without_detection_a_live_cycle_is_reported_until_a_timeout_breaks_it(
    start_thread: Any, wait_until: Any
) -> None:
    manager = LockManager({"x": None, "y": None}, policy="off", detect_deadlocks=False)
    both_hold = threading.Barrier(2)

    def take(mine: str, wanted: str, timeout: float) -> str:
        with manager.get_lock(mine):
            both_hold.wait(5)
            with manager.acquire(wanted, timeout=timeout):
                return mine + wanted

    def bystander() -> str:
        with manager.acquire("x", timeout=5):
            return "bystander got x"

    t1 = start_thread(lambda: take("x", "y", 0.3), "t1")
    t2 = start_thread(lambda: take("y", "x", 5.0), "t2")
    wait_until(
        lambda: all(s["waiters"] == 1 for s in manager.get_lock_status().values())
    )
    # a third thread waits on the cycle without being part of it
    t3 = start_thread(bystander, "t3")
    wait_until(lambda: manager.get_lock_status()["x"]["waiters"] == 2)
    reports = manager.detect_potential_deadlocks()
    with pytest.raises(LockTimeoutError):
        t1.join()
    assert t2.join() == "yx"  # t1 gave up x, so t2 got it
    assert t3.join() == "bystander got x"
    live = [r for r in reports if r.startswith("live deadlock")]
    assert len(live) == 1
    assert "thread 't1'" in live[0] and "thread 't2'" in live[0]


def test_a_lock_held_outside_the_manager_is_reported_as_unknown(
    start_thread: Any,
) -> None:
    raw = threading.RLock()
    manager = LockManager()
    manager.register_lock("shared", 1, lock=raw)
    taken = threading.Event()
    let_go = threading.Event()

    def bypass() -> None:
        with raw:
            taken.set()
            assert let_go.wait(10)

    worker = start_thread(bypass, "bypass")
    assert taken.wait(5)
    with (
        pytest.raises(LockTimeoutError, match="no holder the manager knows") as err,
        manager.acquire("shared", timeout=0.02),
    ):
        pytest.fail("acquired a held lock")  # pragma: no cover
    assert err.value.holder is None
    let_go.set()
    worker.join()


# -- hold times, status and statistics ----------------------------------------------


def test_long_holds_are_logged_with_holder_and_site(
    caplog: pytest.LogCaptureFixture,
) -> None:
    manager = LockManager({"slow": 1, "fast": 2}, long_hold_threshold=0.02)
    caplog.set_level(logging.WARNING, logger="cc.locks")
    line = here() + 1
    with manager.acquire("slow"):
        time.sleep(0.05)
        reports = manager.detect_potential_deadlocks()
    with manager.acquire("fast"):
        pass
    assert len(caplog.records) == 1
    with manager.acquire("slow"):  # long again, though not the longest
        time.sleep(0.03)
    assert len(caplog.records) == 2
    message = caplog.records[0].getMessage()
    assert message.startswith("lock 'slow' was held for")
    assert "(threshold 0.020 s) by thread 'MainThread'" in message
    assert f"acquired at {THIS_FILE}:{line} in " in message
    assert len(reports) == 1
    assert reports[0].startswith(
        "long hold: 'slow' (order 1) has been held by thread 'MainThread' for"
    )
    assert f"{THIS_FILE}:{line}" in reports[0]
    assert manager.statistics()["slow"].max_hold_time >= 0.05


def test_no_hold_warning_without_threshold(caplog: pytest.LogCaptureFixture) -> None:
    manager = LockManager({"slow": 1}, long_hold_threshold=None)
    caplog.set_level(logging.WARNING, logger="cc.locks")
    with manager.acquire("slow"):
        time.sleep(0.01)
        assert manager.detect_potential_deadlocks() == []
    assert caplog.records == []


def test_status_shows_holder_depth_waiters_and_hold_time(
    start_thread: Any, wait_until: Any
) -> None:
    manager = LockManager()
    manager.register_lock("a", 1, "first lock")
    status = manager.get_lock_status()["a"]
    assert status == {
        "order": 1,
        "description": "first lock",
        "owner": None,
        "acquired_at": None,
        "is_locked": False,
        "depth": 0,
        "waiters": 0,
        "waiting": [],
        "hold_time": None,
        "acquisition_site": None,
    }
    before = time.time()
    line = here() + 1
    with manager.acquire("a"), manager.acquire("a"):
        waiter = start_thread(
            lambda: manager.acquire("a", timeout=5).__enter__(), "waiter"
        )
        wait_until(lambda: manager.get_lock_status()["a"]["waiters"] == 1)
        status = manager.get_lock_status()["a"]
        time.sleep(0.01)
        info = manager.get_lock_info("a")
        assert info.hold_time is not None and info.hold_time >= 0.01
    assert status["owner"] == "thread 'MainThread'"
    assert status["is_locked"] is True
    assert status["depth"] == 2
    assert status["waiting"] == ["thread 'waiter'"]
    assert before - 0.5 <= status["acquired_at"] <= time.time()
    assert status["hold_time"] >= 0
    assert status["acquisition_site"].startswith(f"{THIS_FILE}:{line} in ")
    waiter.join()  # took the lock and ended without releasing it
    owner = manager.get_lock_status()["a"]["owner"]
    assert owner == "thread 'waiter' (ended)"
    assert "held by thread 'waiter' (ended)" in repr(manager.get_lock("a"))
    assert "held by" in repr(manager.get_lock_info("a"))


def test_statistics_count_contention_and_times(start_thread: Any) -> None:
    manager = LockManager({"a": 1, "b": 2})
    assert manager.statistics()["a"].acquisitions == 0
    taken = threading.Event()

    def hold() -> None:
        with manager.acquire("a"):
            taken.set()
            time.sleep(0.05)

    worker = start_thread(hold, "holder")
    assert taken.wait(5)
    with manager.acquire("a", "b"):
        pass
    worker.join()
    body, taken_again, let_go = hold_until_released(manager, ("a",))
    other = start_thread(body, "holder-2")
    assert taken_again.wait(5)
    with pytest.raises(LockTimeoutError), manager.acquire("b", "a", blocking=False):
        pass  # pragma: no cover
    let_go.set()
    other.join()
    stats = manager.statistics()
    a, b = stats["a"], stats["b"]
    assert a.acquisitions == 3  # holder, main, holder-2
    assert a.contended_acquisitions == 1
    assert 0 < a.total_wait_time == a.max_wait_time
    assert a.max_hold_time >= 0.04
    assert b.acquisitions == 1 and b.contended_acquisitions == 0
    assert b.total_wait_time == 0 == b.max_wait_time
    assert a.timeouts == 1
    assert manager.get_lock_info("a").statistics() == a


# -- ManagedLock --------------------------------------------------------------------


def test_managed_lock_behaves_like_an_rlock(start_thread: Any) -> None:
    manager = LockManager()
    lock = manager.register_lock("r", None)
    assert lock.acquire() is True
    assert lock.acquire(timeout=0.01) is True  # re-entry
    assert manager.get_lock_info("r").depth == 2
    other = start_thread(
        lambda: (lock.acquire(blocking=False), lock.acquire(timeout=0.02)), "other"
    )
    assert other.join() == (False, False)
    lock.release()
    assert lock.locked()
    lock.release()
    assert not lock.locked() and not lock.owned_by_current_thread()
    with pytest.raises(RuntimeError, match="it is not held"):
        lock.release()
    with pytest.raises(ValueError, match="non-blocking"):
        lock.acquire(blocking=False, timeout=1)
    with pytest.raises(ValueError, match="timeout must be"):
        lock.acquire(timeout=-2)
    assert repr(lock) == "<ManagedLock 'r' unlocked>"


def test_managed_lock_release_by_another_thread_is_refused(
    start_thread: Any,
) -> None:
    manager = LockManager({"r": 1})
    lock = manager.get_lock("r")
    with lock:
        other = start_thread(lock.release, "intruder")
        with pytest.raises(RuntimeError, match="held by thread 'MainThread'"):
            other.join()
        assert lock.owned_by_current_thread()
        helper = start_thread(lock.owned_by_current_thread, "helper")
        assert helper.join() is False


def test_locks_may_be_released_out_of_order() -> None:
    manager = LockManager({"a": 1, "b": 2, "c": 3})
    a, b, c = (manager.get_lock(n) for n in "abc")
    a.acquire()
    b.acquire()
    a.release()
    assert manager.held_locks() == ["b"]
    c.acquire()  # still above the highest lock held
    assert manager.held_locks() == ["b", "c"]
    with pytest.raises(LockOrderError):
        a.acquire()
    b.release()
    c.release()
    assert manager.held_locks() == []


def test_acquire_checks_arguments_that_equal_those_of_a_reused_context() -> None:
    # acquire() reuses its contexts by (names, timeout, blocking); a timeout
    # equal to a cached one as a dict key (True == 1, False == 0) is still
    # refused, and each context keeps its own timeout and blocking.
    manager = LockManager({"a": 1})
    for timeout in (0, 1, 1.0, 0.0, 2, None):
        with manager.acquire("a", timeout=timeout):
            assert manager.held_locks() == ["a"]
    for bad in (True, False):
        with pytest.raises(TypeError, match="timeout must be a number"):
            manager.acquire("a", timeout=bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="blocking must be a bool"):
        manager.acquire("a", blocking=1)  # type: ignore[arg-type]
    held = threading.Event()
    done = threading.Event()

    def hold() -> None:
        with manager.acquire("a"):
            held.set()
            done.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(10)
    try:
        with pytest.raises(LockTimeoutError, match="blocking=False"):
            manager.acquire("a", timeout=None, blocking=False).__enter__()
        with pytest.raises(LockTimeoutError, match="within 0"):
            manager.acquire("a", timeout=0).__enter__()
    finally:
        done.set()
        holder.join()
    with manager.acquire("a", timeout=None, blocking=False):
        assert manager.held_locks() == ["a"]


def test_reset_empties_the_manager_and_retires_old_locks() -> None:
    manager = LockManager({"a": 1, "x": None, "y": None}, policy="warn")
    lock = manager.get_lock("a")
    stale = manager.acquire("a")  # made before the reset, used after
    with manager.acquire("x"), manager.acquire("y"):
        pass
    with manager.acquire("y"), manager.acquire("x"):
        pass
    assert manager.detect_potential_deadlocks()
    with lock, pytest.raises(RuntimeError, match="while locks are held"):
        manager.reset()
    manager.reset()
    assert manager.get_lock_status() == {}
    assert manager.detect_potential_deadlocks() == []
    with pytest.raises(RuntimeError, match="no longer registered"):
        lock.acquire()
    with pytest.raises(RuntimeError, match="no longer registered"), lock:
        pass  # pragma: no cover
    with pytest.raises(RuntimeError, match="no longer registered"), stale:
        pass  # pragma: no cover
    manager.register_lock("a", 1)  # the name and order are free again
    with manager.acquire("a"):
        pass


# -- under load --------------------------------------------------------------------


def test_threads_hammering_random_sets_keep_every_invariant(
    start_thread: Any,
) -> None:
    names = ["n0", "n1", "n2", "n3", "n4"]
    manager = LockManager({name: i for i, name in enumerate(names)})
    counters = dict.fromkeys(names, 0)
    inside = dict.fromkeys(names, 0)
    rounds = 300

    def hammer(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(rounds):
            chosen = rng.sample(names, rng.randint(1, 3))
            with manager.acquire(*chosen, timeout=5):
                for name in chosen:
                    inside[name] += 1
                    assert inside[name] == 1, "two threads inside one lock"
                for name in chosen:
                    counters[name] += 1
                    inside[name] -= 1

    workers = [start_thread(lambda s=s: hammer(s), f"hammer-{s}") for s in range(4)]
    for worker in workers:
        worker.join()
    total = sum(manager.statistics()[n].acquisitions for n in names)
    assert sum(counters.values()) == total
    assert manager.detect_potential_deadlocks() == []
    assert all(not s["is_locked"] for s in manager.get_lock_status().values())


def test_an_order_error_part_way_releases_what_the_call_took() -> None:
    log: list[str] = []
    manager = LockManager()
    for name, order in (("c", 3), ("x", None)):
        manager.register_lock(name, order, lock=RecordingLock(name, log))  # type: ignore[arg-type]
    with manager.acquire("x"), manager.acquire("c"):  # learns x -> c
        pass
    log.clear()
    with (
        pytest.raises(LockOrderError, match="potential deadlock"),
        manager.acquire("x", "c"),
    ):  # takes c, then x: closes the cycle
        pytest.fail("inversion not detected")  # pragma: no cover
    assert log == ["+c", "-c"]
    assert manager.held_locks() == []


def test_with_managed_lock_waits_as_long_as_it_takes(start_thread: Any) -> None:
    manager = LockManager({"r": 1})
    body, taken, let_go = hold_until_released(manager, ("r",))
    worker = start_thread(body, "holder")
    assert taken.wait(5)
    threading.Timer(0.05, let_go.set).start()
    with manager.get_lock("r"):
        assert manager.held_locks() == ["r"]
    worker.join()
    assert manager.statistics()["r"].contended_acquisitions == 1


def test_many_distinct_name_sets_keep_working() -> None:
    from itertools import permutations

    names = [f"k{i}" for i in range(7)]
    manager = LockManager({name: i for i, name in enumerate(names)})
    for count, combo in enumerate(permutations(names)):
        context = manager.acquire(*combo)
        if count % 1000 == 0:
            with context:
                assert manager.held_locks() == names
    with manager.acquire("k6", "k0"):
        assert manager.held_locks() == ["k0", "k6"]


def test_only_the_latest_reports_are_kept(caplog: pytest.LogCaptureFixture) -> None:
    manager = LockManager({f"o{i}": i for i in range(25)}, policy="warn")
    caplog.set_level(logging.ERROR, logger="cc.locks")
    for high in range(25):
        for low in range(high):
            with manager.acquire(f"o{high}"), manager.acquire(f"o{low}"):
                pass
    reports = manager.detect_potential_deadlocks()
    assert len(reports) == 256  # 300 violations seen, the oldest dropped
    assert "asks for 'o23' (order 23)" in reports[-1]
    assert "holding 'o24' (order 24)" in reports[-1]


def test_a_lock_taken_inside_a_block_may_outlive_it() -> None:
    manager = LockManager({"a": 1, "b": 2})
    b = manager.get_lock("b")
    with manager.acquire("a"):
        b.acquire()
    assert manager.held_locks() == ["b"]
    assert not manager.get_lock_info("a").is_locked
    with pytest.raises(LockOrderError), manager.acquire("a"):  # a is below b
        pass  # pragma: no cover
    b.release()
    assert manager.held_locks() == []


def test_acquire_with_many_different_timeouts() -> None:
    manager = LockManager({"a": 1})
    contexts = [manager.acquire("a", timeout=0.5 + i) for i in range(12)]
    assert manager.acquire("a", timeout=0.5) is contexts[0]  # shared
    for context in contexts:
        with context:
            assert manager.held_locks() == ["a"]
