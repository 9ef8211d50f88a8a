"""RedisRateLimiter and RedisCapacityLimiter against a real redis-server.

Two limiter objects on the same key have two connections and two sessions,
as two processes would; test_redis_limits_processes.py uses real processes.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import anyio
import pytest

from cc.locks import LockBackendError
from cc.primitives import ConcurrencyError, RateLimiterStatistics
from cc.redis import (
    RedisCapacityLimiter,
    RedisCapacityLimiterStatistics,
    RedisLockBackend,
    RedisRateLimiter,
)

pytestmark = pytest.mark.anyio

HANG_GUARD = 10.0


def rate(server: Any, namespace: str, n: int, period: float, key: str = "api") -> Any:
    return RedisRateLimiter(n, period, key=key, url=server.url, namespace=namespace)


def pool(server: Any, namespace: str, total: int, **options: Any) -> Any:
    options.setdefault("lease", 2.0)
    return RedisCapacityLimiter(
        total, key="pool", url=server.url, namespace=namespace, **options
    )


async def wait_until(predicate: Any) -> None:
    """Check ``predicate`` (async) until true; the deadline is only a hang guard.

    What it checks lives on the server (another connection's waiters), so no
    event of this process can tell.
    """
    with anyio.fail_after(HANG_GUARD):
        while not await predicate():  # noqa: ASYNC110
            await anyio.sleep(0.01)


# -- rate ------------------------------------------------------------------------


async def test_a_burst_of_rate_then_one_period_later(
    redis_server: Any, namespace: str
) -> None:
    async with rate(redis_server, namespace, 3, 0.4).connect() as limiter:
        started = time.monotonic()
        for _ in range(3):
            await limiter.acquire()
        assert time.monotonic() - started < 0.4
        assert not await limiter.has_capacity()
        async with limiter:
            waited = time.monotonic() - started
        assert waited >= 0.39  # the server said when; never early
        stats = await limiter.statistics()
        assert isinstance(stats, RateLimiterStatistics)
        assert (stats.rate, stats.period, stats.total_acquired) == (3, 0.4, 4)
        assert stats.reserved == 0 and stats.tasks_waiting == 0


async def test_limiters_on_one_key_share_the_window(
    redis_server: Any, namespace: str
) -> None:
    async with (
        rate(redis_server, namespace, 4, 5.0).connect() as first,
        rate(redis_server, namespace, 4, 5.0).connect() as second,
        rate(redis_server, namespace, 4, 5.0, key="other").connect() as other,
    ):
        assert await first.try_acquire(2)
        assert await second.try_acquire()
        assert not await second.try_acquire(2)
        await first.acquire_nowait()
        with pytest.raises(anyio.WouldBlock):
            await second.acquire_nowait()
        assert (await first.statistics()).available == 0
        assert await other.try_acquire(4)  # another key, another window


async def test_grants_come_first_come_first_served(
    redis_server: Any, namespace: str
) -> None:
    limiters = [rate(redis_server, namespace, 1, 0.5) for _ in range(3)]
    order: list[int] = []

    async def take(index: int) -> None:
        await limiters[index].acquire()
        order.append(index)

    async with (
        limiters[0].connect(),
        limiters[1].connect(),
        limiters[2].connect(),
        anyio.create_task_group() as group,
    ):
        await limiters[0].acquire()  # the window is full for 0.5 s
        for count, index in enumerate((2, 0, 1), start=1):
            group.start_soon(take, index)
            # each has its time before the next one asks
            await wait_until(lambda count=count: _reserved(limiters[0], count))
    assert order == [2, 0, 1]


async def _reserved(limiter: Any, count: int) -> bool:
    return bool((await limiter.statistics()).reserved >= count)


async def _waiting(limiter: Any, count: int) -> bool:
    return bool((await limiter.statistics()).tasks_waiting == count)


async def test_a_cancelled_acquisition_consumes_nothing(
    redis_server: Any, namespace: str
) -> None:
    async with (
        rate(redis_server, namespace, 2, 1.0).connect() as limiter,
        rate(redis_server, namespace, 2, 1.0).connect() as other,
    ):
        await limiter.acquire(2)  # two units at one server time
        with anyio.move_on_after(HANG_GUARD) as scope:
            async with anyio.create_task_group() as group:
                group.start_soon(limiter.acquire)
                await wait_until(lambda: _reserved(other, 1))
                # The server holds the reservation before its reply reaches
                # the waiter, which counts itself then: wait for that too.
                await wait_until(lambda: _waiting(limiter, 1))
                group.cancel_scope.cancel()
        assert not scope.cancelled_caught
        stats = await other.statistics()
        assert stats.reserved == 0 and stats.available == 0
        assert (await limiter.statistics()).tasks_waiting == 0
        # Granted when the first two leave the window; the unit the
        # cancelled waiter had reserved for that moment is free too.
        await other.acquire()
        assert await other.try_acquire()
        assert (await limiter.statistics()).total_acquired == 2


async def test_a_timed_out_waiter_leaves_its_place_to_the_next(
    redis_server: Any, namespace: str
) -> None:
    async with rate(redis_server, namespace, 1, 1.0).connect() as limiter:
        await limiter.acquire()
        with pytest.raises(TimeoutError):
            with anyio.fail_after(0.05):
                await limiter.acquire()
        started = time.monotonic()
        await limiter.acquire()  # at the first grant's expiry, not after 2 s
        assert time.monotonic() - started < 1.5
        assert (await limiter.statistics()).total_acquired == 2


async def test_rate_limiter_amounts_and_use_outside_connect(
    redis_server: Any, namespace: str
) -> None:
    limiter = rate(redis_server, namespace, 3, 1.0)
    with pytest.raises(RuntimeError, match=r"limiter\.connect\(\)"):
        await limiter.acquire()
    with pytest.raises(ValueError, match="amount must be from 1 to 3"):
        await limiter.acquire(4)
    with pytest.raises(TypeError, match="amount must be a whole number"):
        await limiter.acquire(1.5)  # type: ignore[arg-type]
    async with limiter.connect() as connected:
        assert connected is limiter
        assert "connected" in repr(limiter) and "not connected" not in repr(limiter)
        with pytest.raises(RuntimeError, match="connected already"):
            async with limiter.connect():
                pass  # pragma: no cover
        assert await limiter.try_acquire(3)
        assert not await limiter.has_capacity(1)
    assert "not connected" in repr(limiter)
    assert (limiter.rate, limiter.period, limiter.key) == (3, 1.0, "api")


async def test_rate_limiter_through_a_backend_and_its_client(
    redis_server: Any, namespace: str, anyio_backend: Any
) -> None:
    import redis
    import redis.asyncio

    on_asyncio = anyio_backend[0] == "asyncio"
    client: Any = (redis.asyncio.Redis if on_asyncio else redis.Redis).from_url(
        redis_server.url
    )
    backend = RedisLockBackend(client, namespace=namespace)
    try:
        limiter = RedisRateLimiter(2, 1.0, key="api", backend=backend)
        assert limiter.backend is backend
        assert "a client of yours" in repr(limiter)
        async with limiter.connect():
            assert await limiter.try_acquire(2)
        async with limiter.connect():  # the client is still open: it is yours
            assert not await limiter.try_acquire()
    finally:
        if on_asyncio:
            await client.aclose()
        else:
            client.close()


async def test_a_restart_of_the_server_is_an_error_then_grants_nothing_too_early(
    own_redis_server: Any, namespace: str
) -> None:
    period = 0.6
    async with (
        rate(own_redis_server, namespace, 2, period).connect() as limiter,
        rate(own_redis_server, namespace, 2, period).connect() as other,
    ):
        await limiter.acquire(2)
        assert not await other.has_capacity()  # it has seen the log too
        own_redis_server.stop()
        with pytest.raises(LockBackendError) as caught:
            await other.acquire()
        assert isinstance(caught.value, ConnectionError)
        assert isinstance(caught.value, ConcurrencyError)
        assert "Redis at redis://127.0.0.1" in str(caught.value)
        own_redis_server.start()  # empty: the log of the 2 grants is gone
        restarted = time.monotonic()
        # Both clients used the log before: the first to come back makes the
        # server hold every grant for one period, as if the log were full.
        assert not await other.try_acquire()
        assert not await limiter.has_capacity()
        await limiter.acquire()
        assert time.monotonic() - restarted >= period - 0.05


async def test_a_waiter_whose_grant_the_server_forgot_queues_again(
    own_redis_server: Any, namespace: str
) -> None:
    period = 0.5
    async with rate(own_redis_server, namespace, 1, period).connect() as limiter:
        await limiter.acquire()
        done = anyio.Event()

        async def wait() -> None:
            await limiter.acquire()
            done.set()

        async with anyio.create_task_group() as group:
            group.start_soon(wait)
            await wait_until(lambda: _reserved(limiter, 1))
            own_redis_server.restart()
            restarted = time.monotonic()
            with anyio.fail_after(HANG_GUARD):
                await done.wait()
        # It woke at its old time, found the grant forgotten, queued again
        # behind the restart's quiet period.
        assert time.monotonic() - restarted >= period - 0.05
        assert (await limiter.statistics()).total_acquired == 2


# -- capacity --------------------------------------------------------------------


async def test_tokens_are_shared_and_statistics_name_the_holders(
    redis_server: Any, namespace: str
) -> None:
    async with (
        pool(redis_server, namespace, 2).connect() as first,
        pool(redis_server, namespace, 2).connect() as second,
    ):
        await first.acquire()
        await first.acquire_on_behalf_of("job-7")
        with pytest.raises(anyio.WouldBlock):
            await second.acquire_nowait()
        stats = await second.statistics()
        assert isinstance(stats, RedisCapacityLimiterStatistics)
        assert (stats.borrowed_tokens, stats.total_tokens) == (2, 2)
        assert stats.available_tokens == 0 and stats.tasks_waiting == 0
        assert stats.borrowers == ()
        names = sorted(holder.holder for holder in stats.holders)
        assert names[0] == "borrower 'job-7'" and names[1].startswith("task ")
        for holder in stats.holders:
            assert holder.pid == os.getpid() and holder.host == socket.gethostname()
            assert holder.fencing_token and 0 < holder.expires_in <= 2.0
            assert abs(holder.since - time.time()) < 5
        assert len((await first.statistics()).borrowers) == 2
        first.release_on_behalf_of("job-7")  # given back in the background
        with anyio.fail_after(HANG_GUARD):
            await second.acquire()  # woken by the release
        await first.release_and_wait()
        await second.release_and_wait()
        assert (await first.statistics()).borrowed_tokens == 0


async def test_waiters_across_limiters_are_served_in_order(
    redis_server: Any, namespace: str
) -> None:
    limiters = [pool(redis_server, namespace, 1) for _ in range(4)]
    order: list[int] = []

    async def borrow(index: int) -> None:
        async with limiters[index]:
            order.append(index)

    async with (
        limiters[0].connect(), limiters[1].connect(), limiters[2].connect(),
        limiters[3].connect(),
    ):  # fmt: skip
        await limiters[0].acquire()
        async with anyio.create_task_group() as group:
            for count, index in enumerate((3, 1, 2), start=1):
                group.start_soon(borrow, index)
                await wait_until(lambda count=count: _waiting(limiters[0], count))
            await limiters[0].release_and_wait()
    assert order == [3, 1, 2]


async def _waiting(limiter: Any, count: int) -> bool:
    return bool((await limiter.statistics()).tasks_waiting == count)


async def test_a_cancelled_waiter_leaves_the_queue_holding_nothing(
    redis_server: Any, namespace: str
) -> None:
    async with (
        pool(redis_server, namespace, 1).connect() as first,
        pool(redis_server, namespace, 1).connect() as second,
    ):
        await first.acquire()
        async with anyio.create_task_group() as group:
            group.start_soon(second.acquire_on_behalf_of, "w")
            await wait_until(lambda: _waiting(first, 1))
            group.cancel_scope.cancel()
        stats = await first.statistics()
        assert stats.tasks_waiting == 0 and stats.borrowed_tokens == 1
        assert (await second.statistics()).borrowers == ()
        await first.release_and_wait()
        await second.acquire_on_behalf_of_nowait("w")  # free, nobody queued
        second.release_on_behalf_of("w")


async def test_more_tokens_wake_waiters_and_fewer_revoke_nothing(
    redis_server: Any, namespace: str
) -> None:
    async with (
        pool(redis_server, namespace, 1).connect() as first,
        pool(redis_server, namespace, 1).connect() as second,
    ):
        await first.acquire_on_behalf_of("a")
        async with anyio.create_task_group() as group:
            for name in ("b", "c"):
                group.start_soon(second.acquire_on_behalf_of, name)
            await wait_until(lambda: _waiting(first, 2))
            first.total_tokens = 3  # stored in the background; both wake
        assert second.total_tokens == 1  # what it last saw
        stats = await second.statistics()
        assert stats.borrowed_tokens == 3 and second.total_tokens == 3
        await second.set_total_tokens(1)  # nobody loses a token
        assert (await first.statistics()).borrowed_tokens == 3
        with pytest.raises(anyio.WouldBlock):
            await first.acquire_on_behalf_of_nowait("d")
        await second.release_and_wait("b")
        await second.release_and_wait("c")
        with pytest.raises(anyio.WouldBlock):
            await first.acquire_on_behalf_of_nowait("d")  # 1 held of 1
        await first.release_and_wait("a")
        await first.acquire_on_behalf_of_nowait("d")
        assert first.total_tokens == 1


async def test_borrower_mistakes_are_errors(redis_server: Any, namespace: str) -> None:
    limiter = pool(redis_server, namespace, 2)
    with pytest.raises(RuntimeError, match=r"limiter\.connect\(\)"):
        await limiter.acquire()
    async with limiter.connect():
        await limiter.acquire()
        with pytest.raises(RuntimeError, match="already holding"):
            await limiter.acquire()
        with pytest.raises(TypeError, match="borrower must be hashable"):
            await limiter.acquire_on_behalf_of([])
        with pytest.raises(TypeError, match="borrower must be hashable"):
            limiter.release_on_behalf_of([])
        with pytest.raises(RuntimeError, match="isn't holding"):
            limiter.release_on_behalf_of("nobody")
        limiter.release()
        with pytest.raises(RuntimeError, match="isn't holding"):
            await limiter.release_and_wait()


async def test_closing_gives_back_what_is_still_held(
    redis_server: Any, namespace: str
) -> None:
    async with pool(redis_server, namespace, 1).connect() as watcher:
        async with pool(redis_server, namespace, 1).connect() as holder:
            await holder.acquire_on_behalf_of("forgotten")
        with anyio.fail_after(HANG_GUARD):
            await watcher.acquire()  # not after a lease: at once
        await watcher.release_and_wait()


async def test_a_holder_that_stops_renewing_loses_its_token_within_a_lease(
    redis_server: Any, namespace: str
) -> None:
    import redis

    async with pool(redis_server, namespace, 1, lease=0.5).connect() as limiter:
        # A holder that died: its token is in the pool, nobody renews it.
        client = redis.Redis.from_url(redis_server.url)
        base = f"{namespace}:capacity:{{pool}}"
        seconds, micros = client.time()
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        client.zadd(base, {"dead:1": now_ms + 400})
        client.close()
        with pytest.raises(anyio.WouldBlock):
            await limiter.acquire_nowait()
        started = time.monotonic()
        with anyio.fail_after(HANG_GUARD):
            await limiter.acquire()  # woken when its lease would end
        assert time.monotonic() - started < 1.5


async def test_a_restart_loses_no_holder_and_over_grants_nothing(
    own_redis_server: Any, namespace: str
) -> None:
    async with (
        pool(own_redis_server, namespace, 1, lease=1.0).connect() as holder,
        pool(own_redis_server, namespace, 1, lease=1.0).connect() as other,
    ):
        await holder.acquire()
        own_redis_server.stop()
        with pytest.raises(LockBackendError):
            await other.acquire()
        own_redis_server.start()  # empty: the holder's token is forgotten
        # The server grants nothing new for one lease; the holder's renewal
        # takes its token back meanwhile, so the pool stays full.
        with pytest.raises(anyio.WouldBlock):
            await other.acquire_nowait()
        await wait_until(lambda: _borrowed(other, 1))
        await anyio.sleep(1.0)  # past the quiet time
        with pytest.raises(anyio.WouldBlock):
            await other.acquire_nowait()
        await holder.release_and_wait()
        await other.acquire_nowait()


async def _borrowed(limiter: Any, count: int) -> bool:
    return bool((await limiter.statistics()).borrowed_tokens == count)


async def test_a_cancelled_waiter_for_several_units_takes_them_all_back(
    redis_server: Any, namespace: str
) -> None:
    async with rate(redis_server, namespace, 3, 5.0).connect() as limiter:
        await limiter.acquire(3)
        async with anyio.create_task_group() as group:
            group.start_soon(limiter.acquire, 2)
            await wait_until(lambda: _reserved(limiter, 2))
            group.cancel_scope.cancel()
        stats = await limiter.statistics()
        assert stats.reserved == 0 and stats.total_acquired == 3


async def test_holders_are_named_and_fencing_tokens_keep_growing(
    redis_server: Any, namespace: str
) -> None:
    import threading

    import redis

    async with pool(redis_server, namespace, 3).connect() as limiter:
        await limiter.acquire_on_behalf_of(threading.current_thread())
        await limiter.acquire_on_behalf_of(42)
        names = sorted(h.holder for h in (await limiter.statistics()).holders)
        assert names == ["borrower 42", f"thread {threading.current_thread().name!r}"]
        fences = sorted(h.fencing_token for h in (await limiter.statistics()).holders)
        # A counter ahead of the clock (after the clock went back) still grows.
        client = redis.Redis.from_url(redis_server.url)
        client.hset(f"{namespace}:capacity:{{pool}}:meta", "fence", 5 * 10**15)
        client.close()
        await limiter.acquire()
        stats = await limiter.statistics()
        newest = max(h.fencing_token for h in stats.holders)
        assert newest == 5 * 10**15 + 1 > fences[-1]
        assert all(abs(h.since - time.time()) < 5 for h in stats.holders)


async def test_giving_back_a_token_the_server_no_longer_has_says_so(
    redis_server: Any, namespace: str
) -> None:
    import redis

    from cc.locks import LockLostError

    async with pool(redis_server, namespace, 1).connect() as limiter:
        await limiter.acquire()
        client = redis.Redis.from_url(redis_server.url)
        client.delete(f"{namespace}:capacity:{{pool}}")  # as if it had expired
        client.close()
        with pytest.raises(LockLostError, match="lost a token of the shared") as caught:
            await limiter.release_and_wait()
        assert caught.value.lock_names == ("pool",)
        assert isinstance(caught.value, RuntimeError)
        await limiter.acquire_nowait()  # the pool is whole again
