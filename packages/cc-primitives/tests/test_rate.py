"""RateLimiter: validation, the exact sliding window, first-in first-out waiters.

Every async test runs on asyncio and trio with a virtual clock (the
``virtual_time_backend`` fixture of the root conftest): the clock stands
still while a task runs and jumps to the next timer when all wait, so each
bound below is checked exactly, however loaded the machine is.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from cc.primitives import RateLimiter

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend(virtual_time_backend: Any) -> Any:
    return virtual_time_backend


async def until(predicate: Callable[[], bool]) -> None:
    """Let other tasks run until ``predicate()`` holds (no time passes)."""
    while not predicate():
        await anyio.lowlevel.checkpoint()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate": 0}, "rate must be a positive finite number"),
        ({"rate": -1}, "rate must be a positive finite number"),
        ({"rate": math.inf}, "rate must be a positive finite number"),
        ({"rate": math.nan}, "rate must be a positive finite number"),
        ({"rate": 1, "period": 0}, "period must be a positive finite number"),
        ({"rate": 1, "period": -2.0}, "period must be a positive finite number"),
    ],
)
def test_invalid_rate_or_period(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RateLimiter(**kwargs)


@pytest.mark.parametrize("huge", [10**400, -(10**400)])
@pytest.mark.parametrize("argument", ["rate", "period"])
def test_an_int_too_large_for_a_float_is_a_value_error_naming_it(
    argument: str, huge: int
) -> None:
    kwargs = {"rate": 5, "period": 1.0, argument: huge}
    with pytest.raises(ValueError, match=f"^{argument} must be a positive finite"):
        RateLimiter(**kwargs)


async def test_an_amount_too_large_for_a_float_is_refused_and_the_limiter_works() -> (
    None
):
    limiter = RateLimiter(3)
    with pytest.raises(ValueError, match=r"^amount must be .* int of about 401 digits"):
        await limiter.acquire(10**400)
    with pytest.raises(ValueError, match=r"^amount must be"):
        limiter.try_acquire(10**400)
    with pytest.raises(ValueError, match=r"^amount must be"):
        limiter.has_capacity(-(10**400))
    await limiter.acquire(3)
    assert limiter.statistics().total_acquired == 3


def test_wrong_types() -> None:
    with pytest.raises(TypeError, match="rate must be a number"):
        RateLimiter("5")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="period must be a number"):
        RateLimiter(5, period=None)  # type: ignore[arg-type]


async def test_invalid_amounts() -> None:
    limiter = RateLimiter(3)
    for bad in (0, -1, math.nan):
        with pytest.raises(ValueError, match="amount must be"):
            await limiter.acquire(bad)
    with pytest.raises(ValueError, match=r"must not exceed the rate \(3\)"):
        await limiter.acquire(4)
    with pytest.raises(ValueError, match="must not exceed"):
        limiter.has_capacity(5)
    with pytest.raises(ValueError, match="must not exceed"):
        limiter.try_acquire(5)


async def test_burst_up_to_rate_then_waits_for_the_window() -> None:
    limiter = RateLimiter(5, period=0.2)
    start = anyio.current_time()
    for _ in range(5):
        await limiter.acquire()
    assert anyio.current_time() == start  # the burst did not wait at all
    assert not limiter.has_capacity()
    assert not limiter.try_acquire()
    await limiter.acquire()
    # the sixth waited exactly until the first left the window
    assert anyio.current_time() - start == pytest.approx(0.2)
    assert limiter.statistics().total_acquired == 6


async def test_never_more_than_rate_in_any_window() -> None:
    rate, period = 10, 0.1
    limiter = RateLimiter(rate, period=period)
    stamps: list[float] = []

    async def worker() -> None:
        for _ in range(5):
            async with limiter:
                stamps.append(anyio.current_time())

    began = anyio.current_time()
    async with anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(worker)
    assert len(stamps) == 30
    observed = sorted(stamps)
    # No window of `period` holds more than `rate`: any rate+1 acquisitions
    # in a row span a full period (exactly, on the virtual clock)...
    for first, last in zip(observed, observed[rate:], strict=False):
        assert last - first >= period - 1e-9, observed
    # ...and the limiter wastes none: the k-th batch of `rate` goes through
    # exactly k periods after the start.
    for k in range(3):
        assert observed[k * rate : (k + 1) * rate] == pytest.approx(
            [began + k * period] * rate
        )
    assert limiter.statistics().total_acquired == 30


async def test_window_slides_rather_than_resetting() -> None:
    limiter = RateLimiter(2, period=0.2)
    assert limiter.try_acquire()
    await anyio.sleep(0.1)
    assert limiter.try_acquire()
    assert not limiter.try_acquire()
    # At 0.2 s the first acquisition leaves the window; the second stays
    # until 0.3 s, so exactly one more fits in between.
    await anyio.sleep(0.12)
    assert limiter.try_acquire()
    assert not limiter.try_acquire()


async def test_fractional_amounts_and_statistics() -> None:
    limiter = RateLimiter(2.0, period=1.0)
    await limiter.acquire(1.5)
    stats = limiter.statistics()
    assert stats.rate == 2.0
    assert stats.period == 1.0
    assert stats.available == pytest.approx(0.5)
    assert stats.tasks_waiting == 0
    assert limiter.has_capacity(0.5)
    assert limiter.try_acquire(0.5)
    assert not limiter.has_capacity(0.5)
    assert limiter.statistics().available == pytest.approx(0.0)


async def test_amount_waits_for_enough_old_acquisitions_to_expire() -> None:
    limiter = RateLimiter(3, period=0.1)
    await limiter.acquire()
    await anyio.sleep(0.03)
    await limiter.acquire(2)
    start = anyio.current_time()
    await limiter.acquire(2)  # needs both the 1 (made at 0) and the 2 (at 0.03)
    waited = anyio.current_time() - start
    assert waited == pytest.approx(0.1)  # until the 2 leaves, 0.1 after it was made


async def test_waiters_are_fifo() -> None:
    # the window stays full while the waiters queue up (no time passes),
    # then frees all at once: the queue alone decides the order
    limiter = RateLimiter(5, period=60)
    await limiter.acquire(5)
    order: list[int] = []

    async def worker(n: int) -> None:
        await limiter.acquire()
        order.append(n)

    async with anyio.create_task_group() as tg:
        for n in range(5):
            tg.start_soon(worker, n)
            await until(lambda n=n: limiter.statistics().tasks_waiting == n + 1)
        assert anyio.current_time() < 60
        # a newcomer cannot jump the queue, even with try_acquire
        assert not limiter.try_acquire()
    assert order == [0, 1, 2, 3, 4]


async def test_cancelled_waiter_consumes_nothing_and_unblocks_the_queue() -> None:
    limiter = RateLimiter(1, period=60)
    await limiter.acquire()
    total_before = limiter.statistics().total_acquired
    done: list[str] = []
    scopes: list[anyio.CancelScope] = []

    async def cancellable_head() -> None:
        with anyio.CancelScope() as scope:
            scopes.append(scope)
            await limiter.acquire()
            done.append("cancelled-head")

    async def second() -> None:
        await limiter.acquire()
        done.append("second")

    async with anyio.create_task_group() as tg:
        tg.start_soon(cancellable_head)
        await until(lambda: limiter.statistics().tasks_waiting == 1)
        tg.start_soon(second)
        await until(lambda: limiter.statistics().tasks_waiting == 2)
        assert anyio.current_time() < 60  # the window is still full
        scopes[0].cancel()  # the head leaves; the second becomes the head
    assert done == ["second"]
    assert limiter.statistics().total_acquired == total_before + 1
    assert limiter.statistics().tasks_waiting == 0


def test_repr() -> None:
    assert repr(RateLimiter(10, period=2)) == "<RateLimiter rate=10/2s waiting=0>"
    limiter = RateLimiter(10)
    assert limiter.rate == 10
    assert limiter.period == 1.0
