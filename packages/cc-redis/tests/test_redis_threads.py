"""LockManager with a RedisLockBackend, with real threads."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import redis

from cc.locks import (
    LockBackendError,
    LockLostError,
    LockManager,
    LockTimeoutError,
)
from cc.redis import RedisLockBackend

HIERARCHY = {"a": 1, "b": 2}


def manager(server: Any, namespace: str, **options: Any) -> LockManager:
    options.setdefault("lease", 1.0)
    backend = RedisLockBackend(server.url, namespace=namespace, **options)
    return LockManager(HIERARCHY, backend=backend)


def test_threads_of_two_managers_share_the_locks(
    redis_server: Any, namespace: str, start_thread: Any
) -> None:
    with (
        manager(redis_server, namespace) as first,
        manager(redis_server, namespace, recheck_interval=30.0) as second,
    ):
        counter = [0]

        def bump(shared: LockManager) -> None:
            for _ in range(20):
                with shared.acquire("b", "a", timeout=10):
                    value = counter[0]
                    time.sleep(0)
                    counter[0] = value + 1

        workers = [
            start_thread(lambda m=m: bump(m), f"bump-{i}")
            for i, m in enumerate((first, second, first, second))
        ]
        for worker in workers:
            worker.join()
        assert counter[0] == 80
        status = first.get_lock_status()
        assert not status["a"]["is_locked"] and not status["b"]["is_locked"]
        total = sum(m.statistics()["a"].acquisitions for m in (first, second))
        assert total == 80


def test_timeouts_name_the_holder_in_the_other_process(
    redis_server: Any, namespace: str
) -> None:
    with (
        manager(redis_server, namespace) as first,
        manager(redis_server, namespace) as second,
    ):
        lock = first.get_lock("b")
        assert lock.acquire(timeout=1)
        try:
            fence = first.lease("b").fencing_token
            started = time.monotonic()
            with pytest.raises(LockTimeoutError) as caught:
                with second.acquire("a", "b", timeout=0.2):
                    pytest.fail("took a held lock")  # pragma: no cover
            assert 0.15 < time.monotonic() - started < 1.0
            assert caught.value.holder is not None
            assert caught.value.holder.startswith("thread 'MainThread' (pid ")
            assert "acquired at" in str(caught.value)
            assert not second.get_lock_status()["a"]["is_locked"]
            assert not second.get_lock("b").acquire(blocking=False)
            status = second.get_lock_status()["b"]
            assert status["fencing_token"] == fence and not status["held_here"]
        finally:
            lock.release()
        assert second.get_lock("b").acquire(blocking=False)
        second.get_lock("b").release()


def test_renewal_and_a_lost_lease(redis_server: Any, namespace: str) -> None:
    lost: list[Any] = []
    data = redis.Redis.from_url(redis_server.url)
    with (
        manager(redis_server, namespace, lease=0.25, on_lost=lost.append) as holder,
        manager(redis_server, namespace) as other,
    ):
        with holder.acquire("a"):
            time.sleep(0.6)  # over two leases: renewed meanwhile
            assert not holder.lease("a").lost
            with pytest.raises(LockTimeoutError):
                with other.acquire("a", blocking=False):
                    pass  # pragma: no cover
        with pytest.raises(LockLostError) as caught:
            with holder.acquire("a"):
                lease = holder.lease("a")
                data.delete(holder.backend.lock_key("a"))  # type: ignore[union-attr]
                deadline = time.monotonic() + 3
                while not lease.lost:
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
                assert lost == [lease]
        assert caught.value.lock_names == ("a",)
        assert "expired" in caught.value.reasons[0]
        assert holder.held_locks() == []
        with other.acquire("a", blocking=False):
            pass
    data.close()


def test_close_releases_and_using_again_reconnects(
    redis_server: Any, namespace: str
) -> None:
    holder = manager(redis_server, namespace)
    with manager(redis_server, namespace) as other:
        lock = holder.get_lock("a")  # the manager connects on first use
        assert lock.acquire()
        holder.close()
        with other.acquire("a", blocking=False):
            pass
        with pytest.raises(LockLostError, match="manager was closed"):
            lock.release()
        with holder.acquire("a"):
            assert holder.lease("a").fencing_token > 0
        holder.close()
        holder.close()
    names = [t.name for t in threading.enumerate()]
    assert not any(name.startswith("cc.locks lease") for name in names)
    with pytest.raises(RuntimeError, match="no backend"):
        LockManager(HIERARCHY).lease("a")
    with pytest.raises(TypeError, match="backend must be"):
        LockManager(backend=object())  # type: ignore[arg-type]


def test_a_server_restart_is_survived(own_redis_server: Any, namespace: str) -> None:
    with (
        manager(own_redis_server, namespace, lease=0.5) as holder,
        manager(own_redis_server, namespace, lease=0.5) as other,
    ):
        with pytest.raises(LockLostError, match="could not be reached"):
            with holder.acquire("a"):
                lease = holder.lease("a")
                own_redis_server.stop()
                with pytest.raises(LockBackendError):
                    other.get_lock_status()
                with pytest.raises(LockBackendError):
                    other.acquire("b").__enter__()
                assert other.held_locks() == []
                with pytest.raises(LockBackendError, match="Connection refused"):
                    other.get_lock("b").acquire(blocking=False)
                deadline = time.monotonic() + 3
                while not lease.lost:
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
                own_redis_server.start()
        deadline = time.monotonic() + 5
        while True:
            try:
                with other.acquire("a", "b", timeout=1):
                    assert other.lease("a").fencing_token > lease.fencing_token
                break
            except LockBackendError:  # pragma: no cover - reconnecting
                assert time.monotonic() < deadline
                time.sleep(0.05)
        with holder.acquire("a", timeout=1):
            pass
