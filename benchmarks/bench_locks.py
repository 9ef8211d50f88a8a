"""cc-locks against nested standard-library locks.

Each figure is the cost of taking the pair of locks ("a", "b") and letting
them go again, in microseconds: uncontended with threads, uncontended with
tasks (asyncio and trio), and with four threads contending for the pair.
"All checks" means the default policy ("raise": declared and learned order
checks), deadlock detection and hold-time tracking; "checks off" is
``policy="off", detect_deadlocks=False``. The "nested acquire" case takes "b"
inside a block that holds "a", which is where the order checks actually run.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from cc.locks import AsyncLockManager, LockManager
from cc.primitives import Lock

from harness import Suite

GROUP = "locks"
THREAD_OPS = 60_000
TASK_OPS = 30_000
CONTENDED_OPS = 40_000
CONTENDING_THREADS = 4

ON = "all checks"
OFF = "checks off"
CHECKS: dict[str, dict[str, Any]] = {
    ON: {},
    OFF: {"policy": "off", "detect_deadlocks": False},
}


def _rlock_pair(n: int) -> None:
    a, b = threading.RLock(), threading.RLock()
    for _ in range(n):
        with a, b:
            pass


def _manager_pair(checks: str) -> Callable[[int], None]:
    manager = LockManager({"a": 1, "b": 2}, **CHECKS[checks])
    acquire = manager.acquire

    def run(n: int) -> None:
        for _ in range(n):
            with acquire("a", "b"):
                pass

    return run


def _manager_nested(checks: str) -> Callable[[int], None]:
    manager = LockManager({"a": 1, "b": 2}, **CHECKS[checks])
    acquire = manager.acquire

    def run(n: int) -> None:
        for _ in range(n):
            with acquire("a"), acquire("b"):
                pass

    return run


def _contended(body: Callable[[int], None]) -> Callable[[int], None]:
    """Split ``n`` operations over threads that all run ``body`` at once."""

    def run(n: int) -> None:
        share = max(1, n // CONTENDING_THREADS)
        start = threading.Barrier(CONTENDING_THREADS)

        def work() -> None:
            start.wait()
            body(share)

        threads = [threading.Thread(target=work) for _ in range(CONTENDING_THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    return run


def _shared_rlock_pair() -> Callable[[int], None]:
    a, b = threading.RLock(), threading.RLock()

    def body(n: int) -> None:
        for _ in range(n):
            with a, b:
                pass

    return body


def _native_pair(backend: str) -> Callable[[], Callable[[int], Awaitable[None]]]:
    def make_run() -> Callable[[int], Awaitable[None]]:
        if backend == "trio":
            import trio

            a: Any = trio.Lock()
            b: Any = trio.Lock()
        else:
            a, b = asyncio.Lock(), asyncio.Lock()

        async def run(n: int) -> None:
            for _ in range(n):
                async with a, b:
                    pass

        return run

    return make_run


def _cc_lock_pair() -> Callable[[int], Awaitable[None]]:
    a, b = Lock(), Lock()

    async def run(n: int) -> None:
        for _ in range(n):
            async with a, b:
                pass

    return run


def _async_manager(
    checks: str, nested: bool
) -> Callable[[], Callable[[int], Awaitable[None]]]:
    def make_run() -> Callable[[int], Awaitable[None]]:
        manager = AsyncLockManager({"a": 1, "b": 2}, **CHECKS[checks])
        acquire = manager.acquire

        async def run_pair(n: int) -> None:
            for _ in range(n):
                async with acquire("a", "b"):
                    pass

        async def run_nested(n: int) -> None:
            for _ in range(n):
                async with acquire("a"), acquire("b"):
                    pass

        return run_nested if nested else run_pair

    return make_run


def collect(suite: Suite) -> None:
    """Pair acquisition with threads, with tasks, and under thread contention."""
    rlock = "nested threading.RLock"
    pair = 'pair ("a", "b"), uncontended'
    nested = 'nested acquire("a") then acquire("b"), uncontended'
    suite.time_sync(GROUP, pair, rlock, _rlock_pair, THREAD_OPS, baseline=True)
    suite.time_sync(GROUP, nested, rlock, _rlock_pair, THREAD_OPS, baseline=True)
    for checks in (ON, OFF):
        suite.time_sync(
            GROUP, pair, f"cc LockManager ({checks})",
            _manager_pair(checks), THREAD_OPS,
        )  # fmt: skip
        suite.time_sync(
            GROUP, nested, f"cc LockManager ({checks})",
            _manager_nested(checks), THREAD_OPS,
        )  # fmt: skip
    suite.goal(
        GROUP, pair, f"cc LockManager ({ON})", rlock, 5.0, backend="threads"
    )  # fmt: skip

    contended = f"pair, {CONTENDING_THREADS} threads contending"
    suite.time_sync(
        GROUP, contended, rlock, _contended(_shared_rlock_pair()),
        CONTENDED_OPS, baseline=True,
    )  # fmt: skip
    for checks in (ON, OFF):
        suite.time_sync(
            GROUP, contended, f"cc LockManager ({checks})",
            _contended(_manager_pair(checks)), CONTENDED_OPS,
        )  # fmt: skip
    suite.goal(
        GROUP, contended, f"cc LockManager ({ON})", rlock, 3.0, backend="threads"
    )  # fmt: skip

    for backend in ("asyncio", "trio"):
        native = "nested asyncio.Lock" if backend == "asyncio" else "nested trio.Lock"
        for case in (pair, nested):
            suite.time_async(
                GROUP, case, native, backend, _native_pair(backend),
                TASK_OPS, baseline=True,
            )  # fmt: skip
        suite.time_async(
            GROUP, pair, "nested cc.primitives.Lock", backend, _cc_lock_pair,
            TASK_OPS,
        )  # fmt: skip
        for checks in (ON, OFF):
            suite.time_async(
                GROUP, pair, f"cc AsyncLockManager ({checks})", backend,
                _async_manager(checks, nested=False), TASK_OPS,
            )  # fmt: skip
            suite.time_async(
                GROUP, nested, f"cc AsyncLockManager ({checks})", backend,
                _async_manager(checks, nested=True), TASK_OPS,
            )  # fmt: skip
        suite.goal(
            GROUP, pair, f"cc AsyncLockManager ({ON})", native, 5.0,
            backend=backend,
        )  # fmt: skip
