"""A separate OS process sharing a limit through Redis, driven by the tests.

Usage: ``python limits_worker.py SCENARIO URL NAMESPACE API ARGS...`` where
API is ``asyncio`` or ``trio``. Each scenario connects, prints ``ready`` and
waits for a line on standard input before it starts.

* ``rate RATE PERIOD COUNT``: COUNT acquisitions of ``RedisRateLimiter(RATE,
  PERIOD)``; after each one, print ``granted <grant time> <server time>``
  (the time the limiter says it granted it, and the server's clock read
  right after it returned, both in microseconds).
* ``capacity TOTAL LEASE ITERATIONS DIRECTORY``: ITERATIONS times, borrow a
  token of ``RedisCapacityLimiter(TOTAL)`` and, while holding it, claim one
  of TOTAL slots in DIRECTORY by creating ``slot-<i>`` exclusively (a
  symbolic link to this process's pid, made in one step); with every slot
  taken, more than TOTAL processes hold a token: print ``OVER`` and exit 3.
* ``outage TOTAL LEASE SECONDS DIRECTORY HOLD``: the same for SECONDS,
  holding each token HOLD seconds, going on through errors (the test
  restarts the server meanwhile): print ``error``
  for each acquisition refused with LockBackendError, ``lost`` for each
  token whose lease was lost, and ``in <monotonic time>`` for each one held.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import redis

from cc.locks import LockBackendError, LockLostError
from cc.redis import RedisCapacityLimiter, RedisRateLimiter


def wait_for_go() -> None:
    print("ready", flush=True)
    sys.stdin.readline()


async def run_rate(
    url: str, namespace: str, rate: str, period: str, count: str
) -> None:
    clock: Any = redis.Redis.from_url(url)  # blocking calls: fine for a test
    limiter = RedisRateLimiter(int(rate), float(period), key="api", url=url,
                               namespace=namespace)  # fmt: skip
    async with limiter.connect():
        await limiter.has_capacity()  # connected and warm
        wait_for_go()
        for _ in range(int(count)):
            granted = await limiter.acquire()
            seconds, micros = clock.time()
            print(f"granted {round(granted * 1e6)} {seconds * 1_000_000 + micros}",
                  flush=True)  # fmt: skip
    clock.close()


def claim_slot(directory: Path, total: int) -> Path:
    for index in range(total):
        slot = directory / f"slot-{index}"
        try:
            os.symlink(str(os.getpid()), slot)
        except FileExistsError:
            continue
        return slot
    print("OVER", flush=True)
    os._exit(3)


async def run_capacity(
    url: str, namespace: str, total: str, lease: str, iterations: str, directory: str
) -> None:
    limiter = RedisCapacityLimiter(int(total), key="pool", url=url,
                                   namespace=namespace, lease=float(lease))  # fmt: skip
    async with limiter.connect():
        wait_for_go()
        for _ in range(int(iterations)):
            async with limiter:
                slot = claim_slot(Path(directory), int(total))
                await anyio.sleep(0.02)
                slot.unlink()
            await anyio.sleep(0.002)


async def run_outage(
    url: str, namespace: str, total: str, lease: str, seconds: str, directory: str,
    hold: str,
) -> None:  # fmt: skip
    limiter = RedisCapacityLimiter(int(total), key="pool", url=url,
                                   namespace=namespace, lease=float(lease))  # fmt: skip
    async with limiter.connect():
        wait_for_go()
        deadline = time.monotonic() + float(seconds)
        while time.monotonic() < deadline:
            try:
                async with limiter:
                    print(f"in {time.monotonic()}", flush=True)
                    slot = claim_slot(Path(directory), int(total))
                    await anyio.sleep(float(hold))
                    slot.unlink()
            except LockBackendError:
                print("error", flush=True)
                await anyio.sleep(0.05)
            except LockLostError:
                print("lost", flush=True)


def main() -> None:
    scenario, url, namespace, api, *args = sys.argv[1:]
    func = {"rate": run_rate, "capacity": run_capacity, "outage": run_outage}[scenario]
    anyio.run(func, url, namespace, *args, backend=api)  # type: ignore[arg-type]
    print("done", flush=True)


if __name__ == "__main__":
    main()
