"""cc-redis's shared limits next to the tools users pick for the same job today.

Each figure is microseconds per operation of one task on a local
redis-server (started here, as in ``bench_locks_redis.py``), with nothing
else contending, so the figures are the server round trips, the scripts and
the client code:

* ``RedisRateLimiter.acquire()`` against the ``limits`` library's async
  moving-window limiter (``limits.aio.strategies.MovingWindowRateLimiter``
  on ``limits.aio.storage.RedisStorage``, with redis-py's asyncio client as
  cc uses) ``hit()``: one script each, with a limit high enough that neither
  refuses or waits. (``limits`` answers yes or no; cc also queues a caller
  that does not fit, first come first served, and tells it when its turn is.)
* ``RedisCapacityLimiter`` acquire + release (``async with limiter:``)
  against a round trip of redis-py's asyncio ``Lock`` (``async with
  client.lock(name):``): two round trips each.

``limits`` and redis-py's asyncio client run on asyncio only, so there are no
trio rows. Without redis-server, redis-py, ``limits`` or cc-redis the module
prints a note and adds nothing.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from bench_locks_redis import _redis_py_async, with_server

from harness import BACKENDS, Suite

GROUP = "limits on redis"
OPS = 2_000
# High enough that no acquisition of the run is refused or has to wait.
RATE, PERIOD = 1_000_000, 1.0

CC_RATE = "cc RedisRateLimiter.acquire"
LIMITS_RATE = "limits MovingWindowRateLimiter.hit"
CC_CAPACITY = "cc RedisCapacityLimiter acquire+release"
RP_LOCK = "redis-py redis.asyncio.lock.Lock"

# Each function connects, warms up (a tenth of ``ops``), then returns the
# seconds that ``ops`` operations took (connecting is not timed).


async def _cc_rate(url: str, ops: int) -> float:
    from cc.redis import RedisRateLimiter

    namespace = f"bench-{uuid.uuid4().hex}"
    limiter = RedisRateLimiter(RATE, PERIOD, key="bench", url=url, namespace=namespace)
    async with limiter.connect():
        acquire = limiter.acquire
        for _ in range(max(1, ops // 10)):
            await acquire()
        start = time.perf_counter()
        for _ in range(ops):
            await acquire()
        return time.perf_counter() - start


async def _limits_rate(url: str, ops: int) -> float:
    from limits import RateLimitItemPerSecond
    from limits.aio.storage import RedisStorage
    from limits.aio.strategies import MovingWindowRateLimiter

    storage = RedisStorage(f"async+{url}", implementation="redispy")
    hit = MovingWindowRateLimiter(storage).hit
    item = RateLimitItemPerSecond(RATE, int(PERIOD))
    name = f"bench-{uuid.uuid4().hex}"
    for _ in range(max(1, ops // 10)):
        await hit(item, name)
    start = time.perf_counter()
    for _ in range(ops):
        if not await hit(item, name):
            raise RuntimeError("limits refused a hit under the limit")
    elapsed = time.perf_counter() - start
    client = getattr(storage.bridge, "storage", None)  # its redis-py client
    if client is not None:
        await client.aclose()
    return elapsed


async def _cc_capacity(url: str, ops: int) -> float:
    from cc.redis import RedisCapacityLimiter

    namespace = f"bench-{uuid.uuid4().hex}"
    limiter = RedisCapacityLimiter(4, key="bench", url=url, namespace=namespace)
    async with limiter.connect():
        for _ in range(max(1, ops // 10)):
            async with limiter:
                pass
        start = time.perf_counter()
        for _ in range(ops):
            async with limiter:
                pass
        return time.perf_counter() - start


def collect(suite: Suite) -> None:
    """RedisRateLimiter next to limits; RedisCapacityLimiter next to redis-py's Lock."""
    try:
        import limits.aio  # noqa: F401

        import cc.redis  # noqa: F401
    except ImportError as error:
        print(f"  (skipped: {error.name} is not installed)")
        return
    with_server(suite, _collect)


def _collect(suite: Suite, url: str) -> None:
    ops = suite.ops(OPS)
    rows: list[tuple[str, str, str, Any, Any, float]] = [
        ("one rate limit, uncontended, local server", CC_RATE, LIMITS_RATE,
         _cc_rate, _limits_rate, 1.0),
        ("one capacity limit, uncontended, local server", CC_CAPACITY, RP_LOCK,
         _cc_capacity, _redis_py_async, 1.5),
    ]  # fmt: skip
    for case, mine, theirs, my_func, their_func, goal in rows:
        for backend in ("asyncio", "uvloop"):
            baseline, figure = _best_of_alternating(
                suite, backend, (their_func, my_func), url, ops
            )
            suite.record(GROUP, case, theirs, baseline, "us/op", backend=backend,
                         baseline=True)  # fmt: skip
            suite.record(GROUP, case, mine, figure, "us/op", backend=backend)
            suite.goal(GROUP, case, mine, theirs, goal, backend=backend)


def _best_of_alternating(
    suite: Suite, backend: str, funcs: tuple[Any, ...], url: str, ops: int
) -> list[float]:
    """Microseconds per operation of each of ``funcs``, best of ``repeat``.

    The samples alternate (baseline, cc, baseline, cc...), so that a change
    of load on a shared machine weighs on both sides alike.
    """
    import anyio

    name, options = BACKENDS[backend]
    best = [float("inf")] * len(funcs)
    for _ in range(suite.repeat):
        for index, func in enumerate(funcs):
            seconds = anyio.run(func, url, ops, backend=name, backend_options=options)
            best[index] = min(best[index], seconds / ops * 1e6)
    return best
