"""AsyncLockManager with a RedisLockBackend, on asyncio, uvloop and trio."""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

import anyio
import anyio.lowlevel
import pytest
import redis
import redis.asyncio

from cc.locks import (
    AsyncLockManager,
    Lease,
    LockBackendError,
    LockLostError,
    LockOrderError,
    LockTimeoutError,
)
from cc.locks._steps import arun
from cc.primitives import ConcurrencyError
from cc.redis import RedisLockBackend

pytestmark = pytest.mark.anyio

HIERARCHY = {"a": 1, "b": 2, "c": 3}

# The slowest tests run once per kind of link: uvloop drives the same
# redis.asyncio client as asyncio, and trio drives the blocking one.
one_per_link = pytest.mark.parametrize(
    "anyio_backend",
    [
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("trio", {}), id="trio"),
    ],
)


def backend(server: Any, namespace: str, **options: Any) -> RedisLockBackend:
    options.setdefault("lease", 1.0)
    return RedisLockBackend(server.url, namespace=namespace, **options)


def manager(server: Any, namespace: str, **options: Any) -> AsyncLockManager:
    return AsyncLockManager(HIERARCHY, backend=backend(server, namespace, **options))


async def test_locks_are_shared_between_managers(
    redis_server: Any, namespace: str
) -> None:
    async with (
        manager(redis_server, namespace) as first,
        manager(redis_server, namespace) as second,
    ):
        async with first.acquire("b", "a"):
            assert first.held_locks() == ["a", "b"]
            lease = first.lease("a")
            assert isinstance(lease, Lease) and not lease.lost
            assert 0 < lease.expires_in <= 1.0
            assert abs(lease.acquired_at - time.time()) < 5
            status = (await second.get_lock_status())["a"]
            assert status["is_locked"] and not status["held_here"]
            assert status["pid"] == os.getpid()
            assert status["host"] == socket.gethostname()
            assert status["owner"].endswith(f"(pid {os.getpid()} on {status['host']})")
            assert status["fencing_token"] == lease.fencing_token
            assert status["depth"] is None and 0 < status["lease_expires_in"] <= 1
            assert "test_redis_async.py" in status["acquisition_site"]
            mine = (await first.get_lock_status())["a"]
            assert mine["held_here"] and mine["depth"] == 1
            with pytest.raises(LockTimeoutError) as caught:
                async with second.acquire("a", blocking=False):
                    pytest.fail("took a lock another manager holds")  # pragma: no cover
            assert caught.value.holder == status["owner"]
            assert "is not available and blocking=False" in str(caught.value)
        async with second.acquire("a"):
            assert second.lease("a").fencing_token > lease.fencing_token
        free = (await first.get_lock_status())["a"]
        assert not free["is_locked"] and free["fencing_token"] is None
        assert second.statistics()["a"].timeouts == 1


async def test_reentry_is_counted_locally(redis_server: Any, namespace: str) -> None:
    data = redis.Redis.from_url(redis_server.url)
    async with manager(redis_server, namespace) as shared:
        key = shared.backend.lock_key("a")  # type: ignore[union-attr]
        async with shared.acquire("a"):
            fence = shared.lease("a").fencing_token
            async with shared.acquire("a", "b"):
                assert shared.lease("a").fencing_token == fence
                assert (await shared.get_lock_status())["a"]["depth"] == 2
            assert data.exists(key)
        assert not data.exists(key)
    data.close()


async def test_order_checks_still_apply(redis_server: Any, namespace: str) -> None:
    async with manager(redis_server, namespace) as shared:
        async with shared.acquire("b"):
            with pytest.raises(LockOrderError):
                async with shared.acquire("a"):
                    pytest.fail("took a lower-order lock")  # pragma: no cover
            assert shared.held_locks() == ["b"]
        assert not (await shared.get_lock_status())["a"]["is_locked"]


async def test_one_deadline_for_the_set_and_partial_failure_releases(
    redis_server: Any, namespace: str
) -> None:
    async with (
        manager(redis_server, namespace) as first,
        manager(redis_server, namespace) as second,
    ):
        async with first.acquire("c"):
            started = time.monotonic()
            with pytest.raises(LockTimeoutError) as caught:
                async with second.acquire("a", "b", "c", timeout=0.3):
                    pytest.fail("took a held lock")  # pragma: no cover
            assert 0.25 < time.monotonic() - started < 1.0
            assert caught.value.lock_name == "c"
            assert "could not acquire 'c' (order 3) within 0.3 s" in str(caught.value)
            status = await first.get_lock_status()
            assert not status["a"]["is_locked"] and not status["b"]["is_locked"]
            assert second.held_locks() == []


async def test_a_waiter_is_woken_by_the_release_not_by_polling(
    redis_server: Any, namespace: str
) -> None:
    # The waiter re-checks on its own only every 30 s: only the published
    # release can wake it in time.
    options = {"lease": 30.0, "recheck_interval": 30.0}
    async with (
        manager(redis_server, namespace, **options) as first,
        manager(redis_server, namespace, **options) as second,
    ):
        got: list[float] = []

        async def wait_for_it() -> None:
            async with second.acquire("a", timeout=10):
                got.append(time.monotonic())

        async with anyio.create_task_group() as tg:
            async with first.acquire("a"):
                tg.start_soon(wait_for_it)
                with anyio.fail_after(5):
                    while (await second.get_lock_status())["a"]["waiters"] == 0:  # noqa: ASYNC110
                        await anyio.sleep(0.01)
                released = time.monotonic()
        assert got and got[0] - released < 1.0
        stats = second.statistics()["a"]
        assert stats.contended_acquisitions == 1 and stats.max_wait_time > 0


@one_per_link
async def test_renewal_keeps_a_long_holder_alive(
    redis_server: Any, namespace: str
) -> None:
    async with (
        manager(redis_server, namespace, lease=0.25) as holder,
        manager(redis_server, namespace, lease=0.25) as other,
    ):
        async with holder.acquire("a"):
            for _ in range(4):  # over three leases
                await anyio.sleep(0.2)
                with pytest.raises(LockTimeoutError):
                    async with other.acquire("a", blocking=False):
                        pass  # pragma: no cover
            assert not holder.lease("a").lost


async def test_a_lost_lease_is_flagged_and_raised_at_release(
    redis_server: Any, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    lost: list[Lease] = []
    data = redis.Redis.from_url(redis_server.url)
    async with (
        manager(redis_server, namespace, lease=0.3, on_lost=lost.append) as holder,
        manager(redis_server, namespace) as other,
    ):
        with pytest.raises(LockLostError) as caught:
            async with holder.acquire("a", "b"):
                lease = holder.lease("a")
                data.delete(holder.backend.lock_key("a"))  # type: ignore[union-attr]
                # Another process takes it meanwhile.
                async with other.acquire("a", timeout=1):
                    with anyio.fail_after(2):
                        while not lease.lost:  # noqa: ASYNC110 (a flag, no event)
                            await anyio.sleep(0.02)
                    assert lost == [lease]
                    assert "expired" in (lease.lost_reason or "")
                    with pytest.raises(LockLostError):
                        lease.check()
                    assert not holder.lease("b").lost
                    assert "lease lost: the shared lock 'a'" in caplog.text
                    reports = await holder.detect_potential_deadlocks()
                    assert any(r.startswith("lease lost:") for r in reports)
                    async with other.acquire("b", blocking=False):
                        pytest.fail("b is still held")  # pragma: no cover
        assert isinstance(caught.value, ConcurrencyError)
        assert caught.value.lock_names == ("a",)
        # Which the release reports depends on whether the renewal noticed
        # the loss before or after the other manager took the lock.
        assert (
            "another holder had taken the lock" in caught.value.reasons[0]
            or "its lease had expired" in caught.value.reasons[0]
        )
        # Everything was released all the same.
        assert holder.held_locks() == []
        async with other.acquire("a", "b", blocking=False):
            pass
    data.close()


async def test_a_release_that_finds_its_lease_expired_raises(
    redis_server: Any, namespace: str
) -> None:
    data = redis.Redis.from_url(redis_server.url)
    async with manager(redis_server, namespace, lease=5.0) as holder:
        lock = await holder.get_lock("a")
        await lock.acquire()
        data.delete(holder.backend.lock_key("a"))  # type: ignore[union-attr]
        with pytest.raises(LockLostError, match="the lock was free when released"):
            await lock.arelease()
        assert not lock.locked()
    data.close()


async def test_only_the_owner_releases(redis_server: Any, namespace: str) -> None:
    async with (
        manager(redis_server, namespace) as first,
        manager(redis_server, namespace) as second,
    ):
        mine = await first.get_lock("a")
        theirs = await second.get_lock("a")
        async with mine:
            with pytest.raises(RuntimeError, match="it is not held"):
                await theirs.arelease()
            results: list[str] = []

            async def stranger() -> None:
                try:
                    await mine.arelease()
                except RuntimeError as exc:
                    results.append(str(exc))

            async with anyio.create_task_group() as tg:
                tg.start_soon(stranger)
            assert "cannot release lock 'a'" in results[0]
            # At the Redis level, a token that is not the owner's deletes nothing.
            session = first._engine.session
            assert session is not None
            link = session._link
            assert await arun(link.release(["a"], ["not-the-owner"])) == [-1]
            assert (await second.get_lock_status())["a"]["is_locked"]
            with pytest.raises(RuntimeError, match="needs a round trip"):
                mine.release()
            with pytest.raises(RuntimeError, match="cannot be taken without awaiting"):
                theirs.acquire_nowait()
        assert not mine.locked()


async def test_a_cancelled_waiter_leaves_nothing_behind(
    redis_server: Any, namespace: str
) -> None:
    async with (
        manager(redis_server, namespace) as first,
        manager(redis_server, namespace) as second,
    ):
        async with first.acquire("b"):
            with anyio.move_on_after(0.2):
                async with second.acquire("a", "b", timeout=None):
                    pytest.fail("took a held lock")  # pragma: no cover
            status = await second.get_lock_status()
            assert status["b"]["waiters"] == 0 and not status["a"]["is_locked"]
        async with second.acquire("a", "b", blocking=False):
            assert second.held_locks() == ["a", "b"]


async def test_closing_with_a_lock_held_releases_it_and_says_so(
    redis_server: Any, namespace: str
) -> None:
    holder = manager(redis_server, namespace)
    async with manager(redis_server, namespace) as other:
        await holder.__aenter__()
        lock = await holder.get_lock("a")
        await lock.acquire()
        await holder.aclose()
        async with other.acquire("a", blocking=False):
            pass
        with pytest.raises(LockLostError, match="manager was closed"):
            await lock.arelease()
        await holder.aclose()  # closing twice is fine


async def test_a_manager_with_a_backend_must_be_opened(
    redis_server: Any, namespace: str
) -> None:
    shared = manager(redis_server, namespace)
    with pytest.raises(RuntimeError, match="must be opened"):
        async with shared.acquire("a"):
            pass  # pragma: no cover
    with pytest.raises(RuntimeError, match="has no lease: its manager has no backend"):
        AsyncLockManager(HIERARCHY).lease("a")
    async with shared:
        with pytest.raises(RuntimeError, match="does not hold lock 'a'"):
            shared.lease("a")
        with pytest.raises(RuntimeError, match="open already"):
            await shared.__aenter__()
    assert "backend=<RedisLockBackend" in repr(shared)
    with pytest.raises(TypeError, match="backend must be a lock store"):
        AsyncLockManager(backend="redis://localhost")  # type: ignore[arg-type]


async def test_an_unreachable_server_is_a_clear_error(namespace: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    shared = AsyncLockManager(
        HIERARCHY,
        backend=RedisLockBackend(f"redis://127.0.0.1:{port}/0", namespace=namespace),
    )
    with pytest.raises(LockBackendError, match=f"Redis at redis://127.0.0.1:{port}"):
        async with shared:
            pass  # pragma: no cover


@one_per_link
async def test_a_server_restart_is_survived(
    own_redis_server: Any, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with (
        manager(own_redis_server, namespace, lease=0.5) as holder,
        manager(own_redis_server, namespace, lease=0.5) as other,
    ):
        with pytest.raises(LockLostError) as caught:
            async with holder.acquire("a"):
                lease = holder.lease("a")
                await anyio.to_thread.run_sync(own_redis_server.stop)
                # While the server is down: a clear error, and nothing held.
                with pytest.raises(LockBackendError) as down:
                    async with other.acquire("b"):
                        pass  # pragma: no cover
                assert isinstance(down.value, ConnectionError)
                assert down.value.__cause__ is not None
                assert other.held_locks() == []
                with anyio.fail_after(3):
                    while not lease.lost:  # noqa: ASYNC110 (a flag, no event)
                        await anyio.sleep(0.02)
                assert "could not be reached" in (lease.lost_reason or "")
                await anyio.to_thread.run_sync(own_redis_server.start)
        assert caught.value.lock_names == ("a",)
        # The restarted server forgot everything; the managers carry on, and
        # fencing tokens still grow.
        with anyio.fail_after(5):
            while True:
                try:
                    async with other.acquire("a", "b", timeout=1):
                        assert other.lease("a").fencing_token > lease.fencing_token
                    break
                except LockBackendError:  # pragma: no cover - reconnecting
                    await anyio.sleep(0.05)
        async with holder.acquire("a", timeout=1):
            pass
        # Waiting works again: the listeners subscribed again.
        async with anyio.create_task_group() as tg:
            async with holder.acquire("c"):

                async def waiter() -> None:
                    async with other.acquire("c", timeout=5):
                        pass

                tg.start_soon(waiter)
                await anyio.sleep(0.1)


async def test_clients_of_your_own(
    redis_server: Any, namespace: str, anyio_backend: Any
) -> None:
    if anyio_backend[0] == "asyncio":
        client: Any = redis.asyncio.Redis.from_url(redis_server.url)
        wrong: Any = redis.Redis.from_url(redis_server.url)
    else:
        client = redis.Redis.from_url(redis_server.url)
        wrong = None
    shared = AsyncLockManager(
        HIERARCHY, backend=RedisLockBackend(client, namespace=namespace)
    )
    async with shared:
        async with shared.acquire("a"):
            assert shared.lease("a").fencing_token > 0
    # The client is still usable: the manager closes only what it made.
    if anyio_backend[0] == "asyncio":
        assert await client.ping()
        await client.aclose()
        with pytest.raises(TypeError, match=r"needs a redis\.asyncio\.Redis"):
            async with AsyncLockManager(
                backend=RedisLockBackend(wrong, namespace=namespace)
            ):
                pass  # pragma: no cover
        wrong.close()
    else:
        assert client.ping()
        client.close()
