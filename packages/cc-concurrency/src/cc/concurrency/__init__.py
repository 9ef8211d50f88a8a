"""The cc concurrency toolkit: every public name of the four cc packages.

Importing from ``cc.concurrency`` is the same as importing from the package
that defines the name (``cc.primitives``, ``cc.core_helpers``, ``cc.queues``,
or ``cc.locks``); the objects are identical. ``python -m cc.concurrency``
prints the installed versions and checks that they fit together.
"""

from cc.concurrency.__about__ import __version__
from cc.core_helpers import (
    AsyncMap,
    ValidationError,
    async_gather,
    async_map,
    async_run,
    async_sleep,
    async_wait_for,
)
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
    RedisLockBackend,
    get_async_lock_manager,
    get_lock_manager,
)
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
from cc.queues import (
    BatchSummary,
    BoundedQueue,
    QueueConfig,
    QueueStateError,
    QueueStatus,
    WorkQueue,
)

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
    "RedisLockBackend",
    "Lease",
    "LockLostError",
    "LockBackendError",
]
