"""#18: no loop of primitive operations starves the event loop or outlives its deadline.

For every public async operation, the loop of the issue::

    while not ran:        # set by another task
        async with lock:  # never has to wait
            ...

must let the other task run, and the same loop under a deadline must end,
each within two checkpoints (``2 * CHECKPOINT_INTERVAL`` calls) with cc's
default rule and at once with ``fast_acquire=False``; ``fast_acquire=True``
never yields. Each loop is capped so that a broken rule fails instead of
hanging.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import pytest

from cc.primitives import (
    CapacityLimiter,
    Condition,
    Event,
    Lock,
    RateLimiter,
    Semaphore,
)
from cc.primitives.lowlevel import CHECKPOINT_INTERVAL

pytestmark = pytest.mark.anyio

Operation = Callable[[], Awaitable[object]]
BOUND = 2 * CHECKPOINT_INTERVAL  # calls: two checkpoints
CAP = 50 * CHECKPOINT_INTERVAL  # a loop this long means the rule is broken


def _lock_async_with(fast_acquire: bool | None) -> Operation:
    lock = Lock(fast_acquire=fast_acquire)

    async def operation() -> None:
        async with lock:
            pass

    return operation


def _lock_acquire(fast_acquire: bool | None) -> Operation:
    lock = Lock(fast_acquire=fast_acquire)

    async def operation() -> None:
        await lock.acquire()
        lock.release()

    return operation


def _lock_reentry(fast_acquire: bool | None) -> Operation:
    lock = Lock(fast_acquire=fast_acquire)
    lock.acquire_nowait()  # the test's task, which runs the loops, holds it

    async def operation() -> None:
        async with lock:  # a re-entry: never waits
            pass

    return operation


def _semaphore_async_with(fast_acquire: bool | None) -> Operation:
    semaphore = Semaphore(1, fast_acquire=fast_acquire)

    async def operation() -> None:
        async with semaphore:
            pass

    return operation


def _semaphore_acquire(fast_acquire: bool | None) -> Operation:
    semaphore = Semaphore(1, fast_acquire=fast_acquire)

    async def operation() -> None:
        await semaphore.acquire()
        semaphore.release()

    return operation


def _limiter_async_with(fast_acquire: bool | None) -> Operation:
    limiter = CapacityLimiter(1, fast_acquire=fast_acquire)

    async def operation() -> None:
        async with limiter:
            pass

    return operation


def _limiter_acquire(fast_acquire: bool | None) -> Operation:
    limiter = CapacityLimiter(1, fast_acquire=fast_acquire)

    async def operation() -> None:
        await limiter.acquire()
        limiter.release()

    return operation


def _limiter_on_behalf_of(fast_acquire: bool | None) -> Operation:
    limiter = CapacityLimiter(1, fast_acquire=fast_acquire)

    async def operation() -> None:
        await limiter.acquire_on_behalf_of("job")
        limiter.release_on_behalf_of("job")

    return operation


def _rate_async_with(fast_acquire: bool | None) -> Operation:
    limiter = RateLimiter(1e12, fast_acquire=fast_acquire)

    async def operation() -> None:
        async with limiter:
            pass

    return operation


def _rate_acquire(fast_acquire: bool | None) -> Operation:
    limiter = RateLimiter(1e12, fast_acquire=fast_acquire)
    return limiter.acquire


def _condition_async_with(fast_acquire: bool | None) -> Operation:
    condition = Condition(Lock(fast_acquire=fast_acquire))

    async def operation() -> None:
        async with condition:
            pass

    return operation


def _condition_acquire(fast_acquire: bool | None) -> Operation:
    condition = Condition(Lock(fast_acquire=fast_acquire))

    async def operation() -> None:
        await condition.acquire()
        condition.release()

    return operation


def _condition_wait_for_true(fast_acquire: bool | None) -> Operation:
    condition = Condition(Lock(fast_acquire=fast_acquire))

    async def operation() -> None:
        async with condition:
            await condition.wait_for(lambda: True)

    return operation


def _condition_awaited_notify(fast_acquire: bool | None) -> Operation:
    # notify() follows cc's rule (it takes no fast_acquire); the lock, with
    # fast_acquire=True, adds no checkpoint of its own
    condition = Condition(Lock(fast_acquire=True))

    async def operation() -> None:
        condition.acquire_nowait()
        try:
            await condition.notify()
        finally:
            condition.release()

    return operation


def _condition_awaited_notify_all(fast_acquire: bool | None) -> Operation:
    condition = Condition(Lock(fast_acquire=True))

    async def operation() -> None:
        condition.acquire_nowait()
        try:
            await condition.notify_all()
        finally:
            condition.release()

    return operation


def _event_wait_when_set(fast_acquire: bool | None) -> Operation:
    event = Event()
    event.set()
    return event.wait


# Operations whose class takes fast_acquire, then those that follow cc's
# default rule only.
WITH_FAST_ACQUIRE = [
    _lock_async_with,
    _lock_acquire,
    _lock_reentry,
    _semaphore_async_with,
    _semaphore_acquire,
    _limiter_async_with,
    _limiter_acquire,
    _limiter_on_behalf_of,
    _rate_async_with,
    _rate_acquire,
    _condition_async_with,
    _condition_acquire,
    _condition_wait_for_true,
]
DEFAULT_RULE_ONLY = [
    _condition_awaited_notify,
    _condition_awaited_notify_all,
    _event_wait_when_set,
]


def _ids(factories: list[Callable[[bool | None], Operation]]) -> list[str]:
    return [f.__name__.lstrip("_") for f in factories]


async def _calls_until_another_task_ran(operation: Operation) -> int:
    ran = False

    async def other() -> None:
        nonlocal ran
        ran = True

    calls = 0
    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
        while not ran and calls < CAP:
            await operation()
            calls += 1
    return calls


async def _calls_after_the_deadline(operation: Operation) -> int:
    """Loop under a 10 ms deadline; count the calls made once it has struck.

    The deadline strikes when the event loop processes it (asyncio runs a
    timer, a little late on a loaded machine or uvloop's millisecond clock;
    trio checks at a checkpoint), which is when the scope reads as
    cancelled; from then on only the rule decides. A loop that never ends
    (the rule broken: the event loop never gets to process the deadline)
    fails at the cap.
    """
    late = calls = 0
    with anyio.move_on_after(0.01) as scope:
        while calls < 100 * CAP:
            await operation()
            calls += 1
            if scope.cancel_called:
                late += 1
    assert scope.cancelled_caught, f"still running after {calls} calls"
    return late


@pytest.mark.parametrize(
    "factory", WITH_FAST_ACQUIRE + DEFAULT_RULE_ONLY,
    ids=_ids(WITH_FAST_ACQUIRE + DEFAULT_RULE_ONLY),
)  # fmt: skip
async def test_cc_rule_lets_others_run_and_ends_at_the_deadline(
    factory: Callable[[bool | None], Operation],
) -> None:
    assert await _calls_until_another_task_ran(factory(None)) <= BOUND
    assert await _calls_after_the_deadline(factory(None)) <= BOUND


@pytest.mark.parametrize("factory", WITH_FAST_ACQUIRE, ids=_ids(WITH_FAST_ACQUIRE))
async def test_fast_acquire_false_checkpoints_on_every_call(
    factory: Callable[[bool | None], Operation],
) -> None:
    # the other task runs at the first checkpoint, or the second on trio
    # (which may run the looping task first among those ready)
    assert await _calls_until_another_task_ran(factory(False)) <= 2
    assert await _calls_after_the_deadline(factory(False)) <= 2


@pytest.mark.parametrize("factory", WITH_FAST_ACQUIRE, ids=_ids(WITH_FAST_ACQUIRE))
async def test_fast_acquire_true_never_yields(
    factory: Callable[[bool | None], Operation],
) -> None:
    operation = factory(True)
    ran = False

    async def other() -> None:
        nonlocal ran
        ran = True

    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
        for _ in range(4 * CHECKPOINT_INTERVAL):
            await operation()
            assert not ran
    assert ran


async def test_condition_wait_is_always_a_checkpoint() -> None:
    condition = Condition()
    async with condition:
        with anyio.CancelScope() as scope:
            scope.cancel()
            await condition.wait()
        assert scope.cancelled_caught
        assert condition.lock.owned_by_current_task()  # kept through the cancel
