"""RedisLockBackend: a lock store on one Redis server, for both lock managers."""

from __future__ import annotations

import math
import secrets
import sys
from collections.abc import Callable
from typing import Any

from cc.locks.lowlevel import AWAIT, DIRECT, IN_THREAD, Reporter
from cc.redis._client import Endpoint, RedisLink
from cc.redis._lease import LeaseSession
from cc.redis._scripts import Keys
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = ["RedisLockBackend"]


class RedisLockBackend:
    """Share a lock manager's locks with every process using the same Redis.

    Pass one to :class:`cc.locks.LockManager` or
    :class:`cc.locks.AsyncLockManager` as ``backend=``: the manager keeps its
    API, ordering rules and checks, and each lock becomes one key on the
    server, shared by every manager using the same server, database and
    ``namespace``, in any process on any host.

    Each acquisition gets a new owner token and a lease (a TTL on the key)
    that the manager renews in the background while the holder lives, so a
    crashed holder blocks others for at most ``lease`` seconds. Only the
    owner can release it (an atomic compare-and-delete), and each
    acquisition hands out a *fencing token* that grows with every
    acquisition of that lock (see :class:`cc.locks.Lease`): pass it to the
    storage you protect and let it refuse writes that carry an older one.
    Waiters sleep until a release is published (Redis pub/sub), trying again
    at least every ``recheck_interval`` and when the holder's lease would end.

    The managers' deadlock checks span the processes too (unless ``policy``
    is ``"off"`` or ``detect_deadlocks`` false): each waiter publishes its
    wait (for as long as a lease) and each try follows the chain of waits
    and holders in Redis, so a cycle between processes is found by the try
    that closes it and by every other member within ``recheck_interval``,
    and handled by the manager's policy (with ``"raise"``, only the cycle's
    youngest waiter gets :class:`cc.locks.DeadlockError`). Learned orders are
    shared too, read every ``recheck_interval``; reports name pid and host.

    What one Redis server guarantees, and what it does not:

    * Mutual exclusion holds while the server keeps its data and the holder
      renews in time. A restart without persistence, or a failover to a
      replica that missed the latest writes, forgets held locks: two holders
      can then overlap.
    * A lease is time: a holder paused longer than its lease (a stopped
      process, a long GC or swap, a clock jump on the server) loses the lock
      without running any code. The manager notices at the next renewal or
      release (``Lease.lost``, ``on_lost``, :class:`cc.locks.LockLostError`),
      but the paused block may already have acted. Fencing tokens, checked by
      the protected resource, are the real protection.
    * Redlock (one lock on several independent servers) is not offered: it
      still rests on bounded pauses and clock drift and gives no fencing
      token, so it buys no safety that a fencing token on one server does
      not; use Redis' own replication for availability.

    :param redis: where the server is: a URL (``redis://host:6379/0``,
        ``rediss://...``, ``unix:///path?db=0``) from which the manager
        makes the client it needs and closes it again (its credentials show
        as ``***`` in every repr, error and log line), or a redis-py client
        of your own that you close yourself: ``redis.asyncio.Redis`` for an
        ``AsyncLockManager`` on asyncio, ``redis.Redis`` for a
        ``LockManager`` (and for an ``AsyncLockManager`` on trio, where its
        calls run in worker threads)
    :param namespace: the prefix of every key and channel; managers share a
        lock when they use the same server, database, namespace and name
    :param lease: seconds a lease lasts unless renewed; a crashed holder
        blocks others at most this long
    :param renew_interval: seconds between renewals of the held leases (one
        round trip for all of them); a third of ``lease`` by default
    :param recheck_interval: the longest a waiter sleeps before trying
        again without having been told of a release (and looking for a
        deadlock again), and how often a manager reads the lock orders that
        other processes learned
    :param on_lost: called with the :class:`cc.locks.Lease` when a held lease is
        found lost (from the renewal task or thread; it must not block)
    :raises ValueError: for a bad interval or an empty namespace
    :raises TypeError: for a ``redis`` argument that is neither a URL nor a
        redis-py client

    >>> backend = RedisLockBackend("redis://127.0.0.1:6379/0", namespace="shop")
    >>> backend
    <RedisLockBackend redis://127.0.0.1:6379/0 namespace='shop' lease=10.0 s>
    """

    def __init__(
        self,
        redis: str | Redis | AsyncRedis,
        *,
        namespace: str = "cc-locks",
        lease: float = 10.0,
        renew_interval: float | None = None,
        recheck_interval: float = 1.0,
        on_lost: Callable[[Any], object] | None = None,
    ) -> None:
        if not isinstance(namespace, str) or not namespace:
            raise ValueError(f"namespace must be a non-empty str, not {namespace!r}")
        if not _positive(lease):
            raise ValueError(f"lease must be a number of seconds > 0, not {lease!r}")
        if renew_interval is None:
            renew_interval = lease / 3
        elif not (_positive(renew_interval) and renew_interval < lease):
            raise ValueError(
                "renew_interval must be a number of seconds > 0 and shorter "
                f"than the lease ({lease} s), not {renew_interval!r}"
            )
        if not _positive(recheck_interval):
            raise ValueError(
                "recheck_interval must be a number of seconds > 0, "
                f"not {recheck_interval!r}"
            )
        if not isinstance(redis, (str, Redis, AsyncRedis)):
            raise TypeError(
                "redis must be a redis:// URL or a redis-py client "
                f"(redis.Redis or redis.asyncio.Redis), not {type(redis).__name__}"
            )
        if on_lost is not None and not callable(on_lost):
            raise TypeError(f"on_lost must be callable, not {type(on_lost).__name__}")
        self._redis = redis
        self._namespace = namespace
        self._lease = float(lease)
        self._renew_interval = float(renew_interval)
        self._recheck_interval = float(recheck_interval)
        self._on_lost = on_lost
        self._keys = Keys(namespace)

    def __repr__(self) -> str:
        where = self._where() if isinstance(self._redis, str) else type(self._redis)
        return (
            f"<{type(self).__name__} {where} namespace={self._namespace!r} "
            f"lease={self._lease} s>"
        )

    @property
    def namespace(self) -> str:
        """The prefix of every key and channel of this backend."""
        return self._namespace

    @property
    def lease(self) -> float:
        """Seconds a lease lasts unless it is renewed."""
        return self._lease

    @property
    def renew_interval(self) -> float:
        """Seconds between two renewals of the held leases."""
        return self._renew_interval

    @property
    def recheck_interval(self) -> float:
        """The longest a waiter sleeps before trying again unprompted."""
        return self._recheck_interval

    def lock_key(self, name: str) -> str:
        """Return the Redis key of the lock ``name`` (for inspection and tests).

        >>> RedisLockBackend("redis://localhost", namespace="shop").lock_key("cart")
        'shop:lock:{cart}'
        """
        return self._keys.lock(name)

    # -- connecting ------------------------------------------------------------

    def _where(self) -> Endpoint:
        if isinstance(self._redis, str):
            return Endpoint(self._redis)
        kwargs = getattr(
            getattr(self._redis, "connection_pool", None), "connection_kwargs", {}
        )
        if "path" in kwargs:
            return Endpoint(f"unix://{kwargs['path']}")
        return Endpoint(f"redis://{kwargs.get('host', '?')}:{kwargs.get('port', '?')}")

    def connect(
        self, session: str, *, tasks: bool, link_type: type[RedisLink] = RedisLink
    ) -> RedisLink:
        """Return a link to the server for the session ``session``.

        Threads use redis-py's blocking client; tasks on asyncio its asyncio
        client; tasks elsewhere (trio) the blocking client in worker threads.
        ``link_type`` is the kind of link (the shared limits use their own).

        :raises TypeError: for a client of your own of the wrong kind
        """
        aio: Any = sys.modules.get("asyncio")
        on_asyncio = aio is not None and aio._get_running_loop() is not None
        mode = AWAIT if tasks and on_asyncio else IN_THREAD if tasks else DIRECT
        wanted: Any = AsyncRedis if mode == AWAIT else Redis
        client: Any = self._redis
        owned = isinstance(client, str)
        if owned:
            # Our own clients do not retry on their own: the links retry each
            # script once themselves, and decide what a retried release means.
            # Timeouts keep a dead server from holding a caller, or the
            # renewal, past the lease.
            retry = (AsyncRetry if mode == AWAIT else Retry)(NoBackoff(), 0)
            timeout = max(1.0, self._lease / 4)
            client = wanted.from_url(client, retry=retry, socket_timeout=timeout,
                                     socket_connect_timeout=timeout)  # fmt: skip
        elif not isinstance(client, wanted):
            raise TypeError(
                "an AsyncLockManager on asyncio needs a redis.asyncio.Redis client "
                f"or a URL, not {type(client).__name__}"
                if mode == AWAIT
                else "a LockManager, or an AsyncLockManager outside asyncio, needs "
                f"a redis.Redis client or a URL, not {type(client).__name__} "
                "(redis.asyncio clients work only on asyncio)"
            )
        return link_type(
            client, self._keys, session, self._where(), owned=owned, mode=mode
        )

    def session(self, reporter: Reporter, board: Any, *, tasks: bool) -> LeaseSession:
        """Return a new session of a lock manager on this server (the store interface).

        :raises TypeError: for a client of your own of the wrong kind
        """
        session_id = secrets.token_hex(8)
        link = self.connect(session_id, tasks=tasks)
        return self._lease_session(reporter, link, board, session_id)

    def _lease_session(
        self, reporter: Reporter, link: RedisLink, board: Any, session_id: str
    ) -> LeaseSession:
        """Return a lease session on ``link`` with this backend's settings."""
        return LeaseSession(
            reporter, link, board, session_id, lease=self._lease,
            renew_interval=self._renew_interval,
            recheck_interval=self._recheck_interval, on_lost=self.lost,
        )  # fmt: skip

    def lost(self, lease: Any) -> None:
        """Call ``on_lost`` with a lost :class:`cc.locks.Lease` (if it was given)."""
        if self._on_lost is not None:
            self._on_lost(lease)


def _positive(value: object) -> bool:
    try:
        return (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and value > 0
            and math.isfinite(value)
        )
    except OverflowError:  # an int beyond any float: not a usable duration
        return False
