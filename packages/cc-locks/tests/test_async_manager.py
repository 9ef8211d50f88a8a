"""AsyncLockManager with concurrent tasks, on asyncio, uvloop and trio."""

from __future__ import annotations

import logging
import random
import sys
import time
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from cc.locks import (
    AsyncLockInfo,
    AsyncLockManager,
    AsyncManagedLock,
    DeadlockError,
    LockOrderError,
    LockTimeoutError,
    get_async_lock_manager,
)
from cc.primitives import ConcurrencyError, Lock
from cc.primitives.lowlevel import CHECKPOINT_INTERVAL, checkpoint_due

pytestmark = pytest.mark.anyio

THIS_FILE = __file__


def here() -> int:
    """The line number of the caller."""
    return sys._getframe(1).f_lineno


class RecordingLock(Lock):
    """A cc.primitives.Lock that logs acquisitions and waits' deadlines."""

    __slots__ = ("deadlines", "log", "name")

    def __init__(self, name: str, log: list[str]) -> None:
        super().__init__()
        self.name = name
        self.log = log
        self.deadlines: list[float] = []

    def acquire_nowait(self) -> None:
        super().acquire_nowait()  # raises anyio.WouldBlock when taken
        self.log.append(f"+{self.name}")

    async def acquire(self) -> bool:
        self.deadlines.append(anyio.current_effective_deadline())
        await super().acquire()
        self.log.append(f"+{self.name}")
        return True

    def release(self) -> None:
        self.log.append(f"-{self.name}")
        super().release()


async def wait_until(predicate: Any, limit: float = 5.0) -> None:
    """Poll a condition that has no event of its own (e.g. a waiter count)."""
    with anyio.fail_after(limit):
        while not predicate():  # noqa: ASYNC110 (nothing to wait on but time)
            await anyio.sleep(0.001)


async def waiters(manager: AsyncLockManager, name: str) -> int:
    status = await manager.get_lock_status()
    return int(status[name]["waiters"])


@pytest.fixture
def recorded() -> list[str]:
    return []


# -- registration --------------------------------------------------------------


async def test_register_lock_returns_a_managed_reentrant_lock() -> None:
    manager = AsyncLockManager()
    lock = await manager.register_lock("db", 10, "the database")
    assert isinstance(lock, AsyncManagedLock)
    assert await manager.get_lock("db") is lock
    info = await manager.get_lock_info("db")
    assert isinstance(info, AsyncLockInfo)
    assert (info.name, info.order, info.description) == ("db", 10, "the database")
    assert info.lock is lock and lock.info is info and lock.name == "db"
    async with lock, lock:
        assert info.depth == 2
        assert lock.locked() and lock.owned_by_current_task()
    assert not lock.locked() and info.depth == 0
    assert repr(lock) == "<AsyncManagedLock 'db' unlocked>"


async def test_duplicates_unknown_names_and_bad_arguments() -> None:
    manager = AsyncLockManager({"db": 10})
    with pytest.raises(ValueError, match="'db' is already registered"):
        await manager.register_lock("db", 11)
    with pytest.raises(ValueError, match=r"order 10 of lock 'cache'.*'db'"):
        await manager.register_lock("cache", 10)
    with pytest.raises(KeyError, match=r"no lock named 'nope'.*'db'"):
        await manager.get_lock("nope")
    with pytest.raises(KeyError, match="'nope'"):
        manager.acquire("nope")
    with pytest.raises(TypeError, match=r"expected a cc\.primitives\.Lock"):
        await manager.register_lock("bad", 3, lock=anyio.Lock())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one lock"):
        manager.acquire()
    with pytest.raises(ValueError, match="timeout must be"):
        manager.acquire("db", timeout=-1)
    with pytest.raises(ValueError, match="policy must be one of"):
        AsyncLockManager(policy="never")  # type: ignore[arg-type]
    assert list(await manager.get_lock_status()) == ["db"]
    assert "locks=1" in repr(manager)


async def test_register_locks_is_all_or_nothing() -> None:
    manager = AsyncLockManager({"db": 10})
    with pytest.raises(ValueError, match=r"order 10 of lock 'y'.*'db'"):
        await manager.register_locks([("x", 1), ("y", 10), ("z", 3)])
    with pytest.raises(TypeError):
        await manager.register_locks({"x": 1, "y": "one"})
    assert list(await manager.get_lock_status()) == ["db"]
    locks = await manager.register_locks(
        [{"name": "x", "order": 1, "description": "ex"}, ("y", None)]
    )
    assert list(locks) == ["x", "y"]
    assert (await manager.get_lock_status())["x"]["description"] == "ex"


async def test_an_existing_primitives_lock_is_the_one_taken() -> None:
    raw = Lock()
    manager = AsyncLockManager()
    await manager.register_lock("mine", 1, lock=raw)
    async with manager.acquire("mine"):
        assert raw.locked() and raw.owned_by_current_task()
    assert not raw.locked()


# -- acquire -----------------------------------------------------------------------


@pytest.mark.parametrize("names", [("a", "b", "c"), ("c", "b", "a"), ("b", "c", "a")])
async def test_acquire_takes_locks_in_ascending_order(
    names: tuple[str, ...], recorded: list[str]
) -> None:
    manager = AsyncLockManager()
    for name, order in (("c", 30), ("a", 10), ("b", 20), ("u", None)):
        await manager.register_lock(name, order, lock=RecordingLock(name, recorded))
    async with manager.acquire(*names, "u"):
        assert manager.held_locks() == ["a", "b", "c", "u"]
    assert recorded == ["+a", "+b", "+c", "+u", "-u", "-c", "-b", "-a"]


async def test_ordering_violation_names_both_sites() -> None:
    manager = AsyncLockManager({"a": 1, "b": 2})
    line_b = here() + 1
    async with manager.acquire("b"):
        line_a = here() + 1
        with pytest.raises(LockOrderError) as caught:
            async with manager.acquire("a"):
                pytest.fail("took a lower-order lock")  # pragma: no cover
        assert manager.held_locks() == ["b"]
    message = str(caught.value)
    assert isinstance(caught.value, RuntimeError)
    assert "asks for 'a' (order 1) at" in message
    assert f"{THIS_FILE}:{line_a + 1}" in message
    assert f"holding 'b' (order 2), acquired at {THIS_FILE}:{line_b}" in message
    assert not (await manager.get_lock_status())["a"]["is_locked"]


async def test_a_task_may_reenter_what_it_holds() -> None:
    manager = AsyncLockManager({"a": 1, "b": 2, "c": 3})
    async with manager.acquire("a", "b"):
        async with manager.acquire("a"), manager.acquire("c", "a"):
            status = await manager.get_lock_status()
            assert status["a"]["depth"] == 3 and status["c"]["depth"] == 1
        assert manager.held_locks() == ["a", "b"]
        assert (await manager.get_lock_status())["a"]["depth"] == 1
    assert manager.held_locks() == []


async def test_locks_are_task_owned() -> None:
    manager = AsyncLockManager({"a": 1})
    lock = await manager.get_lock("a")
    results: dict[str, Any] = {}

    async def other() -> None:
        results["nowait"] = lock.acquire_nowait()
        results["owned"] = lock.owned_by_current_task()
        try:
            lock.release()
        except RuntimeError as exc:
            results["release"] = str(exc)

    async with lock, anyio.create_task_group() as tg:
        tg.start_soon(other, name="intruder")
    assert results["nowait"] is False and results["owned"] is False
    assert "cannot release lock 'a' from task 'intruder'" in results["release"]
    assert "held by task" in results["release"]
    with pytest.raises(RuntimeError, match="it is not held"):
        lock.release()
    assert lock.acquire_nowait() is True
    assert lock.acquire_nowait() is True  # re-entry
    lock.release()
    lock.release()
    assert not lock.locked()


async def test_timeout_names_the_lock_and_its_holder() -> None:
    manager = AsyncLockManager({"a": 1})
    taken = anyio.Event()
    let_go = anyio.Event()
    lines: list[int] = []

    async def holder() -> None:
        lines.append(here() + 1)
        async with manager.acquire("a"):
            taken.set()
            await let_go.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(holder, name="the-holder")
        await taken.wait()
        started = time.monotonic()
        with pytest.raises(LockTimeoutError) as caught:
            async with manager.acquire("a", timeout=0.05):
                pytest.fail("acquired a held lock")  # pragma: no cover
        elapsed = time.monotonic() - started
        let_go.set()
    assert 0.04 <= elapsed < 2.0
    error = caught.value
    assert isinstance(error, TimeoutError) and isinstance(error, ConcurrencyError)
    assert error.holder == "task 'the-holder'"
    assert f"{THIS_FILE}:{lines[0]} in holder" in str(error)
    stats = manager.statistics()["a"]
    assert stats.timeouts == 1 and stats.acquisitions == 1


async def test_a_task_the_status_names_as_waiting_is_in_line() -> None:
    """Once a task shows among the waiters, a release hands it the lock.

    The manager applies cc's checkpoint rule once per acquisition; its own
    local lock used to apply it again where the task starts to wait, so when
    the rule fell due just there the task showed as waiting but was not in
    line yet, and a release let a newcomer take the lock. The budget is set
    here so that the due call would be exactly the waiter's wait.
    """
    manager = AsyncLockManager({"a": 1})
    record = manager.get_lock_info_nowait("a")
    lock = await manager.get_lock("a")
    got: list[str] = []

    async def waiter() -> None:
        async with manager.acquire("a", timeout=None):
            got.append("waiter")

    async with anyio.create_task_group() as tg:
        async with manager.acquire("a"):
            tg.start_soon(waiter, name="waiter")
            while not checkpoint_due():  # spend up to the due call...
                pass
            for _ in range(CHECKPOINT_INTERVAL - 2):  # ...and all but two more:
                checkpoint_due()  # the waiter's acquire(), then its wait
            while not record.waiters:  # no cc call here: nothing spent
                await anyio.lowlevel.checkpoint()
        # Released: handed to the waiter (a try that spends nothing).
        assert not lock.acquire_nowait(), "a newcomer barged past the waiter"
    assert got == ["waiter"]


async def test_one_deadline_covers_the_whole_set(recorded: list[str]) -> None:
    manager = AsyncLockManager()
    slow = RecordingLock("slow", recorded)
    rest = RecordingLock("rest", recorded)
    await manager.register_lock("slow", 1, lock=slow)
    await manager.register_lock("rest", 2, lock=rest)
    held = anyio.Event()
    done = anyio.Event()

    async def other() -> None:
        slow_lock = await manager.get_lock("slow")
        rest_lock = await manager.get_lock("rest")
        await slow_lock.acquire()
        await rest_lock.acquire()
        held.set()
        slow_record = manager.get_lock_info_nowait("slow")
        while not slow_record.waiters:  # the main task waits for it: let it go
            await anyio.lowlevel.checkpoint()
        slow_lock.release()
        await done.wait()
        rest_lock.release()

    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
        await held.wait()
        with pytest.raises(LockTimeoutError, match="'rest'"):
            async with manager.acquire("slow", "rest", timeout=1.0):
                pytest.fail("acquired a held lock")  # pragma: no cover
        done.set()
    # both waits ran under the same absolute deadline
    assert abs(slow.deadlines[-1] - rest.deadlines[-1]) < 0.05


async def test_blocking_false_fails_at_once_and_releases_what_it_took() -> None:
    manager = AsyncLockManager({"a": 1, "b": 2})
    taken = anyio.Event()
    let_go = anyio.Event()

    async def busy() -> None:
        async with manager.acquire("b"):
            taken.set()
            await let_go.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(busy, name="busy")
        await taken.wait()
        with pytest.raises(LockTimeoutError, match="blocking=False") as caught:
            async with manager.acquire("a", "b", blocking=False):
                pytest.fail("acquired a held lock")  # pragma: no cover
        assert caught.value.holder == "task 'busy'"
        assert not (await manager.get_lock_status())["a"]["is_locked"]
        let_go.set()
    async with manager.acquire("a", "b", blocking=False):
        assert manager.held_locks() == ["a", "b"]


async def test_partial_failure_on_timeout_releases_everything(
    recorded: list[str],
) -> None:
    manager = AsyncLockManager()
    for name, order in (("a", 1), ("b", 2), ("c", 3)):
        await manager.register_lock(name, order, lock=RecordingLock(name, recorded))
    taken = anyio.Event()
    let_go = anyio.Event()

    async def hold_c() -> None:
        async with manager.acquire("c"):
            taken.set()
            await let_go.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(hold_c)
        await taken.wait()
        recorded.clear()
        with pytest.raises(LockTimeoutError, match="'c'"):
            async with manager.acquire("b", "c", "a", timeout=0.05):
                pytest.fail("acquired a held lock")  # pragma: no cover
        assert recorded == ["+a", "+b", "-b", "-a"]
        assert manager.held_locks() == []
        let_go.set()


async def test_cancelling_a_waiting_task_releases_what_it_took() -> None:
    manager = AsyncLockManager({"a": 1, "b": 2})
    taken = anyio.Event()
    let_go = anyio.Event()
    reached: list[str] = []

    async def hold_b() -> None:
        async with manager.acquire("b"):
            taken.set()
            await let_go.wait()

    async def wants_both() -> None:
        async with manager.acquire("a", "b", timeout=None):
            reached.append("inside")  # pragma: no cover

    async with anyio.create_task_group() as tg:
        tg.start_soon(hold_b)
        await taken.wait()
        async with anyio.create_task_group() as inner:
            inner.start_soon(wants_both, name="waiter")
            await wait_until(lambda: manager.get_lock_info_nowait("b").waiters == 1)
            status = await manager.get_lock_status()
            assert status["a"]["owner"] == "task 'waiter'"
            assert status["b"]["waiting"] == ["task 'waiter'"]
            inner.cancel_scope.cancel()
        status = await manager.get_lock_status()
        assert not status["a"]["is_locked"] and status["b"]["waiters"] == 0
        let_go.set()
    assert reached == []
    assert manager._holders == {}  # no task is remembered after it let go


# -- order graph and wait-for graph -------------------------------------------------


async def test_ab_ba_inversion_between_two_tasks_is_caught_without_deadlock() -> None:
    manager = AsyncLockManager({"x": None, "y": None})
    lines: list[int] = []

    async def x_then_y() -> None:
        lines.append(here() + 1)
        async with manager.acquire("x"), manager.acquire("y"):
            await anyio.lowlevel.checkpoint()

    async def y_then_x() -> None:
        try:
            async with manager.acquire("y"), manager.acquire("x"):
                pytest.fail("inversion not detected")  # pragma: no cover
        except LockOrderError as exc:
            errors.append(exc)

    errors: list[LockOrderError] = []
    # The tasks never overlap, so they can never actually deadlock: the
    # inversion is found from the order alone.
    async with anyio.create_task_group() as tg:
        tg.start_soon(x_then_y, name="first")
    async with anyio.create_task_group() as tg:
        tg.start_soon(y_then_x, name="second")
    assert len(errors) == 1
    error = errors[0]
    assert not isinstance(error, DeadlockError)
    message = str(error)
    assert "potential deadlock: task 'second' takes 'x'" in message
    assert f"task 'first' took 'y' at {THIS_FILE}:{lines[0]}" in message
    assert "Two tasks doing both" in message
    assert await manager.detect_potential_deadlocks() == [message]


@pytest.mark.parametrize(
    ("policy", "hierarchy"),
    [("warn", {"x": None, "y": None}), ("off", {"x": 1, "y": 2})],
)
async def test_a_real_wait_for_cycle_raises_deadlock_error(
    policy: Any, hierarchy: Any
) -> None:
    manager = AsyncLockManager(hierarchy, policy=policy)
    x, y = await manager.get_lock("x"), await manager.get_lock("y")
    first_has_x = anyio.Event()
    second_has_y = anyio.Event()
    outcome: dict[str, Any] = {}

    async def first() -> None:
        async with x:
            first_has_x.set()
            await second_has_y.wait()
            async with manager.acquire("y", timeout=5):
                outcome["first"] = "got both"

    async def second() -> None:
        await first_has_x.wait()
        async with y:
            second_has_y.set()
            await wait_until(lambda: y.info.waiters == 1)
            started = time.monotonic()
            try:
                async with manager.acquire("x", timeout=5):
                    pytest.fail("waited into a deadlock")  # pragma: no cover
            except DeadlockError as exc:
                outcome["second"] = exc
                outcome["elapsed"] = time.monotonic() - started

    async with anyio.create_task_group() as tg:
        tg.start_soon(first, name="first")
        tg.start_soon(second, name="second")
    assert outcome["first"] == "got both"
    assert outcome["elapsed"] < 1.0
    error = outcome["second"]
    assert str(error).startswith(
        "deadlock: task 'second' waits for 'x', held by task 'first'"
    )
    assert "which waits for 'y', held by task 'second'" in str(error)
    assert error.cycle == ("x", "y", "x")
    assert error.holders == ("task 'first'", "task 'second'")
    reports = await manager.detect_potential_deadlocks()
    assert any(r.startswith("deadlock averted: task 'second'") for r in reports)


async def test_without_detection_a_live_cycle_is_reported() -> None:
    manager = AsyncLockManager(
        {"x": None, "y": None}, policy="off", detect_deadlocks=False
    )
    both = anyio.Event()
    count: list[str] = []
    outcome: dict[str, Any] = {}

    async def take(mine: str, wanted: str, limit: float) -> None:
        async with await manager.get_lock(mine):
            count.append(mine)
            if len(count) == 2:
                both.set()
            await both.wait()
            try:
                async with manager.acquire(wanted, timeout=limit):
                    outcome[mine] = "ok"
            except LockTimeoutError:
                outcome[mine] = "timed out"

    async with anyio.create_task_group() as tg:
        tg.start_soon(take, "x", "y", 0.2, name="t1")
        tg.start_soon(take, "y", "x", 5.0, name="t2")
        await wait_until(
            lambda: all(manager.get_lock_info_nowait(n).waiters for n in "xy")
        )
        reports = await manager.detect_potential_deadlocks()
    assert outcome == {"x": "timed out", "y": "ok"}
    assert len(reports) == 1 and reports[0].startswith("live deadlock: task")


async def test_policies_warn_and_off(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="cc.locks")
    warn = AsyncLockManager({"a": 1, "b": 2}, policy="warn")
    off = AsyncLockManager({"a": 1, "b": 2}, policy="off")
    for manager in (warn, off, warn):
        async with manager.acquire("b"), manager.acquire("a"):
            assert manager.held_locks() == ["b", "a"]
    assert len(caplog.records) == 1
    assert "lock order violation: task" in caplog.records[0].getMessage()
    assert len(await warn.detect_potential_deadlocks()) == 1
    assert await off.detect_potential_deadlocks() == []


# -- reports and statistics -----------------------------------------------------------


async def test_long_holds_are_logged_with_holder_and_site(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="cc.locks")
    manager = AsyncLockManager({"slow": 1}, long_hold_threshold=0.02)
    line = here() + 1
    async with manager.acquire("slow"):
        await anyio.sleep(0.05)
        reports = await manager.detect_potential_deadlocks()
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert message.startswith("lock 'slow' was held for")
    assert "by task '" in message
    assert f"acquired at {THIS_FILE}:{line} in " in message
    assert len(reports) == 1 and reports[0].startswith("long hold: 'slow'")


async def test_status_and_statistics() -> None:
    manager = AsyncLockManager({"a": 1, "b": 2})
    taken = anyio.Event()

    async def hold() -> None:
        async with manager.acquire("a"):
            taken.set()
            await anyio.sleep(0.05)

    async with anyio.create_task_group() as tg:
        tg.start_soon(hold, name="holder")
        await taken.wait()
        status = (await manager.get_lock_status())["a"]
        assert status["owner"] == "task 'holder'" and status["depth"] == 1
        assert status["hold_time"] >= 0 and status["acquired_at"] <= time.time()
        async with manager.acquire("a", "b"):
            pass
    stats = manager.statistics()
    assert stats["a"].acquisitions == 2 and stats["a"].contended_acquisitions == 1
    assert stats["a"].max_wait_time > 0
    assert stats["a"].total_wait_time == stats["a"].max_wait_time
    assert stats["a"].max_hold_time >= 0.04
    assert stats["b"].contended_acquisitions == 0
    info = await manager.get_lock_info("a")
    assert info.statistics() == stats["a"]


async def test_reset_and_retired_locks() -> None:
    manager = AsyncLockManager({"a": 1})
    lock = await manager.get_lock("a")
    stale = manager.acquire("a")  # made before the reset, used after
    async with lock:
        with pytest.raises(RuntimeError, match="while locks are held"):
            await manager.reset()
    await manager.reset()
    assert await manager.get_lock_status() == {}
    for use in (lock.acquire, lock.__aenter__):
        with pytest.raises(RuntimeError, match="no longer registered"):
            await use()
    with pytest.raises(RuntimeError, match="no longer registered"):
        lock.acquire_nowait()
    with pytest.raises(RuntimeError, match="no longer registered"):
        async with stale:
            pass  # pragma: no cover


async def test_tasks_hammering_random_sets_keep_every_invariant() -> None:
    names = ["n0", "n1", "n2", "n3"]
    manager = AsyncLockManager({name: i for i, name in enumerate(names)})
    inside = dict.fromkeys(names, 0)
    done: list[int] = []

    async def hammer(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(100):
            chosen = rng.sample(names, rng.randint(1, 3))
            async with manager.acquire(*chosen, timeout=5):
                for name in chosen:
                    inside[name] += 1
                    assert inside[name] == 1, "two tasks inside one lock"
                await anyio.lowlevel.checkpoint()
                for name in chosen:
                    inside[name] -= 1
            done.append(seed)

    async with anyio.create_task_group() as tg:
        for seed in range(6):
            tg.start_soon(hammer, seed)
    assert len(done) == 600
    assert await manager.detect_potential_deadlocks() == []
    assert sum(s.contended_acquisitions for s in manager.statistics().values()) > 0


async def test_the_process_wide_async_manager() -> None:
    manager = await get_async_lock_manager()
    try:
        assert manager is await get_async_lock_manager()
        await manager.register_locks({"global-a": 1})
        async with manager.acquire("global-a"):
            assert manager.held_locks() == ["global-a"]
    finally:
        await manager.reset()
    assert await (await get_async_lock_manager()).get_lock_status() == {}


def test_held_locks_outside_a_task_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="inside an async task"):
        AsyncLockManager().held_locks()


async def test_an_order_error_part_way_releases_what_the_call_took(
    recorded: list[str],
) -> None:
    manager = AsyncLockManager()
    for name, order in (("c", 3), ("x", None)):
        await manager.register_lock(name, order, lock=RecordingLock(name, recorded))
    async with manager.acquire("x"), manager.acquire("c"):  # learns x -> c
        pass
    recorded.clear()
    with pytest.raises(LockOrderError, match="potential deadlock"):
        async with manager.acquire("x", "c"):  # takes c, then x: a cycle
            pytest.fail("inversion not detected")  # pragma: no cover
    assert recorded == ["+c", "-c"]
    assert manager.held_locks() == []


async def test_managed_lock_acquire_waits_as_long_as_it_takes() -> None:
    manager = AsyncLockManager({"r": 1})
    lock = await manager.get_lock("r")
    taken = anyio.Event()

    async def hold() -> None:
        async with lock:
            taken.set()
            await anyio.sleep(0.05)

    async with anyio.create_task_group() as tg:
        tg.start_soon(hold)
        await taken.wait()
        assert await lock.acquire() is True
        assert lock.owned_by_current_task()
        lock.release()
    assert manager.statistics()["r"].contended_acquisitions == 1


async def test_many_tasks_at_once_leave_nothing_behind() -> None:
    names = [f"L{i}" for i in range(80)]
    manager = AsyncLockManager({name: None for name in names})
    all_in = anyio.Event()
    inside: list[str] = []

    async def use(name: str) -> None:
        async with manager.acquire(name):
            inside.append(name)
            if len(inside) == len(names):
                all_in.set()
            await all_in.wait()

    for _ in range(2):
        inside.clear()
        all_in = anyio.Event()
        async with anyio.create_task_group() as tg:
            for name in names:
                tg.start_soon(use, name)
        assert manager._holders == {}
    assert sum(s.acquisitions for s in manager.statistics().values()) == 160
