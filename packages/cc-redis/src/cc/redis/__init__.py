"""Redis-backed pieces of the cc toolkit, shared by processes and hosts.

* :class:`RedisLockBackend`: give it to a :class:`cc.locks.LockManager` or
  :class:`cc.locks.AsyncLockManager` as ``backend=`` and their locks are
  shared by every process using the same Redis server and namespace; each
  acquisition holds a :class:`cc.locks.Lease` with a fencing token, a lost
  lease surfaces as :class:`cc.locks.LockLostError`, an unreachable server
  as :class:`cc.locks.LockBackendError`.
"""

from cc.redis.__about__ import __version__ as __version__
from cc.redis._locks import RedisLockBackend

__all__ = ["RedisLockBackend"]

# Show the public module in reprs, tracebacks and docs, not the private one.
RedisLockBackend.__module__ = __name__
