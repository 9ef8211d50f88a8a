"""RedisLockBackend's arguments, the Lease object and the corners of both managers."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import anyio
import pytest
import redis

from cc.locks import (
    AsyncLockManager,
    Lease,
    LockBackendError,
    LockLostError,
    LockManager,
    LockOrderError,
    LockTimeoutError,
)
from cc.redis import RedisLockBackend, _lease
from cc.redis._client import parse_holder

HIERARCHY = {"a": 1, "b": 2}


# -- arguments -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"namespace": ""}, ValueError, "namespace must be a non-empty str"),
        ({"lease": 0}, ValueError, "lease must be a number of seconds > 0"),
        ({"lease": float("inf")}, ValueError, "lease must be"),
        ({"lease": True}, ValueError, "lease must be"),
        ({"renew_interval": 10.0}, ValueError, "shorter than the lease"),
        ({"renew_interval": -1}, ValueError, "renew_interval must be"),
        ({"recheck_interval": 0}, ValueError, "recheck_interval must be"),
        ({"on_lost": 3}, TypeError, "on_lost must be callable"),
    ],
)
def test_backend_arguments_are_validated(
    options: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        RedisLockBackend("redis://localhost", **options)


def test_backend_needs_a_url_or_a_redis_client() -> None:
    with pytest.raises(TypeError, match="redis must be a redis:// URL or a redis-py"):
        RedisLockBackend(6379)  # type: ignore[arg-type]


def test_backend_properties() -> None:
    backend = RedisLockBackend(
        "redis://localhost", namespace="ns", lease=3.0, recheck_interval=0.5
    )
    assert (backend.namespace, backend.lease) == ("ns", 3.0)
    assert backend.renew_interval == 1.0 and backend.recheck_interval == 0.5
    assert backend.lock_key("x") == "ns:lock:{x}"
    unix = RedisLockBackend(redis.Redis(unix_socket_path="/tmp/none.sock"))
    assert str(unix._where()) == "unix:///tmp/none.sock"
    assert "redis.client.Redis" in repr(unix)


def test_lease_and_remote_holder_views() -> None:
    lease = Lease("a", "token", 7, 1.5, time.monotonic() + 1)
    assert repr(lease) == "<Lease 'a' fencing_token=7 held>"
    lease.check()
    assert lease.mark_lost("gone") and not lease.mark_lost("again")
    assert repr(lease) == "<Lease 'a' fencing_token=7 lost: gone>"
    with pytest.raises(LockLostError, match="'a': gone"):
        lease.check()
    assert parse_holder(-2, None) is None
    holder = parse_holder(-1, ["task 'x'", None, None, None, None, None])
    assert holder is not None and holder.expires_in is None
    assert holder.describe() == "task 'x' (pid None on an unknown host)"


# -- through a server --------------------------------------------------------------


def test_a_holder_without_metadata_and_a_key_of_another_type(
    redis_server: Any, namespace: str
) -> None:
    data = redis.Redis.from_url(redis_server.url, decode_responses=True)
    backend = RedisLockBackend(data, namespace=namespace)
    with LockManager(HIERARCHY, backend=backend) as manager:
        key = backend.lock_key("a")
        data.hset(key, mapping={"token": "someone"})
        data.pexpire(key, 5000)
        with pytest.raises(LockTimeoutError, match="whose lease ended just now") as c:
            with manager.acquire("a", blocking=False):
                pass  # pragma: no cover
        assert c.value.holder is None
        data.hset(key, mapping={"holder": "thread 'x'", "host": "h", "pid": "1"})
        with pytest.raises(
            LockTimeoutError, match=r"held by thread 'x' \(pid 1 on h\)$"
        ):
            with manager.acquire("a", blocking=False):
                pass  # pragma: no cover
        data.delete(key)
        data.set(key, "a string")
        with pytest.raises(LockBackendError, match="WRONGTYPE"):
            with manager.acquire("a"):
                pass  # pragma: no cover
        assert manager.held_locks() == []
        data.delete(key)
        with manager.acquire("a"):
            pass
    assert data.ping()  # a client of your own stays open
    data.close()


def test_sync_managers_need_a_blocking_client(redis_server: Any) -> None:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(redis_server.url)
    manager = LockManager(HIERARCHY, backend=RedisLockBackend(client))
    with pytest.raises(TypeError, match=r"needs a redis\.Redis client or a URL"):
        manager.__enter__()


def test_keys_and_arguments_follow_the_clients_encoding(
    redis_server: Any, namespace: str
) -> None:
    # The lock scripts send keys and arguments encoded once by the client's
    # own encoder: a latin-1 client takes, shows and releases the same keys
    # as the commands that encode as they go (inspection, the raw client).
    name = "café"
    client = redis.Redis.from_url(redis_server.url, encoding="latin-1")
    backend = RedisLockBackend(client, namespace=namespace)
    key = backend.lock_key(name).encode("latin-1")
    with LockManager({name: 1}, backend=backend) as manager:
        with LockManager({name: 1}, backend=backend) as rival:
            with manager.acquire(name):
                assert client.exists(key) == 1
                first = manager.lease(name).fencing_token
                status = manager.get_lock_status()[name]
                assert status["held_here"] and status["fencing_token"] is not None
                assert str(status["acquisition_site"]).endswith(
                    "in test_keys_and_arguments_follow_the_clients_encoding"
                )
                with pytest.raises(LockTimeoutError, match="pid"):
                    with rival.acquire(name, blocking=False):
                        pass  # pragma: no cover
            assert client.exists(key) == 0
            with rival.acquire(name):
                assert rival.lease(name).fencing_token > first


async def test_tasks_keys_and_arguments_follow_the_clients_encoding(
    redis_server: Any, namespace: str, anyio_backend_name: str
) -> None:
    import redis.asyncio

    # asyncio awaits an asyncio client; trio drives a blocking one in threads.
    name, raw = "café", redis.Redis.from_url(redis_server.url)
    kind = redis.Redis if anyio_backend_name == "trio" else redis.asyncio.Redis
    client = kind.from_url(redis_server.url, encoding="latin-1")
    backend = RedisLockBackend(client, namespace=namespace)
    key = backend.lock_key(name).encode("latin-1")
    try:
        async with AsyncLockManager({name: 1}, backend=backend) as manager:
            async with manager.acquire(name):
                assert raw.exists(key) == 1
                status = (await manager.get_lock_status())[name]
                assert status["held_here"] and status["fencing_token"] is not None
            assert raw.exists(key) == 0
    finally:
        raw.close()
        if isinstance(client, redis.asyncio.Redis):
            await client.aclose()
        else:
            client.close()


def test_thread_manager_corners(redis_server: Any, namespace: str) -> None:
    backend = RedisLockBackend(redis_server.url, namespace=namespace)
    with LockManager(HIERARCHY, backend=backend) as manager:
        a, b = manager.get_lock("a"), manager.get_lock("b")
        with manager.acquire("a"), manager.acquire("a"):  # re-entry only
            assert manager.get_lock_status()["a"]["depth"] == 2
        assert a.acquire() and b.acquire()
        a.release()  # out of order
        b.release()
        with manager.acquire("b"), pytest.raises(LockOrderError):
            manager.acquire("a").__enter__()
        errors: list[str] = []

        def stranger() -> None:
            try:
                manager.lease("a")
            except RuntimeError as exc:
                errors.append(str(exc))

        with manager.acquire("a"):
            thread = threading.Thread(target=stranger)
            thread.start()
            thread.join()
        assert errors == ["the calling thread does not hold lock 'a'"]
        # Another thread of the same manager waits for the in-process lock.
        with manager.acquire("a"):
            results: list[Any] = []
            thread = threading.Thread(
                target=lambda: results.append(a.acquire(timeout=0.05))
            )
            thread.start()
            thread.join()
            assert results == [False]
        stale = manager.acquire("a")
        manager.reset()
        with pytest.raises(RuntimeError, match="no longer registered"):
            stale.__enter__()
    with LockManager(HIERARCHY):  # without a backend, a no-op
        pass


def test_an_unreachable_server_fails_the_thread_manager_at_once(
    namespace: str,
) -> None:
    manager = LockManager(
        HIERARCHY,
        backend=RedisLockBackend("redis://127.0.0.1:1/0", namespace=namespace),
    )
    with pytest.raises(LockBackendError, match=r"127\.0\.0\.1:1"):
        manager.acquire("a").__enter__()
    assert manager.held_locks() == []


def test_a_failing_on_lost_callback_is_logged(
    redis_server: Any, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    def callback(lease: Lease) -> None:
        raise ValueError("oops")

    backend = RedisLockBackend(
        redis_server.url, namespace=namespace, lease=0.3, on_lost=callback
    )
    data = redis.Redis.from_url(redis_server.url)
    with LockManager(HIERARCHY, backend=backend) as manager:
        with pytest.raises(LockLostError), manager.acquire("a"):
            data.delete(backend.lock_key("a"))
            deadline = time.monotonic() + 3
            while not manager.lease("a").lost:
                assert time.monotonic() < deadline
                time.sleep(0.01)
    assert "on_lost callback failed for lock 'a'" in caplog.text
    data.close()


def test_listeners_idle_and_stop_while_redis_is_down(
    own_redis_server: Any, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_lease, "LISTEN_SLICE", 0.05)
    backend = RedisLockBackend(own_redis_server.url, namespace=namespace)
    with (
        LockManager(HIERARCHY, backend=backend) as manager,
        LockManager(HIERARCHY, backend=backend) as other,
    ):
        time.sleep(0.15)  # the listeners look again a few times
        with pytest.raises(LockLostError, match="could not be confirmed"):
            with manager.acquire("a"):
                own_redis_server.stop()
        time.sleep(0.1)  # the listeners back off
        own_redis_server.start()
        time.sleep(0.3)  # and subscribe again
        # The lease of "a" survived nowhere: the restart forgot it.
        with manager.acquire("a", timeout=1):
            waited: list[float] = []

            def waiter() -> None:
                started = time.monotonic()
                with other.acquire("a", timeout=5):
                    waited.append(time.monotonic() - started)

            thread = threading.Thread(target=waiter)
            thread.start()
            time.sleep(0.1)
        thread.join()
        assert waited
        own_redis_server.stop()  # closing while Redis is down still finishes


async def test_async_manager_corners(
    redis_server: Any, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    plain = AsyncLockManager(HIERARCHY)
    async with plain:  # without a backend, a no-op
        lock = await plain.get_lock("a")
        await lock.acquire()
        await lock.arelease()
    backend = RedisLockBackend(redis_server.url, namespace=namespace)
    async with AsyncLockManager(HIERARCHY, backend=backend) as manager:
        a, b = await manager.get_lock("a"), await manager.get_lock("b")
        async with manager.acquire("a"), manager.acquire("a"):
            pass
        await a.acquire()
        await b.acquire()
        await a.arelease()  # out of order
        await b.arelease()
        async with a:
            results: list[str] = []

            async def other() -> None:
                try:
                    async with manager.acquire("a", blocking=False):
                        pass  # pragma: no cover
                except LockTimeoutError as exc:
                    results.append(str(exc))
                async with manager.acquire("b", timeout=1):
                    pass

            async with anyio.create_task_group() as tg:
                tg.start_soon(other)
            assert "blocking=False" in results[0]
        stale = manager.acquire("a")
        await manager.reset()
        with pytest.raises(RuntimeError, match="no longer registered"):
            async with stale:
                pass  # pragma: no cover


pytestmark = pytest.mark.anyio
