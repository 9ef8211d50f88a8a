"""Waiters for a shared lock queue in Redis: first come, first served, no herd."""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio
import pytest
import redis

from cc.locks import AsyncLockManager, LockManager, LockTimeoutError
from cc.redis import RedisLockBackend

HIERARCHY = {"a": 1}

# Waiters re-check on their own only every 30 s: only the wake-up published
# for the next waiter can move the queue along in time.
SLOW_RECHECK = {"lease": 5.0, "recheck_interval": 30.0}


def backend(server: Any, namespace: str, **options: Any) -> RedisLockBackend:
    return RedisLockBackend(server.url, namespace=namespace, **options)


def wait_for_queue(data: redis.Redis, key: str, length: int) -> None:
    deadline = time.monotonic() + 5
    while data.llen(key) < length:
        assert time.monotonic() < deadline, f"{key} never had {length} waiters"
        time.sleep(0.002)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "anyio_backend",
    [
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("trio", {}), id="trio"),
    ],
)
async def test_waiters_are_served_in_arrival_order(
    redis_server: Any, namespace: str
) -> None:
    # Four managers: four sessions, as four processes would be. The holder
    # lets go and at once asks again: it queues behind the three waiters
    # instead of taking the lock back from them.
    data = redis.Redis.from_url(redis_server.url)
    queue = backend(redis_server, namespace).lock_key("a") + ":queue"
    managers = [
        AsyncLockManager(
            HIERARCHY, backend=backend(redis_server, namespace, **SLOW_RECHECK)
        )
        for _ in range(4)
    ]
    order: list[int] = []

    async def take(index: int) -> None:
        async with managers[index].acquire("a", timeout=10):
            order.append(index)
            await anyio.sleep(0.01)

    async with managers[0], managers[1], managers[2], managers[3]:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                async with managers[0].acquire("a"):
                    for index in (1, 2, 3):
                        tg.start_soon(take, index)
                        await anyio.to_thread.run_sync(
                            wait_for_queue, data, queue, index
                        )
                await take(0)
    assert order == [1, 2, 3, 0]
    assert data.exists(queue, queue[: -len("queue")] + "queued") == 0
    data.close()


def test_a_release_wakes_only_the_next_waiter(
    redis_server: Any, namespace: str, start_thread: Any
) -> None:
    data = redis.Redis.from_url(redis_server.url)
    queue = backend(redis_server, namespace).lock_key("a") + ":queue"
    wakeups = data.pubsub()
    wakeups.psubscribe(f"{namespace}:wake:*")
    managers = [
        LockManager(HIERARCHY, backend=backend(redis_server, namespace, **SLOW_RECHECK))
        for _ in range(4)
    ]
    order: list[int] = []
    lock = threading.Lock()

    def take(index: int) -> None:
        with managers[index].acquire("a", timeout=10):
            with lock:
                order.append(index)

    try:
        with managers[0].acquire("a"):
            threads = []
            for index in (1, 2, 3):
                threads.append(start_thread(lambda i=index: take(i), f"waiter {index}"))
                wait_for_queue(data, queue, index)
        for thread in threads:
            thread.join()
        assert order == [1, 2, 3]
        # Three hand-overs, three messages: each to the one next waiter.
        names = []
        deadline = time.monotonic() + 2
        while len(names) < 3 and time.monotonic() < deadline:
            message = wakeups.get_message(timeout=0.1)
            if message and message["type"] == "pmessage":
                names.append((message["channel"], message["data"]))
        assert [name for _, name in names] == [b"a"] * 3
        assert len({channel for channel, _ in names}) == 3
        assert wakeups.get_message(timeout=0.2) is None
    finally:
        for manager in managers:
            manager.close()
        wakeups.close()
        data.close()


def test_a_dead_waiter_at_the_head_holds_the_others_up_only_briefly(
    redis_server: Any, namespace: str
) -> None:
    # A waiter queued, then vanished without leaving the queue (killed): its
    # place lapses one re-check window (recheck_interval, plus a little)
    # after its last try; until then the free lock is kept for it.
    data = redis.Redis.from_url(redis_server.url, decode_responses=True)
    shared = backend(redis_server, namespace, lease=1.0, recheck_interval=0.3)
    key = shared.lock_key("a")
    seconds, micros = data.time()
    data.rpush(f"{key}:queue", "deadbeef:1")
    data.zadd(f"{key}:queued", {"deadbeef:1": seconds * 1000 + micros // 1000 + 600})
    with LockManager(HIERARCHY, backend=shared) as manager:
        with pytest.raises(LockTimeoutError, match="queued for it earlier") as caught:
            with manager.acquire("a", blocking=False):
                pass  # pragma: no cover
        assert caught.value.holder is None
        assert data.lrange(f"{key}:queue", 0, -1) == ["deadbeef:1"]  # not queued
        started = time.monotonic()
        with manager.acquire("a", timeout=5):
            waited = time.monotonic() - started
        assert 0.3 <= waited <= 1.5
        assert not data.exists(f"{key}:queue", f"{key}:queued")
    data.close()


def test_a_waiter_that_gives_up_leaves_the_queue(
    redis_server: Any, namespace: str
) -> None:
    data = redis.Redis.from_url(redis_server.url)
    options = {"lease": 5.0, "recheck_interval": 0.05}
    key = backend(redis_server, namespace).lock_key("a")
    with (
        LockManager(
            HIERARCHY, backend=backend(redis_server, namespace, **options)
        ) as first,
        LockManager(
            HIERARCHY, backend=backend(redis_server, namespace, **options)
        ) as second,
    ):
        with first.acquire("a"):
            with pytest.raises(LockTimeoutError, match=r"held by thread"):
                with second.acquire("a", timeout=0.2):
                    pass  # pragma: no cover
            assert not data.exists(f"{key}:queue", f"{key}:queued")
        with second.acquire("a", blocking=False):
            pass
    data.close()
