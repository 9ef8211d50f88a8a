"""Lock managers under load: ordered locks, timeouts, cancellations, inversions.

* **Ordered, threads**: 16 threads take random subsets of 10 locks of
  declared order, named in random order, with random timeouts (0 to 20 ms,
  or none) and sometimes ``blocking=False``; inside, some take more locks of
  a higher order (legal nesting) or re-enter one they hold. For a bounded
  time. No LockOrderError or DeadlockError may be raised (the order is
  legal), no two threads may be inside the same lock, every LockTimeoutError
  must name the lock and its holder (or say the lock was released just as
  the deadline passed, which it then was), every thread must finish, and at
  the end every lock is free with no waiter, no deadlock is reported, and
  the per-lock timeout counts match the errors the threads saw.
* **Ordered, tasks**: the same with 200 tasks and an AsyncLockManager on each
  backend, plus a chaos task cancelling acquisitions and critical sections.
* **Inversions**: locks registered with ``order=None`` (a chain of nested
  acquisitions teaches the manager their order first) and locks of declared
  order, used by threads and by tasks that mostly nest them in order and
  often deliberately invert a pair. With policy "raise" every inversion
  raises LockOrderError naming both locks, before waiting; with policy
  "warn" every inverted pair is logged and reported by
  ``detect_potential_deadlocks()``, and the real wait-for cycles this allows
  end in DeadlockError or a timeout. Nothing hangs; everything is free at
  the end.

Two small tests pin down bugs the load found (since fixed in cc-locks): a
spent deadline (``timeout=0`` on a held lock) raising ValueError instead of
LockTimeoutError, and a task timeout naming no holder while the lock was
being handed to the next task.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
from anyio.lowlevel import checkpoint

from cc.locks import (
    AsyncLockManager,
    DeadlockError,
    LockManager,
    LockOrderError,
    LockTimeoutError,
)
from cc.primitives.lowlevel import checkpoint_due

ORDERED = {f"L{i}": (i + 1) * 10 for i in range(10)}
THREADS = 16
TASKS = 200
THREAD_SECONDS = 1.0
TASK_SECONDS = 0.6
TIMEOUTS = [0, 0.001, 0.005, 0.02, None]
JOIN_MARGIN = 10.0


@dataclass
class Tally:
    """What one worker saw; merged into the run's totals at the end."""

    operations: int = 0
    acquired: Counter[str] = field(default_factory=Counter)
    timeouts: Counter[str] = field(default_factory=Counter)
    holder_named: int = 0
    freed_at_deadline: int = 0
    nested: int = 0
    reentered: int = 0
    cancelled: int = 0
    problems: list[str] = field(default_factory=list)

    def merge(self, other: Tally) -> None:
        """Add ``other``'s counts to this tally."""
        self.operations += other.operations
        self.acquired.update(other.acquired)
        self.timeouts.update(other.timeouts)
        self.holder_named += other.holder_named
        self.freed_at_deadline += other.freed_at_deadline
        self.nested += other.nested
        self.reentered += other.reentered
        self.cancelled += other.cancelled
        self.problems.extend(other.problems)

    def timed_out(
        self,
        error: LockTimeoutError,
        wanted: list[str],
        kind: str,
        free_now: bool = False,
    ) -> None:
        """Check that a timeout names the lock and its holder; count it.

        ``free_now`` says whether the lock is free as the error arrives (for
        tasks, whose view cannot change in between).
        """
        message = str(error)
        self.timeouts[error.lock_name] += 1
        if error.lock_name not in wanted or repr(error.lock_name) not in message:
            self.problems.append(f"timeout names the wrong lock: {message}")
        elif error.holder is not None:
            if error.holder not in message or not error.holder.startswith(kind):
                self.problems.append(f"timeout names no {kind} holder: {message}")
            self.holder_named += 1
        elif "released just now" in message and (kind == "thread" or free_now):
            # Released as the deadline passed, and the message says so.
            # Threads: the next holder may not have recorded itself yet.
            # Tasks: the lock was handed to this very task as its deadline
            # passed, so it passed the lock on, and nobody wanted it (had
            # someone, that task would be named: see
            # test_task_timeout_names_the_task_the_lock_was_handed_to).
            self.freed_at_deadline += 1
        else:
            self.problems.append(f"timeout without a holder: {message}")


def _higher(names: list[str]) -> list[str]:
    top = max(ORDERED[n] for n in names)
    return [n for n in ORDERED if ORDERED[n] > top]


class Occupancy:
    """Who is inside each lock's critical section: never two at once."""

    def __init__(self) -> None:
        self.inside: dict[str, object] = {}
        self.guard = threading.Lock()
        self.violations: list[str] = []

    def enter(self, names: list[str], me: object) -> None:
        """Record ``me`` inside ``names``; a name already occupied is a violation."""
        with self.guard:
            for name in names:
                other = self.inside.get(name)
                if other is not None:
                    self.violations.append(f"{me} and {other} both inside {name}")
                self.inside[name] = me

    def leave(self, names: list[str]) -> None:
        """Record that the caller left ``names``."""
        with self.guard:
            for name in names:
                self.inside.pop(name, None)


def _check_clean_status(status: dict[str, dict[str, Any]], where: str) -> None:
    for name, entry in status.items():
        assert not entry["is_locked"], f"{name} still locked: {entry} {where}"
        assert entry["owner"] is None and entry["depth"] == 0, f"{entry} {where}"
        assert entry["waiters"] == 0 and entry["waiting"] == [], f"{entry} {where}"


def _check_counts(manager: Any, total: Tally, where: str) -> None:
    stats = manager.statistics()
    for name in ORDERED:
        # Partial acquisitions (the first locks of a set whose last one
        # timed out or was cancelled) count too, so ">=".
        assert stats[name].acquisitions >= total.acquired[name], f"{name} {where}"
        assert stats[name].timeouts == total.timeouts[name], f"{name} {where}"


# -- ordered locks, threads --------------------------------------------------


@pytest.mark.parametrize("how", ["manager.acquire", "ManagedLock.acquire"])
def test_thread_timeout_zero_on_a_held_lock_times_out(kit: Any, how: str) -> None:
    """timeout=0 on a lock another thread holds: a timeout, not a ValueError."""
    manager = LockManager({"a": 1})
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        with manager.acquire("a", timeout=None):
            held.set()
            done.wait(JOIN_MARGIN)

    holder = threading.Thread(target=hold, name="holder")
    holder.start()
    try:
        assert held.wait(JOIN_MARGIN)
        if how == "manager.acquire":
            with (
                pytest.raises(LockTimeoutError, match="holder"),
                manager.acquire("a", timeout=0),
            ):
                pass
        else:
            assert manager.get_lock("a").acquire(timeout=0) is False
    finally:
        done.set()
        holder.join(JOIN_MARGIN)
    kit.report.check("timeout=0 on a held lock times out")


def _thread_worker(
    manager: LockManager,
    rng: random.Random,
    end: float,
    tally: Tally,
    occupancy: Occupancy,
) -> None:
    me = threading.current_thread().name
    while time.monotonic() < end:
        tally.operations += 1
        names = rng.sample(list(ORDERED), rng.randint(1, 4))
        timeout = rng.choice(TIMEOUTS)
        blocking = rng.random() > 0.1
        wanted = list(names)
        try:
            with manager.acquire(*names, timeout=timeout, blocking=blocking):
                tally.acquired.update(names)
                held = manager.held_locks()
                if held != sorted(names, key=ORDERED.__getitem__):
                    tally.problems.append(f"held {held} for {names}")
                occupancy.enter(names, me)
                try:
                    higher = _higher(names)
                    if higher and rng.random() < 0.3:
                        inner = rng.sample(higher, rng.randint(1, min(2, len(higher))))
                        wanted += inner
                        with manager.acquire(*inner, timeout=rng.choice(TIMEOUTS)):
                            tally.acquired.update(inner)
                            tally.nested += 1
                            occupancy.enter(inner, me)
                            try:
                                time.sleep(rng.choice([0, 0, 0.0002]))
                            finally:
                                occupancy.leave(inner)
                    if rng.random() < 0.2:
                        with manager.acquire(rng.choice(names), timeout=0):
                            tally.reentered += 1
                    time.sleep(rng.choice([0, 0, 0.0002]))
                finally:
                    occupancy.leave(names)
        except LockTimeoutError as error:
            tally.timed_out(error, wanted, "thread")
        except Exception as error:  # recorded, not lost in the thread
            tally.problems.append(f"{me}: {error!r}")


def test_ordered_locks_under_16_threads(kit: Any) -> None:
    """Random subsets of 10 ordered locks, random timeouts; see the module."""
    manager = LockManager(ORDERED)
    occupancy = Occupancy()
    tallies = [Tally() for _ in range(THREADS)]
    end = time.monotonic() + THREAD_SECONDS
    threads = [
        threading.Thread(
            target=_thread_worker,
            args=(
                manager,
                random.Random(kit.rng.getrandbits(64)),
                end,
                tally,
                occupancy,
            ),
            name=f"stress-{n}",
        )
        for n, tally in enumerate(tallies)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(end - time.monotonic() + JOIN_MARGIN)
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"threads did not finish (deadlock?): {stuck} {kit.where()}"
    total = Tally()
    for tally in tallies:
        total.merge(tally)
    where = kit.where(operations=total.operations)
    assert not total.problems, f"{total.problems[:5]} {where}"
    assert not occupancy.violations, f"{occupancy.violations[:5]} {where}"
    _check_clean_status(manager.get_lock_status(), where)
    assert manager.detect_potential_deadlocks() == [], where
    _check_counts(manager, total, where)
    _report(kit, "threads", total, checks=5)


def _report(kit: Any, who: str, total: Tally, checks: int) -> None:
    report = kit.report
    report.moved(f"lock manager acquisitions ({who})", sum(total.acquired.values()))
    report.fault("lock timeouts naming the holder", total.holder_named)
    report.fault("lock timeouts as the lock was released", total.freed_at_deadline)
    report.fault("lock acquisitions cancelled", total.cancelled)
    report.check("ordered locks: no violation, exclusive, clean at the end", checks)


# -- ordered locks, tasks ------------------------------------------------------


async def _task_worker(
    manager: AsyncLockManager,
    rng: random.Random,
    end: float,
    tally: Tally,
    occupancy: Occupancy,
    scopes: dict[int, anyio.CancelScope],
    me: int,
) -> None:
    while anyio.current_time() < end:
        tally.operations += 1
        names = rng.sample(list(ORDERED), rng.randint(1, 4))
        timeout = rng.choice(TIMEOUTS)
        blocking = rng.random() > 0.1
        wanted = list(names)
        with anyio.CancelScope() as scope:
            scopes[me] = scope
            try:
                async with manager.acquire(*names, timeout=timeout, blocking=blocking):
                    tally.acquired.update(names)
                    held = manager.held_locks()
                    if held != sorted(names, key=ORDERED.__getitem__):
                        tally.problems.append(f"held {held} for {names}")
                    occupancy.enter(names, me)
                    try:
                        higher = _higher(names)
                        if higher and rng.random() < 0.3:
                            inner = rng.sample(higher, 1)
                            wanted += inner
                            async with manager.acquire(
                                *inner, timeout=rng.choice(TIMEOUTS)
                            ):
                                tally.acquired.update(inner)
                                tally.nested += 1
                                occupancy.enter(inner, me)
                                try:
                                    await checkpoint()
                                finally:
                                    occupancy.leave(inner)
                        if rng.random() < 0.2:
                            async with manager.acquire(rng.choice(names), timeout=0):
                                tally.reentered += 1
                        await rng.choice([checkpoint, _short_sleep])()
                    finally:
                        occupancy.leave(names)
            except LockTimeoutError as error:
                free = not manager.get_lock_info_nowait(error.lock_name).is_locked
                tally.timed_out(error, wanted, "task", free_now=free)
            except Exception as error:
                tally.problems.append(f"task {me}: {error!r}")
        del scopes[me]
        if scope.cancelled_caught:
            tally.cancelled += 1
        await checkpoint()


def _no_checkpoint_for_a_while() -> None:
    """Spend the thread's checkpoint budget up to its due call, included.

    cc's rule makes every CHECKPOINT_INTERVAL-th call on a thread that does
    not wait a checkpoint; which call that is depends on everything that ran
    before. After this, the next CHECKPOINT_INTERVAL - 1 calls are known not
    to yield.
    """
    while not checkpoint_due():
        pass


@pytest.mark.anyio
async def test_task_timeout_names_the_task_the_lock_was_handed_to(kit: Any) -> None:
    """A lock handed to a waiting task that has not run yet: name that task."""
    manager = AsyncLockManager({"a": 1})
    ran: list[str] = []

    async def next_in_line() -> None:
        async with manager.acquire("a", timeout=None):
            ran.append("next-in-line")

    async with anyio.create_task_group() as tg:
        async with manager.acquire("a"):
            tg.start_soon(next_in_line, name="next-in-line")
            while (await manager.get_lock_status())["a"]["waiters"] == 0:
                await checkpoint()
            # Neither the release nor the attempt below may be the call that
            # yields: next-in-line must not run in between.
            _no_checkpoint_for_a_while()
        # Released: handed to next-in-line, which has not run since.
        with pytest.raises(LockTimeoutError) as caught:
            async with manager.acquire("a", blocking=False):
                pass
        assert ran == [], "next-in-line ran before the attempt: nothing was proven"
    assert ran == ["next-in-line"]
    assert caught.value.holder == "task 'next-in-line'", str(caught.value)
    kit.report.check("a timeout names the task a lock was handed to")


async def _short_sleep() -> None:
    await anyio.sleep(0.0002)


@pytest.mark.anyio
async def test_ordered_locks_under_200_tasks(kit: Any, backend: str) -> None:
    """200 tasks, random subsets, timeouts and cancellations; see the module."""
    manager = AsyncLockManager(ORDERED)
    occupancy = Occupancy()
    tally = Tally()
    scopes: dict[int, anyio.CancelScope] = {}
    baseline = kit.live_tasks()
    end = anyio.current_time() + TASK_SECONDS
    chaos = random.Random(kit.rng.getrandbits(64))

    async def cancel_now_and_then() -> None:
        while anyio.current_time() < end:
            await anyio.sleep(chaos.choice([0.0005, 0.002, 0.005]))
            if scopes:
                scopes[chaos.choice(list(scopes))].cancel()

    with anyio.fail_after(TASK_SECONDS + JOIN_MARGIN):
        async with anyio.create_task_group() as tg:
            for me in range(TASKS):
                rng = random.Random(kit.rng.getrandbits(64))
                tg.start_soon(
                    _task_worker, manager, rng, end, tally, occupancy, scopes, me
                )
            tg.start_soon(cancel_now_and_then)
    where = kit.where(operations=tally.operations)
    assert not tally.problems, f"{tally.problems[:5]} {where}"
    assert not occupancy.violations, f"{occupancy.violations[:5]} {where}"
    _check_clean_status(await manager.get_lock_status(), where)
    assert await manager.detect_potential_deadlocks() == [], where
    _check_counts(manager, tally, where)
    assert manager.held_locks() == []
    kit.assert_no_new_tasks(baseline)
    _report(kit, f"tasks, {backend}", tally, checks=5)


# -- inversions ------------------------------------------------------------------

CHAIN = [f"N{i}" for i in range(6)]
INVERSION_SECONDS = 0.4


@dataclass
class InversionTally:
    """What the workers of an inversion run saw."""

    inverted: Counter[tuple[str, str]] = field(default_factory=Counter)
    raised: Counter[tuple[str, str]] = field(default_factory=Counter)
    deadlocks: int = 0
    timeouts: int = 0
    forward: int = 0
    problems: list[str] = field(default_factory=list)

    def order_error(
        self, error: LockOrderError, pair: tuple[str, str], inverted: bool, policy: str
    ) -> None:
        """Check one LockOrderError (not a DeadlockError) against the plan."""
        if policy != "raise" or not inverted:
            self.problems.append(f"unexpected {error!r} for {pair}")
            return
        message = str(error)
        if not set(pair) <= set(error.cycle) or not all(
            repr(name) in message for name in pair
        ):
            self.problems.append(f"{pair} not named: {error.cycle} {message}")
        self.raised[pair] += 1

    def deadlock(self, error: DeadlockError, policy: str) -> None:
        """Check one DeadlockError: possible only when inversions go through."""
        if policy != "warn" or len(error.holders) != len(error.cycle) - 1:
            self.problems.append(f"unexpected {error!r}")
        self.deadlocks += 1


def _plan(rng: random.Random) -> tuple[tuple[str, str], bool]:
    low, high = sorted(rng.sample(range(len(CHAIN)), 2))
    invert = rng.random() < 0.4
    first, second = (CHAIN[high], CHAIN[low]) if invert else (CHAIN[low], CHAIN[high])
    return (first, second), invert


def _inversion_manager(kind: str, policy: str, cls: Any) -> Any:
    if kind == "declared":
        return cls({name: n for n, name in enumerate(CHAIN)}, policy=policy)
    return cls({name: None for name in CHAIN}, policy=policy)


@contextmanager
def _warnings_of_cc_locks() -> Iterator[Any]:
    logger = logging.getLogger("cc.locks")
    handler = _LogMessages()
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


class _LogMessages(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _check_inversions(
    kit: Any,
    tally: InversionTally,
    reports: list[str],
    logged: list[str],
    policy: str,
    where: str,
) -> None:
    assert not tally.problems, f"{tally.problems[:5]} {where}"
    assert sum(tally.inverted.values()) > 0, f"no inversion was attempted {where}"
    if policy == "raise":
        # Every single attempt raised, before waiting.
        assert tally.raised == tally.inverted, f"{tally.raised} {where}"
    for first, second in tally.inverted:
        named = [r for r in reports if repr(first) in r and repr(second) in r]
        assert named, f"inversion {first} -> {second} not reported {where}"
        if policy == "warn":
            assert any(repr(first) in m and repr(second) in m for m in logged), (
                f"inversion {first} -> {second} not logged {where}"
            )
    kit.report.check("every lock-order inversion reported", len(tally.inverted))
    kit.report.fault(
        f"deliberate lock-order inversions (policy {policy})",
        sum(tally.inverted.values()),
    )
    kit.report.fault("deadlocks averted by DeadlockError", tally.deadlocks)


def _learn_chain_threads(manager: LockManager, depth: int = 0) -> None:
    with manager.acquire(CHAIN[depth], timeout=1):
        if depth + 1 < len(CHAIN):
            _learn_chain_threads(manager, depth + 1)


def _inverting_thread(
    manager: LockManager,
    rng: random.Random,
    end: float,
    tally: InversionTally,
    policy: str,
) -> None:
    while time.monotonic() < end:
        pair, inverted = _plan(rng)
        try:
            with manager.acquire(pair[0], timeout=0.01):
                with manager.acquire(pair[1], timeout=0.01):
                    time.sleep(rng.choice([0, 0.0002]))
                if inverted:
                    tally.inverted[pair] += 1
                else:
                    tally.forward += 1
        except DeadlockError as error:
            tally.deadlock(error, policy)
        except LockOrderError as error:
            if inverted:
                tally.inverted[pair] += 1
            tally.order_error(error, pair, inverted, policy)
        except LockTimeoutError:
            tally.timeouts += 1
        except Exception as error:
            tally.problems.append(repr(error))


@pytest.mark.parametrize("kind", ["learned", "declared"])
@pytest.mark.parametrize("policy", ["raise", "warn"])
def test_inversions_are_reported_threads(kit: Any, kind: str, policy: str) -> None:
    """Eight threads nest pairs of locks, inverting some; see the module."""
    manager = _inversion_manager(kind, policy, LockManager)
    if kind == "learned":
        _learn_chain_threads(manager)
    tallies = [InversionTally() for _ in range(8)]
    end = time.monotonic() + INVERSION_SECONDS
    with _warnings_of_cc_locks() as logged:
        threads = [
            threading.Thread(
                target=_inverting_thread,
                args=(manager, random.Random(kit.rng.getrandbits(64)), end, t, policy),
                name=f"inverter-{n}",
            )
            for n, t in enumerate(tallies)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(end - time.monotonic() + JOIN_MARGIN)
    assert not [t for t in threads if t.is_alive()], f"a thread hung {kit.where()}"
    total = InversionTally()
    for tally in tallies:
        total.inverted.update(tally.inverted)
        total.raised.update(tally.raised)
        total.deadlocks += tally.deadlocks
        total.timeouts += tally.timeouts
        total.forward += tally.forward
        total.problems += tally.problems
    where = kit.where(inverted=dict(total.inverted), forward=total.forward)
    _check_inversions(
        kit,
        total,
        manager.detect_potential_deadlocks(),
        logged.messages,
        policy,
        where,
    )
    _check_clean_status(manager.get_lock_status(), where)


async def _learn_chain_tasks(manager: AsyncLockManager, depth: int = 0) -> None:
    async with manager.acquire(CHAIN[depth], timeout=1):
        if depth + 1 < len(CHAIN):
            await _learn_chain_tasks(manager, depth + 1)


async def _inverting_task(
    manager: AsyncLockManager,
    rng: random.Random,
    end: float,
    tally: InversionTally,
    policy: str,
) -> None:
    while anyio.current_time() < end:
        pair, inverted = _plan(rng)
        try:
            async with manager.acquire(pair[0], timeout=0.01):
                async with manager.acquire(pair[1], timeout=0.01):
                    await checkpoint()
                if inverted:
                    tally.inverted[pair] += 1
                else:
                    tally.forward += 1
        except DeadlockError as error:
            tally.deadlock(error, policy)
        except LockOrderError as error:
            if inverted:
                tally.inverted[pair] += 1
            tally.order_error(error, pair, inverted, policy)
        except LockTimeoutError:
            tally.timeouts += 1
        except Exception as error:
            tally.problems.append(repr(error))
        await checkpoint()


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["learned", "declared"])
@pytest.mark.parametrize("policy", ["raise", "warn"])
async def test_inversions_are_reported_tasks(kit: Any, kind: str, policy: str) -> None:
    """Fifty tasks nest pairs of locks, inverting some; see the module."""
    manager = _inversion_manager(kind, policy, AsyncLockManager)
    if kind == "learned":
        await _learn_chain_tasks(manager)
    tally = InversionTally()
    baseline = kit.live_tasks()
    end = anyio.current_time() + INVERSION_SECONDS
    with (
        _warnings_of_cc_locks() as logged,
        anyio.fail_after(INVERSION_SECONDS + JOIN_MARGIN),
    ):
        async with anyio.create_task_group() as tg:
            for _ in range(50):
                rng = random.Random(kit.rng.getrandbits(64))
                tg.start_soon(_inverting_task, manager, rng, end, tally, policy)
    where = kit.where(inverted=dict(tally.inverted), forward=tally.forward)
    _check_inversions(
        kit,
        tally,
        await manager.detect_potential_deadlocks(),
        logged.messages,
        policy,
        where,
    )
    _check_clean_status(await manager.get_lock_status(), where)
    kit.assert_no_new_tasks(baseline)
