"""cc-primitives against the asyncio, anyio and trio equivalents.

Each figure is the cost of one uncontended ``async with`` (acquire + release)
or one operation, in microseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio

from cc.primitives import CapacityLimiter, Lock, RateLimiter, Semaphore

from harness import Suite

GROUP = "primitives"
OPS = 200_000


def _async_with(
    factory: Callable[[], AbstractAsyncContextManager[Any]],
) -> Callable[[], Callable[[int], Awaitable[None]]]:
    def make_run() -> Callable[[int], Awaitable[None]]:
        cm = factory()

        async def run(n: int) -> None:
            for _ in range(n):
                async with cm:
                    pass

        return run

    return make_run


def _trio_lock() -> Any:
    import trio

    return trio.Lock()


def _trio_semaphore() -> Any:
    import trio

    return trio.Semaphore(10)


def collect(suite: Suite) -> None:
    """Lock, Semaphore, CapacityLimiter and RateLimiter, on every backend."""
    for backend in ("asyncio", "trio"):
        lock_case = "Lock: uncontended async with"
        if backend == "asyncio":
            suite.time_async(
                GROUP, lock_case, "asyncio.Lock", backend,
                _async_with(asyncio.Lock), OPS, baseline=True,
            )  # fmt: skip
        else:
            suite.time_async(
                GROUP, lock_case, "trio.Lock", backend,
                _async_with(_trio_lock), OPS, baseline=True,
            )  # fmt: skip
        suite.time_async(
            GROUP, lock_case, "anyio.Lock(fast_acquire=True)", backend,
            _async_with(lambda: anyio.Lock(fast_acquire=True)), OPS, baseline=True,
        )  # fmt: skip
        suite.time_async(
            GROUP, lock_case, "anyio.Lock()", backend,
            _async_with(anyio.Lock), OPS,
        )  # fmt: skip
        suite.time_async(
            GROUP, lock_case, "cc Lock (reentrant)", backend,
            _async_with(Lock), OPS,
        )  # fmt: skip

        def _reentrant() -> Callable[[int], Awaitable[None]]:
            lock = Lock()

            async def run(n: int) -> None:
                async with lock:
                    for _ in range(n):
                        async with lock:
                            pass

            return run

        suite.time_async(
            GROUP, lock_case, "cc Lock re-entry (depth 2)", backend, _reentrant, OPS
        )

        sem_case = "Semaphore / CapacityLimiter: uncontended async with"
        if backend == "asyncio":
            suite.time_async(
                GROUP, sem_case, "asyncio.Semaphore", backend,
                _async_with(lambda: asyncio.Semaphore(10)), OPS, baseline=True,
            )  # fmt: skip
        else:
            suite.time_async(
                GROUP, sem_case, "trio.Semaphore", backend,
                _async_with(_trio_semaphore), OPS, baseline=True,
            )  # fmt: skip
        suite.time_async(
            GROUP, sem_case, "anyio.Semaphore(fast_acquire=True)", backend,
            _async_with(lambda: anyio.Semaphore(10, fast_acquire=True)), OPS,
        )  # fmt: skip
        suite.time_async(
            GROUP, sem_case, "anyio.CapacityLimiter", backend,
            _async_with(lambda: anyio.CapacityLimiter(10)), OPS, baseline=True,
        )  # fmt: skip
        suite.time_async(
            GROUP, sem_case, "cc Semaphore", backend,
            _async_with(lambda: Semaphore(10)), OPS,
        )  # fmt: skip
        suite.time_async(
            GROUP, sem_case, "cc CapacityLimiter", backend,
            _async_with(lambda: CapacityLimiter(10)), OPS,
        )  # fmt: skip

        rate_case = "RateLimiter: acquire with capacity to spare"
        suite.time_async(
            GROUP, rate_case, "cc RateLimiter", backend,
            _async_with(lambda: RateLimiter(1e12, period=1.0)), OPS,
        )  # fmt: skip

        native = "asyncio.Lock" if backend == "asyncio" else "trio.Lock"
        suite.goal(
            GROUP, lock_case, "cc Lock (reentrant)", native, 2.5, backend=backend
        )
        suite.goal(
            GROUP, lock_case, "cc Lock (reentrant)", "anyio.Lock(fast_acquire=True)",
            1.0, backend=backend,
        )  # fmt: skip
        native_sem = "asyncio.Semaphore" if backend == "asyncio" else "trio.Semaphore"
        for impl in ("cc Semaphore", "cc CapacityLimiter"):
            suite.goal(GROUP, sem_case, impl, native_sem, 2.5, backend=backend)
