"""Async synchronization primitives that work on asyncio, uvloop and trio.

* :class:`Lock`: reentrant, task-owned, FIFO mutual exclusion.
* :class:`Semaphore`: counting semaphore, optionally bounded.
* :class:`CapacityLimiter`: at most N borrowers at once, resizable.
* :class:`Event`: a one-shot flag to wait for.
* :class:`Condition`: a condition variable on the reentrant lock.
* :class:`RateLimiter`: at most ``rate`` acquisitions per ``period``.
* :class:`ConcurrencyError`: base class of every error cc raises on purpose.

Every primitive has ``statistics()`` returning a frozen dataclass snapshot.
:func:`current_task_key` and :func:`task_name` expose the cheap task identity
that the primitives use to track owners.
"""

from cc.primitives.__about__ import __version__ as __version__
from cc.primitives._backend import current_task_key, task_name
from cc.primitives._condition import Condition, ConditionStatistics
from cc.primitives._errors import ConcurrencyError
from cc.primitives._event import Event, EventStatistics
from cc.primitives._limiter import CapacityLimiter, CapacityLimiterStatistics
from cc.primitives._lock import Lock, LockStatistics
from cc.primitives._rate import RateLimiter, RateLimiterStatistics
from cc.primitives._semaphore import Semaphore, SemaphoreStatistics

__all__ = [
    "Lock",
    "Semaphore",
    "CapacityLimiter",
    "Event",
    "Condition",
    "RateLimiter",
    "ConcurrencyError",
    # statistics snapshots returned by the primitives above
    "LockStatistics",
    "SemaphoreStatistics",
    "CapacityLimiterStatistics",
    "EventStatistics",
    "ConditionStatistics",
    "RateLimiterStatistics",
    # the cheap task identity the primitives use for ownership
    "current_task_key",
    "task_name",
]
