"""The cc concurrency toolkit: every public name of the four cc packages.

Importing from ``cc.concurrency`` is the same as importing from the package
that defines the name (``cc.primitives``, ``cc.core_helpers``, ``cc.queues``,
or ``cc.locks``; and ``cc.redis`` when it is installed, with
``pip install "cc-concurrency[redis]"``); the objects are identical.
``python -m cc.concurrency`` prints the installed versions and checks that
they fit together.
"""

from typing import TYPE_CHECKING

from cc.concurrency.__about__ import __version__
from cc.concurrency._reexport import missing_name_error as _missing_name_error
from cc.concurrency._reexport import record_failure as _record_failure

try:
    from cc.core_helpers import (
        AsyncMap,
        ValidationError,
        async_gather,
        async_map,
        async_run,
        async_sleep,
        async_wait_for,
    )
except ImportError as error:  # reported by python -m cc.concurrency
    _record_failure("cc-core-helpers", error)
try:
    from cc.locks import (
        AsyncLockInfo,
        AsyncLockManager,
        AsyncManagedLock,
        DeadlockError,
        Lease,
        LockBackendError,
        LockHierarchy,
        LockInfo,
        LockLostError,
        LockManager,
        LockOrderError,
        LockTimeoutError,
        LockUsageStatistics,
        ManagedLock,
        Policy,
        get_async_lock_manager,
        get_lock_manager,
    )
except ImportError as error:  # reported by python -m cc.concurrency
    _record_failure("cc-locks", error)
try:
    from cc.primitives import (
        CapacityLimiter,
        CapacityLimiterStatistics,
        ConcurrencyError,
        Condition,
        ConditionStatistics,
        Event,
        EventStatistics,
        Lock,
        LockStatistics,
        RateLimiter,
        RateLimiterStatistics,
        Semaphore,
        SemaphoreStatistics,
        current_task_key,
        task_name,
    )
except ImportError as error:  # reported by python -m cc.concurrency
    _record_failure("cc-primitives", error)
try:
    from cc.queues import (
        BatchSummary,
        BoundedQueue,
        QueueConfig,
        QueueStateError,
        QueueStatus,
        WorkQueue,
    )
except ImportError as error:  # reported by python -m cc.concurrency
    _record_failure("cc-queues", error)
# The optional cc-redis (the "redis" extra): its names are there when it is.
_with_redis = False
try:
    from cc.redis import (
        RedisCapacityLimiter,
        RedisCapacityLimiterStatistics,
        RedisLockBackend,
        RedisRateLimiter,
        RedisRateLimiterStatistics,
    )
except ModuleNotFoundError as error:
    if error.name not in ("cc", "cc.redis"):  # installed, but broken
        _record_failure("cc-redis", error)
except ImportError as error:  # reported by python -m cc.concurrency
    _record_failure("cc-redis", error)
else:
    _with_redis = True

__all__ = [
    "__version__",
    # cc.primitives
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
    # cc.core_helpers
    "async_gather",
    "async_map",
    "async_run",
    "async_sleep",
    "async_wait_for",
    "ValidationError",
    "AsyncMap",
    # cc.queues
    "QueueStatus",
    "QueueConfig",
    "BoundedQueue",
    "WorkQueue",
    "QueueStateError",
    "BatchSummary",
    # cc.locks
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
]
if _with_redis:
    __all__ += [
        "RedisLockBackend",
        "RedisRateLimiter",
        "RedisCapacityLimiter",
        "RedisRateLimiterStatistics",
        "RedisCapacityLimiterStatistics",
    ]
# What a program may ask for without cc-redis (told how to install it).
_REDIS_NAMES = (
    "RedisLockBackend",
    "RedisRateLimiter",
    "RedisCapacityLimiter",
    "RedisRateLimiterStatistics",
    "RedisCapacityLimiterStatistics",
)


if not TYPE_CHECKING:  # type checkers see the imports above, never this

    def __getattr__(name: str) -> object:
        if name in _REDIS_NAMES:
            raise AttributeError(
                f"module {__name__!r} has no attribute {name!r}: it comes from "
                'cc-redis, which is not installed (pip install "cc-concurrency[redis]")'
            )
        raise _missing_name_error(__name__, name, __all__)
