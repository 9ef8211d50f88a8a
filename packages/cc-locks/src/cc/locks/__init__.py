"""Ordered named-lock managers for threads and async tasks, with deadlock checks.

* :class:`LockManager` (threads) and :class:`AsyncLockManager` (tasks, on
  asyncio, uvloop and trio): register named locks with an order, take any set
  of them in ascending order under one deadline, and let the manager catch
  order violations, learned-order inversions and live deadlocks.
* :class:`LockInfo` / :class:`AsyncLockInfo`: a registered lock's record.
* :class:`ManagedLock` / :class:`AsyncManagedLock`: the lock objects the
  managers hand out (``get_lock``), usable like an RLock or a
  :class:`cc.primitives.Lock`.
* :func:`get_lock_manager` / :func:`get_async_lock_manager`: the process-wide
  managers.
* :class:`LockOrderError`, :class:`DeadlockError`, :class:`LockTimeoutError`:
  what goes wrong, with both acquisition sites or the holder named.
* :class:`LockUsageStatistics`: per-lock contention figures.
* ``backend=``: share a manager's locks with other processes and hosts
  through a store, such as ``cc.redis.RedisLockBackend`` (``pip install
  cc-redis``); each acquisition then holds a :class:`Lease` with a fencing
  token, a lost lease surfaces as :class:`LockLostError`, an unreachable
  store as :class:`LockBackendError`.
"""

from cc.locks.__about__ import __version__ as __version__
from cc.locks._async import AsyncLockInfo, AsyncLockManager, AsyncManagedLock
from cc.locks._errors import (
    DeadlockError,
    LockBackendError,
    LockLostError,
    LockOrderError,
    LockTimeoutError,
)
from cc.locks._hierarchy import LockHierarchy, Policy
from cc.locks._records import LockUsageStatistics
from cc.locks._singletons import get_async_lock_manager, get_lock_manager
from cc.locks._thread import LockInfo, LockManager, ManagedLock
from cc.locks.lowlevel import Lease

__all__ = [
    "LockInfo",
    "LockManager",
    "AsyncLockInfo",
    "AsyncLockManager",
    "get_lock_manager",
    "get_async_lock_manager",
    "LockOrderError",
    "DeadlockError",
    # also public: what the names above hand out or accept
    "LockTimeoutError",
    "ManagedLock",
    "AsyncManagedLock",
    "LockUsageStatistics",
    "LockHierarchy",
    "Policy",
    # locks shared by processes through a store (backend=)
    "Lease",
    "LockLostError",
    "LockBackendError",
]

# Show the public module in reprs, tracebacks and docs, not the private one.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type):
        _obj.__module__ = __name__
del _name, _obj
