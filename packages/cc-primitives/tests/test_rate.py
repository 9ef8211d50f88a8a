from __future__ import annotations

import math

import anyio
import pytest

from cc.primitives import RateLimiter

pytestmark = pytest.mark.anyio


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


async def test_burst_up_to_rate_then_waits() -> None:
    limiter = RateLimiter(5, period=0.2)
    start = anyio.current_time()
    for _ in range(5):
        await limiter.acquire()
    assert anyio.current_time() - start < 0.1  # the burst did not wait
    assert not limiter.has_capacity()
    assert not limiter.try_acquire()
    await limiter.acquire()
    # the sixth had to wait for one emission interval (0.04 s)
    assert anyio.current_time() - start >= 0.04 * 0.9
    assert limiter.statistics().total_acquired == 6


async def test_rate_is_bounded_over_time() -> None:
    rate, period = 10, 0.1
    limiter = RateLimiter(rate, period=period)
    stamps: list[float] = []

    async def worker() -> None:
        for _ in range(5):
            async with limiter:
                stamps.append(anyio.current_time())

    async with anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(worker)
    assert len(stamps) == 30
    # After the initial burst of `rate`, acquisitions are spaced by at least
    # period/rate on average: 30 acquisitions need >= (30 - rate) intervals.
    elapsed = stamps[-1] - stamps[0]
    assert elapsed >= (30 - rate) * (period / rate) * 0.9
    # and no window of one period ever holds more than 2 * rate
    for i, t in enumerate(stamps):
        in_window = sum(1 for u in stamps[i:] if u - t < period)
        assert in_window <= 2 * rate


async def test_fractional_amounts_and_statistics() -> None:
    limiter = RateLimiter(2.0, period=1.0)
    await limiter.acquire(1.5)
    stats = limiter.statistics()
    assert stats.rate == 2.0
    assert stats.period == 1.0
    assert 0.45 <= stats.available <= 0.6
    assert stats.tasks_waiting == 0
    assert limiter.has_capacity(0.5)
    assert limiter.try_acquire(0.5)
    assert not limiter.has_capacity(0.5)


async def test_waiters_are_fifo() -> None:
    limiter = RateLimiter(1, period=0.02)
    await limiter.acquire()
    order: list[int] = []

    async def worker(n: int) -> None:
        await limiter.acquire()
        order.append(n)

    async with anyio.create_task_group() as tg:
        for n in range(5):
            tg.start_soon(worker, n)
            await anyio.sleep(0.001)
        assert limiter.statistics().tasks_waiting >= 4
        # a newcomer cannot jump the queue, even with try_acquire
        assert not limiter.try_acquire()
    assert order == [0, 1, 2, 3, 4]


async def test_cancelled_waiter_consumes_nothing_and_unblocks_the_queue() -> None:
    limiter = RateLimiter(1, period=0.05)
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
        await anyio.sleep(0.005)
        tg.start_soon(second)
        await anyio.sleep(0.005)
        assert limiter.statistics().tasks_waiting == 2
        scopes[0].cancel()  # the head leaves; the second becomes the head
    assert done == ["second"]
    assert limiter.statistics().total_acquired == total_before + 1
    assert limiter.statistics().tasks_waiting == 0


def test_repr() -> None:
    assert repr(RateLimiter(10, period=2)) == "<RateLimiter rate=10/2s waiting=0>"
    limiter = RateLimiter(10)
    assert limiter.rate == 10
    assert limiter.period == 1.0
