"""A separate OS process sharing locks through Redis, driven by the tests.

Usage: ``python redis_worker.py URL NAMESPACE SCENARIO API ITERATIONS LEASE``,
where API is ``threads`` (LockManager), ``asyncio`` or ``trio``
(AsyncLockManager) and LEASE the lease in seconds.

* ``share``: ITERATIONS times, under the lock "counter", read the shared
  counter, yield, write it back plus one (a lost update without the lock);
  then ITERATIONS times take "a" and "b" (named in alternating order),
  append the fencing token of "a" to a shared list and bump two counters.
* ``hold``: take "victim", print ``held <fencing token>`` and wait forever
  (until the test kills the process).
"""

from __future__ import annotations

import sys
import time
from typing import Any

import anyio
import anyio.lowlevel
import redis

from cc.locks import AsyncLockManager, LockManager
from cc.redis import RedisLockBackend

HIERARCHY = {"counter": 1, "a": 10, "b": 20, "victim": 30}


def key(namespace: str, name: str) -> str:
    return f"{namespace}:data:{name}"


def run_threads(
    url: str, namespace: str, scenario: str, iterations: int, lease: float
) -> None:
    data = redis.Redis.from_url(url)
    backend = RedisLockBackend(url, namespace=namespace, lease=lease)
    with LockManager(HIERARCHY, backend=backend) as manager:
        if scenario == "hold":
            with manager.acquire("victim"):
                print("held", manager.lease("victim").fencing_token, flush=True)
                time.sleep(60)
        for _ in range(iterations):
            with manager.acquire("counter", timeout=30):
                value = int(data.get(key(namespace, "counter")) or 0)
                time.sleep(0)
                data.set(key(namespace, "counter"), value + 1)
        for index in range(iterations):
            names = ("a", "b") if index % 2 else ("b", "a")
            with manager.acquire(*names, timeout=30):
                data.rpush(key(namespace, "fences"), manager.lease("a").fencing_token)
                for name in ("a", "b"):
                    value = int(data.get(key(namespace, name)) or 0)
                    data.set(key(namespace, name), value + 1)


async def run_async(
    url: str, namespace: str, scenario: str, iterations: int, lease: float
) -> None:
    data: Any = redis.Redis.from_url(url)  # blocking calls: fine for a test
    backend = RedisLockBackend(url, namespace=namespace, lease=lease)
    async with AsyncLockManager(HIERARCHY, backend=backend) as manager:
        if scenario == "hold":
            async with manager.acquire("victim"):
                print("held", manager.lease("victim").fencing_token, flush=True)
                await anyio.sleep(60)
        for _ in range(iterations):
            async with manager.acquire("counter", timeout=30):
                value = int(data.get(key(namespace, "counter")) or 0)
                await anyio.lowlevel.checkpoint()
                data.set(key(namespace, "counter"), value + 1)
        for index in range(iterations):
            names = ("a", "b") if index % 2 else ("b", "a")
            async with manager.acquire(*names, timeout=30):
                data.rpush(key(namespace, "fences"), manager.lease("a").fencing_token)
                for name in ("a", "b"):
                    value = int(data.get(key(namespace, name)) or 0)
                    await anyio.lowlevel.checkpoint()
                    data.set(key(namespace, name), value + 1)


def main() -> None:
    url, namespace, scenario, api, iterations, lease = sys.argv[1:]
    args = (url, namespace, scenario, int(iterations), float(lease))
    if api == "threads":
        run_threads(*args)
    else:
        anyio.run(run_async, *args, backend=api)
    print("done", flush=True)


if __name__ == "__main__":
    main()
