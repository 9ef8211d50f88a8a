"""cc.primitives as a drop-in for anyio's synchronization classes (#14).

Each scenario is written once against "an implementation" (anyio's classes or
cc's), runs on both in the same event loop, and records what a program would
observe: return values, exception types, statistics, the order tasks ran in.
The two records must be equal, on asyncio, asyncio+uvloop and trio. The
documented differences (cc's Lock is reentrant; a CapacityLimiter needs at
least one token) have tests of their own at the end.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import pytest

import cc.primitives

pytestmark = pytest.mark.anyio

ANYIO = SimpleNamespace(
    name="anyio",
    Lock=anyio.Lock,
    Semaphore=anyio.Semaphore,
    CapacityLimiter=anyio.CapacityLimiter,
    Event=anyio.Event,
    Condition=anyio.Condition,
)
CC = SimpleNamespace(
    name="cc",
    Lock=cc.primitives.Lock,
    Semaphore=cc.primitives.Semaphore,
    CapacityLimiter=cc.primitives.CapacityLimiter,
    Event=cc.primitives.Event,
    Condition=cc.primitives.Condition,
)

Record = list[Any]
Scenario = Callable[[SimpleNamespace], Awaitable[Record]]
SCENARIOS: list[Scenario] = []


def scenario(func: Scenario) -> Scenario:
    SCENARIOS.append(func)
    return func


def outcome(call: Callable[[], object]) -> str:
    """What a call did: "ok", "ok: <value>" or the name of what it raised."""
    try:
        value = call()
    except Exception as exc:
        return type(exc).__name__
    return "ok" if value is None else f"ok: {value!r}"


def me() -> anyio.TaskInfo:
    return anyio.get_current_task()


# -- Lock -----------------------------------------------------------------------


@scenario
async def lock_basics(impl: SimpleNamespace) -> Record:
    lock = impl.Lock()
    record: Record = [lock.locked(), lock.statistics().owner]
    async with lock as entered:
        stats = lock.statistics()
        record += [entered, lock.locked(), stats.locked, stats.tasks_waiting]
        record += [stats.owner == me(), stats.owner.name == me().name]
        record += [isinstance(stats, anyio.LockStatistics)]
    record += [lock.locked(), lock.statistics().owner, lock.statistics().locked]
    record.append(outcome(lock.acquire_nowait))
    record.append(outcome(lock.release))
    record.append(outcome(lock.release))  # not locked any more
    for fast_acquire in (True, False):
        async with impl.Lock(fast_acquire=fast_acquire):
            record.append(f"fast_acquire={fast_acquire}")
    return record


@scenario
async def lock_contention_fifo_and_foreign_release(impl: SimpleNamespace) -> Record:
    lock = impl.Lock()
    record: Record = []

    async def waiter(name: str) -> None:
        record.append(f"{name}: nowait {outcome(lock.acquire_nowait)}")
        record.append(f"{name}: foreign release {outcome(lock.release)}")
        await lock.acquire()
        record.append(f"{name} owns: {lock.statistics().owner.name}")
        lock.release()

    await lock.acquire()
    async with anyio.create_task_group() as tg:
        for name in ("A", "B", "C"):
            tg.start_soon(waiter, name, name=name)
            await anyio.wait_all_tasks_blocked()
        record.append(lock.statistics().tasks_waiting)
        lock.release()
    record += [lock.locked(), lock.statistics().tasks_waiting]
    return record


@scenario
async def lock_cancelled_waiters_leave_no_trace(impl: SimpleNamespace) -> Record:
    lock = impl.Lock()
    record: Record = []
    await lock.acquire()
    async with anyio.create_task_group() as tg:
        tg.start_soon(lock.acquire)
        tg.start_soon(lock.acquire)
        await anyio.wait_all_tasks_blocked()
        record.append(lock.statistics().tasks_waiting)
        tg.cancel_scope.cancel()
    record += [lock.statistics().tasks_waiting, lock.statistics().owner == me()]
    lock.release()
    record.append(lock.locked())
    return record


# -- Semaphore ------------------------------------------------------------------


@scenario
async def semaphore_validation(impl: SimpleNamespace) -> Record:
    return [
        outcome(lambda: impl.Semaphore(-1)),
        outcome(lambda: impl.Semaphore(1.5)),
        outcome(lambda: impl.Semaphore(2, max_value=1)),
        outcome(lambda: impl.Semaphore(1, max_value=1.5)),
        outcome(lambda: impl.Semaphore(0).value),
        outcome(lambda: impl.Semaphore(2, max_value=3, fast_acquire=True).max_value),
    ]


@scenario
async def semaphore_basics(impl: SimpleNamespace) -> Record:
    sem = impl.Semaphore(2, max_value=2)
    record: Record = [sem.value, sem.max_value]
    async with sem as entered:
        record += [entered is sem, sem.value]
        record.append(outcome(sem.acquire_nowait))
        record.append(outcome(sem.acquire_nowait))  # none left
        record.append(sem.value)
        sem.release()
    record.append(outcome(sem.release))  # above max_value
    stats = sem.statistics()
    record += [stats.tasks_waiting, isinstance(stats, anyio.SemaphoreStatistics)]
    for fast_acquire in (True, False):
        async with impl.Semaphore(1, fast_acquire=fast_acquire):
            record.append(f"fast_acquire={fast_acquire}")
    return record


@scenario
async def semaphore_fifo_hand_off(impl: SimpleNamespace) -> Record:
    sem = impl.Semaphore(0)
    record: Record = []

    async def worker(n: int) -> None:
        await sem.acquire()
        record.append(n)

    async with anyio.create_task_group() as tg:
        for n in range(4):
            tg.start_soon(worker, n)
            await anyio.wait_all_tasks_blocked()
        record.append(sem.statistics().tasks_waiting)
        for _ in range(4):
            sem.release()
            record.append(f"value {sem.value}")  # handed over, not counted
            await anyio.wait_all_tasks_blocked()
    return record


# -- CapacityLimiter ------------------------------------------------------------


@scenario
async def limiter_validation(impl: SimpleNamespace) -> Record:
    return [
        outcome(lambda: impl.CapacityLimiter(2.5)),
        outcome(lambda: impl.CapacityLimiter(-1)),
        outcome(lambda: impl.CapacityLimiter("3")),
        outcome(lambda: impl.CapacityLimiter(math.inf).total_tokens),
    ]


@scenario
async def limiter_basics(impl: SimpleNamespace) -> Record:
    limiter = impl.CapacityLimiter(2)
    record: Record = [limiter.total_tokens, limiter.borrowed_tokens]
    async with limiter:
        record += [limiter.borrowed_tokens, limiter.available_tokens]
        record.append(outcome(limiter.acquire_nowait))  # the same task again
        record.append(outcome(lambda: limiter.acquire_on_behalf_of_nowait("job")))
        record.append(outcome(lambda: limiter.acquire_on_behalf_of_nowait("job-2")))
        stats = limiter.statistics()
        record += [stats.borrowed_tokens, stats.total_tokens, stats.tasks_waiting]
        record += [isinstance(stats, anyio.CapacityLimiterStatistics)]
        record += ["job" in stats.borrowers, len(stats.borrowers)]
        record += [sum(not isinstance(b, str) for b in stats.borrowers)]  # the task
        limiter.release_on_behalf_of("job")
        record.append(outcome(lambda: limiter.release_on_behalf_of("job")))
    record.append(outcome(limiter.release))  # holds nothing now
    await limiter.acquire_on_behalf_of("batch")
    record.append(limiter.borrowed_tokens)
    limiter.release_on_behalf_of("batch")
    return record


@scenario
async def limiter_raising_total_tokens_wakes_waiters(impl: SimpleNamespace) -> Record:
    limiter = impl.CapacityLimiter(1)
    record: Record = []
    inside: list[int] = []

    async def worker(n: int) -> None:
        async with limiter:
            inside.append(n)
            await anyio.lowlevel.checkpoint()

    await limiter.acquire()
    async with anyio.create_task_group() as tg:
        for n in range(3):
            tg.start_soon(worker, n)
            await anyio.wait_all_tasks_blocked()
        record.append(limiter.statistics().tasks_waiting)
        limiter.total_tokens = 3
        record += [limiter.borrowed_tokens, limiter.statistics().tasks_waiting]
        await anyio.wait_all_tasks_blocked()
        # trio runs tasks woken together in any order: compare who got in
        record.append(sorted(inside))
        limiter.release()
    record += [sorted(inside), limiter.borrowed_tokens]
    return record


# -- Event ----------------------------------------------------------------------


@scenario
async def event_basics(impl: SimpleNamespace) -> Record:
    event = impl.Event()
    record: Record = [event.is_set(), event.statistics().tasks_waiting]

    async def waiter(n: int) -> None:
        await event.wait()
        record.append(f"{n} woke")

    async with anyio.create_task_group() as tg:
        for n in range(3):
            tg.start_soon(waiter, n)
        await anyio.wait_all_tasks_blocked()
        stats = event.statistics()
        record += [stats.tasks_waiting, isinstance(stats, anyio.EventStatistics)]
        event.set()
        record.append(event.is_set())
    record.sort(key=str)  # trio wakes simultaneous waiters in any order
    await event.wait()
    event.set()
    record.append(event.statistics().tasks_waiting)
    return record


# -- Condition ------------------------------------------------------------------


async def start_waiters(
    tg: anyio.abc.TaskGroup, condition: Any, count: int, woke: list[int]
) -> None:
    """Start ``count`` tasks that wait on ``condition`` in turn, then note it."""

    async def waiter(n: int) -> None:
        async with condition:
            await condition.wait()
            woke.append(n)

    for n in range(count):
        tg.start_soon(waiter, n)
        await anyio.wait_all_tasks_blocked()


@scenario
async def condition_plain_notify_calls(impl: SimpleNamespace) -> Record:
    """anyio and asyncio style: notify() and notify_all() are not awaited."""
    condition = impl.Condition()
    record: Record = []
    woke: list[int] = []
    async with anyio.create_task_group() as tg:
        await start_waiters(tg, condition, 4, woke)
        stats = condition.statistics()
        record += [stats.tasks_waiting, stats.lock_statistics.locked]
        record += [isinstance(stats, anyio.ConditionStatistics)]
        for notify in (condition.notify, lambda: condition.notify(2)):
            async with condition:
                notify()
            await anyio.wait_all_tasks_blocked()
            # trio runs tasks woken together in any order: compare who woke
            record.append(sorted(woke))
        async with condition:
            condition.notify_all()
    record += [sorted(woke), condition.statistics().tasks_waiting]
    return record


@scenario
async def condition_misuse_and_nowait(impl: SimpleNamespace) -> Record:
    condition = impl.Condition()
    record: Record = [outcome(condition.notify), outcome(condition.notify_all)]
    try:
        await condition.wait()
    except RuntimeError as exc:
        record.append(type(exc).__name__)
    record.append(outcome(condition.acquire_nowait))
    record.append(condition.locked())

    async def other() -> None:
        record.append(outcome(condition.acquire_nowait))

    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
    condition.release()
    record.append(condition.locked())
    return record


@scenario
async def condition_wait_for_and_cancelled_waiter(impl: SimpleNamespace) -> Record:
    condition = impl.Condition()
    items: list[int] = []
    record: Record = []

    async def consumer(n: int) -> None:
        async with condition:
            await condition.wait_for(lambda: items)
            record.append(f"{n} got {items.pop()}")

    async with anyio.create_task_group() as tg:
        async with anyio.create_task_group() as doomed:
            doomed.start_soon(consumer, 0)
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(consumer, 1)
            await anyio.wait_all_tasks_blocked()
            doomed.cancel_scope.cancel()
        record.append(condition.statistics().tasks_waiting)
        async with condition:
            items.append(7)
            condition.notify()
    return record


@pytest.mark.parametrize("play", SCENARIOS, ids=[s.__name__ for s in SCENARIOS])
async def test_cc_behaves_as_anyio(play: Scenario) -> None:
    expected = await play(ANYIO)
    assert expected, "a scenario must observe something"
    assert await play(CC) == expected


# -- the documented differences, and only these --------------------------------


async def test_difference_cc_lock_is_reentrant() -> None:
    anyio_lock, cc_lock = anyio.Lock(), cc.primitives.Lock()
    async with anyio_lock:
        with pytest.raises(RuntimeError, match="already held"):
            await anyio_lock.acquire()
    async with cc_lock, cc_lock:
        assert cc_lock.statistics().depth == 2


def test_difference_capacity_limiter_needs_a_token() -> None:
    assert anyio.CapacityLimiter(0).total_tokens == 0
    with pytest.raises(ValueError, match="total_tokens must be >= 1"):
        cc.primitives.CapacityLimiter(0)


# -- notify in the reference's style (cc only: anyio's cannot be awaited) --------


async def test_notify_awaited_as_the_reference_writes_it() -> None:
    condition = cc.primitives.Condition()
    woke: list[int] = []
    async with anyio.create_task_group() as tg:
        await start_waiters(tg, condition, 3, woke)
        async with condition:
            await condition.notify()
        await anyio.wait_all_tasks_blocked()
        assert woke == [0]
        async with condition:
            await condition.notify_all()
    assert sorted(woke) == [0, 1, 2]


def test_a_dropped_notify_result_warns_nothing() -> None:
    """filterwarnings=error turns a "never awaited" warning into a failure."""

    async def main() -> None:
        condition = cc.primitives.Condition()
        async with condition:
            result = condition.notify()
            condition.notify_all()
        del result

    anyio.run(main)
    gc.collect()
