"""cc-primitives against the asyncio, anyio, trio and aiolimiter equivalents.

Each timed figure is the cost of one uncontended ``async with`` (acquire +
release) or one operation, in microseconds, on asyncio, uvloop and trio. Next
to cc's default rows stand the same classes with ``fast_acquire=True`` (never
yield) and ``False`` (checkpoint every call): the gap between the default and
``fast_acquire=True`` in one run is what cc's checkpoint rule costs. Memory
rows count the bytes that creating an object allocates (tracemalloc over many
objects), and the scaling rows show that a hand-off and a rate window cost
the same per operation or entry whatever their size.

Goals: ``cc Lock`` at most 1.8x ``asyncio.Lock``, ``cc Semaphore`` at most
0.8x and ``cc CapacityLimiter`` at most 2x ``asyncio.Semaphore`` (asyncio,
#14); each cheaper than anyio's own class on every backend (#14); cc's rule
at most 10% over ``fast_acquire=True`` (#18); ``cc RateLimiter`` at most 1.1x
aiolimiter, a ``cc Lock`` nobody waits for at most 200 bytes (#17).
"""

from __future__ import annotations

import asyncio
import threading
import tracemalloc
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
from aiolimiter import AsyncLimiter

from cc.primitives import CapacityLimiter, Lock, RateLimiter, Semaphore

from harness import Suite

GROUP = "primitives"
OPS = 200_000
BACKENDS = ("asyncio", "uvloop", "trio")
LOCK_CASE = "Lock: uncontended async with"
SEM_CASE = "Semaphore / CapacityLimiter: uncontended async with"
RATE_CASE = "RateLimiter: acquire with capacity to spare"
MEMORY_CASE = "Lock: bytes when nobody waits"
RULE_MAX = 1.10  # cc's checkpoint rule over fast_acquire=True (#18)

MakeRun = Callable[[], Callable[[int], Awaitable[None]]]


def _async_with(factory: Callable[[], AbstractAsyncContextManager[Any]]) -> MakeRun:
    def make_run() -> Callable[[int], Awaitable[None]]:
        cm = factory()

        async def run(n: int) -> None:
            for _ in range(n):
                async with cm:
                    pass

        return run

    return make_run


def _reentry() -> Callable[[int], Awaitable[None]]:
    lock = Lock()

    async def run(n: int) -> None:
        async with lock:
            for _ in range(n):
                async with lock:
                    pass

    return run


def _native(backend: str, name: str) -> tuple[str, Callable[[], Any]]:
    """Return the event loop's own Lock or Semaphore, named as the rows show it."""
    if backend == "trio":
        import trio

        if name == "Lock":
            return "trio.Lock", trio.Lock
        return "trio.Semaphore", lambda: trio.Semaphore(10)
    if name == "Lock":
        return "asyncio.Lock", asyncio.Lock
    return "asyncio.Semaphore", lambda: asyncio.Semaphore(10)


def _locks(suite: Suite, backend: str) -> None:
    native, factory = _native(backend, "Lock")
    rows: list[tuple[str, Callable[[], Any], bool]] = [
        (native, factory, True),
        ("anyio.Lock(fast_acquire=True)", lambda: anyio.Lock(fast_acquire=True), True),
        ("anyio.Lock()", anyio.Lock, False),
        ("cc Lock (reentrant)", Lock, False),
        ("cc Lock(fast_acquire=True)", lambda: Lock(fast_acquire=True), False),
        ("cc Lock(fast_acquire=False)", lambda: Lock(fast_acquire=False), False),
    ]
    for impl, make, baseline in rows:
        suite.time_async(
            GROUP, LOCK_CASE, impl, backend, _async_with(make), OPS, baseline=baseline
        )
    suite.time_async(
        GROUP, LOCK_CASE, "cc Lock re-entry (depth 2)", backend, _reentry, OPS
    )
    if backend == "asyncio":
        suite.goal(
            GROUP, LOCK_CASE, "cc Lock (reentrant)", native, 1.8, backend=backend
        )
    suite.goal(
        GROUP, LOCK_CASE, "cc Lock (reentrant)", "anyio.Lock(fast_acquire=True)",
        1.0, backend=backend,
    )  # fmt: skip
    suite.goal(
        GROUP, LOCK_CASE, "cc Lock (reentrant)", "cc Lock(fast_acquire=True)",
        RULE_MAX, backend=backend,
    )  # fmt: skip


def _semaphores(suite: Suite, backend: str) -> None:
    native, factory = _native(backend, "Semaphore")
    rows: list[tuple[str, Callable[[], Any], bool]] = [
        (native, factory, True),
        (
            "anyio.Semaphore(fast_acquire=True)",
            lambda: anyio.Semaphore(10, fast_acquire=True),
            False,
        ),
        ("anyio.CapacityLimiter", lambda: anyio.CapacityLimiter(10), True),
        ("cc Semaphore", lambda: Semaphore(10), False),
        (
            "cc Semaphore(fast_acquire=True)",
            lambda: Semaphore(10, fast_acquire=True),
            False,
        ),
        ("cc CapacityLimiter", lambda: CapacityLimiter(10), False),
        (
            "cc CapacityLimiter(fast_acquire=True)",
            lambda: CapacityLimiter(10, fast_acquire=True),
            False,
        ),
    ]
    for impl, make, baseline in rows:
        suite.time_async(
            GROUP, SEM_CASE, impl, backend, _async_with(make), OPS, baseline=baseline
        )
    if backend == "asyncio":
        suite.goal(GROUP, SEM_CASE, "cc Semaphore", native, 0.8, backend=backend)
        suite.goal(GROUP, SEM_CASE, "cc CapacityLimiter", native, 2.0, backend=backend)
    suite.goal(
        GROUP, SEM_CASE, "cc Semaphore", "anyio.Semaphore(fast_acquire=True)", 1.0,
        backend=backend,
    )  # fmt: skip
    suite.goal(
        GROUP, SEM_CASE, "cc CapacityLimiter", "anyio.CapacityLimiter", 1.0,
        backend=backend,
    )  # fmt: skip
    for impl in ("cc Semaphore", "cc CapacityLimiter"):
        suite.goal(
            GROUP, SEM_CASE, impl, f"{impl}(fast_acquire=True)", RULE_MAX,
            backend=backend,
        )  # fmt: skip


def _rate_limiters(suite: Suite, backend: str) -> None:
    if backend != "trio":  # aiolimiter runs on asyncio only
        suite.time_async(
            GROUP, RATE_CASE, "aiolimiter.AsyncLimiter", backend,
            _async_with(lambda: AsyncLimiter(1e12, 1.0)), OPS, baseline=True,
            note="a leaky bucket: up to about 2x the rate in one window",
        )  # fmt: skip
        suite.goal(
            GROUP, RATE_CASE, "cc RateLimiter", "aiolimiter.AsyncLimiter", 1.1,
            backend=backend,
        )  # fmt: skip
    suite.time_async(
        GROUP, RATE_CASE, "cc RateLimiter", backend,
        _async_with(lambda: RateLimiter(1e12, period=1.0)), OPS,
        note="an exact sliding window",
    )  # fmt: skip
    suite.time_async(
        GROUP, RATE_CASE, "cc RateLimiter(fast_acquire=True)", backend,
        _async_with(lambda: RateLimiter(1e12, period=1.0, fast_acquire=True)), OPS,
    )  # fmt: skip


def _bytes_each(make: Callable[[], object], count: int = 10_000) -> float:
    """Bytes allocated per object when ``count`` of them are made and kept."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [make() for _ in range(count)]
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    list_bytes = 8 * len(kept) + 56  # the list holding them, not theirs
    return (after - before - list_bytes) / count


def _memory(suite: Suite) -> None:
    """Bytes per lock nobody waits for, measured outside any event loop."""
    suite.record(
        GROUP, MEMORY_CASE, "the goal: 200 B", 200, "B", baseline=True,
    )  # fmt: skip
    for impl, make in [
        ("threading.RLock", threading.RLock),
        ("asyncio.Lock", asyncio.Lock),
        ("anyio.Lock", anyio.Lock),
        ("cc Lock", Lock),
    ]:
        suite.record(GROUP, MEMORY_CASE, impl, _bytes_each(make), "B")
    suite.goal(GROUP, MEMORY_CASE, "cc Lock", "the goal: 200 B", 1.0, backend="-")


def _window_bytes(entries: int) -> float:
    """Bytes per acquisition held in a RateLimiter's window of ``entries``."""

    async def fill() -> float:
        limiter = RateLimiter(entries, period=3600.0, fast_acquire=True)
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(entries):
                await limiter.acquire()
            after = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        return (after - before) / entries

    return anyio.run(fill)


def _hand_off(waiters: int) -> MakeRun:
    """Hand a Lock from task to task while ``waiters`` more tasks wait."""

    def make_run() -> Callable[[int], Awaitable[None]]:
        lock = Lock()

        async def run(n: int) -> None:
            passes = 0

            async def waiter() -> None:
                nonlocal passes
                while passes < n:
                    async with lock:
                        passes += 1
                        await anyio.lowlevel.checkpoint()

            async with anyio.create_task_group() as tg:
                for _ in range(waiters):
                    tg.start_soon(waiter)

        return run

    return make_run


def collect(suite: Suite) -> None:
    """Lock, Semaphore, CapacityLimiter and RateLimiter, on every backend."""
    for backend in BACKENDS:
        _locks(suite, backend)
        _semaphores(suite, backend)
        _rate_limiters(suite, backend)
    _memory(suite)
    window = suite.scaling(
        GROUP, "RateLimiter: bytes per acquisition in the window", "cc RateLimiter",
        backend="-", size_label="acquisitions in the window", unit="B",
        max_growth=1.2,
    )  # fmt: skip
    for entries in (1_000, 10_000, 100_000):
        window.add(entries, _window_bytes(entries))
    suite.time_async_scaling(
        GROUP, "Lock: hand-off with tasks waiting", "cc Lock", "asyncio",
        sizes=[10, 100, 1_000], size_label="waiting tasks",
        make_run=_hand_off, ops=lambda waiting: 100 * waiting, max_growth=2.0,
    )  # fmt: skip
