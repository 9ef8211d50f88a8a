"""Redis-backed pieces of the cc toolkit, shared by processes and hosts.

* :class:`RedisLockBackend`: give it to a :class:`cc.locks.LockManager` or
  :class:`cc.locks.AsyncLockManager` as ``backend=`` and their locks are
  shared by every process using the same Redis server and namespace; each
  acquisition holds a :class:`cc.locks.Lease` with a fencing token, a lost
  lease surfaces as :class:`cc.locks.LockLostError`, an unreachable server
  as :class:`cc.locks.LockBackendError`.
* :class:`RedisRateLimiter`: at most ``rate`` acquisitions in any window of
  ``period`` seconds, counted over every process (exact, by the server's
  clock, first come first served).
* :class:`RedisCapacityLimiter`: at most ``total_tokens`` borrowers at once
  in every process; tokens are leases, so a dead process's token comes back.
"""

from cc.redis.__about__ import __version__ as __version__
from cc.redis._capacity import RedisCapacityLimiter, RedisCapacityLimiterStatistics
from cc.redis._locks import RedisLockBackend
from cc.redis._rate import RedisRateLimiter, RedisRateLimiterStatistics

__all__ = [
    "RedisCapacityLimiter",
    "RedisCapacityLimiterStatistics",
    "RedisLockBackend",
    "RedisRateLimiter",
    "RedisRateLimiterStatistics",
]

# Show the public module in reprs, tracebacks and docs, not the private one.
for _public in (
    RedisCapacityLimiter, RedisCapacityLimiterStatistics, RedisLockBackend,
    RedisRateLimiter, RedisRateLimiterStatistics,
):  # fmt: skip
    _public.__module__ = __name__
del _public
