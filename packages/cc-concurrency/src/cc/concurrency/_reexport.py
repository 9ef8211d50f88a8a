"""What ``cc.concurrency`` re-exports, bound at import time, and why a name is missing.

``import cc.concurrency`` must work even when one of its distributions is
missing or broken: ``python -m cc.concurrency`` runs inside this package, and
it is the tool that explains the problem. So :func:`reexport` records each
distribution's :class:`ImportError` instead of raising it, and using a name
that could not be imported raises an :class:`ImportError` that says which
distribution failed and how to check and repair the installation.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["NAMES", "failures", "reexport"]

REDIS = "cc-redis"  # optional (cc-concurrency[redis]): its names only when installed

#: The names re-exported, by the distribution whose module (``cc.<name>``) has them.
NAMES: dict[str, tuple[str, ...]] = {
    "cc-primitives": (
        "Lock",
        "Semaphore",
        "CapacityLimiter",
        "Event",
        "Condition",
        "RateLimiter",
        "ConcurrencyError",
        "LockStatistics",
        "SemaphoreStatistics",
        "CapacityLimiterStatistics",
        "EventStatistics",
        "ConditionStatistics",
        "RateLimiterStatistics",
        "current_task_key",
        "task_name",
    ),
    "cc-core-helpers": (
        "async_gather",
        "async_map",
        "async_run",
        "async_sleep",
        "async_wait_for",
        "ValidationError",
        "AsyncMap",
    ),
    "cc-queues": (
        "QueueStatus",
        "QueueConfig",
        "BoundedQueue",
        "WorkQueue",
        "QueueStateError",
        "BatchSummary",
    ),
    "cc-locks": (
        "LockInfo",
        "LockManager",
        "AsyncLockInfo",
        "AsyncLockManager",
        "get_lock_manager",
        "get_async_lock_manager",
        "LockOrderError",
        "DeadlockError",
        "LockTimeoutError",
        "ManagedLock",
        "AsyncManagedLock",
        "LockUsageStatistics",
        "LockHierarchy",
        "Policy",
        "Lease",
        "LockLostError",
        "LockBackendError",
    ),
    REDIS: (
        "RedisLockBackend",
        "RedisRateLimiter",
        "RedisCapacityLimiter",
        "RedisRateLimiterStatistics",
        "RedisCapacityLimiterStatistics",
    ),
}

_failures: dict[str, str] = {}  # distribution -> why its module did not import


def failures() -> dict[str, str]:
    """Return the distributions whose names are missing, with the reason."""
    return dict(_failures)


def reexport(
    module: str, namespace: dict[str, Any]
) -> tuple[list[str], Callable[[str], object]]:
    """Bind every distribution's names in ``namespace``.

    A required distribution that cannot be imported keeps its names in
    ``__all__`` (using one raises an :class:`ImportError` saying why);
    cc-redis adds its names only when it imports.

    :return: the module's ``__all__``, and the ``__getattr__`` that says why
        a name is missing
    """
    exported = ["__version__"]
    for dist, names in NAMES.items():
        source = "cc." + dist.removeprefix("cc-").replace("-", "_")
        try:
            imported = importlib.import_module(source)
            for name in names:
                if not hasattr(imported, name):
                    raise ImportError(f"cannot import name {name!r} from {source!r}")
                namespace[name] = getattr(imported, name)
        except ImportError as error:
            absent = isinstance(error, ModuleNotFoundError) and error.name in (
                "cc",
                source,
            )
            if dist != REDIS or not absent:  # an absent cc-redis is no failure
                _failures[dist] = f"{type(error).__name__}: {error}"
            if dist == REDIS:
                continue
        exported += names

    def __getattr__(name: str) -> object:
        if name in NAMES[REDIS] and name not in exported:
            raise AttributeError(
                f"module {module!r} has no attribute {name!r}: it comes from "
                'cc-redis, which is not installed (pip install "cc-concurrency[redis]")'
            )
        if name in exported and _failures:
            broken = "; ".join(f"{d} ({why})" for d, why in sorted(_failures.items()))
            raise ImportError(
                f"{module}.{name} is not available because these cc distributions "
                f"could not be imported: {broken}. Run `python -m {module}` to check "
                f"the installation; `pip install --upgrade cc-concurrency` repairs it.",
                name=module,
            )
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return exported, __getattr__
