"""Redis as the place where a lock manager's locks live: keys, scripts, clients.

Every lock ``name`` of a ``namespace`` is four keys in one hash slot:

* ``<namespace>:lock:{<name>}``: a hash that exists while some process holds
  the lock: the holder's owner ``token`` (new for every acquisition), its
  ``fence`` (fencing token), ``since`` (server time in microseconds),
  ``holder``, ``host``, ``pid`` and ``site``. Its TTL is the lease.
* ``<namespace>:lock:{<name>}:fence``: the last fencing token handed out;
  it never expires, so tokens keep growing across holders.
* ``<namespace>:lock:{<name>}:queue``: the waiters' tokens, first come
  first; and ``...:queued``, a sorted set of the same tokens scored by the
  server time (ms) until which each waiter's place holds. A waiter checks in
  (tries again) at least every ``recheck_interval``, which renews its place;
  one that stops checking in (crashed, cancelled without a word) loses its
  place once that time passed, so it cannot hold up the others for longer.
  Both keys expire when no waiter is left to renew them.

A free lock goes to the first live waiter in the queue: a newcomer, and the
holder that just let go, queue behind the waiters already there instead of
barging past them. A release wakes only that first waiter, by publishing the
lock's name on the channel ``<namespace>:wake:<session>`` of the waiter's
session (the first part of its token), so that a release wakes one process,
not all of them, and an uncontended release costs no message.

Each step is one Lua script, so it is atomic on the server: take (set the
hash if the lock is free and no earlier waiter is due, else queue and report
the holder and its remaining TTL), renew (extend the TTL of the hashes whose
token still matches), release (delete the hashes whose token still matches,
leave the queue, and wake the next waiter) and inspect (holders and TTLs for
``get_lock_status()``).

Nothing here imports redis-py at import time: ``cc.locks`` works without the
``redis`` extra, and this module asks for it only when a backend connects.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import anyio

from cc.locks._errors import LockBackendError
from cc.locks._store import AWAIT, DIRECT, IN_THREAD, Call, RemoteHolder, Steps, Taken

if TYPE_CHECKING:
    import redis
    import redis.asyncio

__all__ = ["RedisLink", "RedisLockBackend"]


class _Script:
    """A Lua script and its SHA1, run with EVALSHA (EVAL when not cached)."""

    __slots__ = ("sha", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()


# Shared by the take and release scripts: the first live waiter of a queue
# (KEYS index q: the list, q + 1: the check-in times), after dropping the
# waiters at its head that stopped checking in (crashed, or gone).
_HEAD = """
local function now_ms()
  local now = redis.call('TIME')
  return tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end
local function live_head(queue, times, now)
  while true do
    local head = redis.call('LINDEX', queue, 0)
    if not head then
      return false, 0
    end
    local until_ms = tonumber(redis.call('ZSCORE', times, head) or 0)
    if until_ms > now then
      return head, until_ms - now
    end
    redis.call('LPOP', queue)
    redis.call('ZREM', times, head)
  end
end
"""

# KEYS: lock, fence, queue, check-in times
# ARGV: token, lease ms, holder, host, pid, site, queue ms (0: do not queue)
# -> {1, fence, since_us} taken (again, for a retried call)
# -> {0, pttl_ms, {holder, host, pid, since_us, site, fence}} held by another
# -> {0, ms, {}} free, but an earlier waiter's turn lasts at most ms more
_TAKE = _Script(
    _HEAD
    + """
local current = redis.call('HGET', KEYS[1], 'token')
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, redis.call('HGET', KEYS[1], 'fence'), redis.call('HGET', KEYS[1], 'since')}
end
local now = false
local head, head_ms = false, 0
if redis.call('EXISTS', KEYS[3]) == 1 then
  now = now_ms()
  head, head_ms = live_head(KEYS[3], KEYS[4], now)
end
if current or (head and head ~= ARGV[1]) then
  local queue_ms = tonumber(ARGV[7])
  if queue_ms > 0 then
    now = now or now_ms()
    if not redis.call('ZSCORE', KEYS[4], ARGV[1]) then
      redis.call('RPUSH', KEYS[3], ARGV[1])
    end
    redis.call('ZADD', KEYS[4], now + queue_ms, ARGV[1])
    for q = 3, 4 do
      if redis.call('PTTL', KEYS[q]) < queue_ms then
        redis.call('PEXPIRE', KEYS[q], queue_ms)
      end
    end
  end
  if current then
    return {0, redis.call('PTTL', KEYS[1]),
      redis.call('HMGET', KEYS[1], 'holder', 'host', 'pid', 'since', 'site', 'fence')}
  end
  return {0, head_ms, {}}
end
if head then
  redis.call('LPOP', KEYS[3])
  redis.call('ZREM', KEYS[4], head)
end
local time = redis.call('TIME')
local since = time[1] .. string.format('%06d', tonumber(time[2]))
local last = redis.call('GET', KEYS[2])
if not last or tonumber(last) < tonumber(since) then
  redis.call('SET', KEYS[2], since)
end
local fence = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'token', ARGV[1], 'fence', fence, 'since', since,
  'holder', ARGV[3], 'host', ARGV[4], 'pid', ARGV[5], 'site', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, fence, since}
"""
)

# KEYS: lock 1, queue 1, check-in times 1, lock 2, ...
# ARGV: wake channel prefix, token 1, name 1, token 2, name 2, ...
# -> per lock: 1 released, 0 no longer held by anyone, -1 held by another
# A token still queued (a waiter that gave up) leaves its queue. When the
# lock is free afterwards, the first live waiter, and only that one, is
# told: its lock's name is published on its session's wake channel.
_RELEASE = _Script(
    _HEAD
    + """
local result = {}
for i = 1, #KEYS, 3 do
  local token = ARGV[(i - 1) / 3 * 2 + 2]
  local current = redis.call('HGET', KEYS[i], 'token')
  if current == token then
    redis.call('DEL', KEYS[i])
    current = false
    result[#result + 1] = 1
  elseif current then
    result[#result + 1] = -1
  else
    result[#result + 1] = 0
  end
  if redis.call('EXISTS', KEYS[i + 1]) == 1 then
    if redis.call('ZREM', KEYS[i + 2], token) == 1 then
      redis.call('LREM', KEYS[i + 1], 1, token)
    end
    if not current then
      local head = live_head(KEYS[i + 1], KEYS[i + 2], now_ms())
      if head then
        redis.call('PUBLISH', ARGV[1] .. string.match(head, '^[^:]+'),
          ARGV[(i - 1) / 3 * 2 + 3])
      end
    end
  end
end
return result
"""
)

# KEYS: locks; ARGV: lease ms, token 1, token 2, ...
# -> per lock: 1 renewed, 0 no longer held by anyone, -1 held by another
_RENEW = _Script("""
local result = {}
for i = 1, #KEYS do
  local current = redis.call('HGET', KEYS[i], 'token')
  if current == ARGV[i + 1] then
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
    result[i] = 1
  elseif current then
    result[i] = -1
  else
    result[i] = 0
  end
end
return result
""")

# KEYS: locks -> per lock {pttl_ms, {holder, host, pid, since_us, site, fence}}
_INSPECT = _Script("""
local result = {}
for i = 1, #KEYS do
  result[i] = {redis.call('PTTL', KEYS[i]),
    redis.call('HMGET', KEYS[i], 'holder', 'host', 'pid', 'since', 'site', 'fence')}
end
return result
""")


class Endpoint:
    """Where the server is, printable without its credentials.

    ``str()`` is the URL with any password (and user name) replaced by
    ``***``; :meth:`scrub` removes the password from other text (a client
    library's error message), so that no repr, error or log line shows it.
    """

    __slots__ = ("_secrets", "_text")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        secrets: list[str] = []
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            secrets += [userinfo, *userinfo.split(":")]
            netloc = f"***@{hostport}"
        query = parse_qsl(parts.query, keep_blank_values=True)
        for index, (key, value) in enumerate(query):
            if key.lower() in ("password", "username") and value:
                secrets.append(value)
                query[index] = (key, "***")
        secrets += [unquote(secret) for secret in secrets]
        # Longest first, so that a password is not half replaced by a part of it.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._text = url
        if secrets:
            self._text = f"{parts.scheme}://{netloc}{parts.path}"
            if query:
                self._text += "?" + urlencode(query, safe="*/")

    def __str__(self) -> str:
        return self._text

    def scrub(self, text: str) -> str:
        """Return ``text`` with every credential of the URL replaced by ``***``."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


class _Keys:
    """The key names of one namespace."""

    __slots__ = ("prefix", "wake_prefix")

    def __init__(self, namespace: str) -> None:
        self.prefix = f"{namespace}:lock:"
        self.wake_prefix = f"{namespace}:wake:"

    def lock(self, name: str) -> str:
        return f"{self.prefix}{{{name}}}"

    def queue(self, name: str) -> tuple[str, str, str]:
        """Return the keys of the lock, its queue and its waiters' check-ins."""
        lock = self.lock(name)
        return lock, f"{lock}:queue", f"{lock}:queued"

    def wake(self, session: str) -> str:
        """Return the channel on which the waiters of ``session`` are woken."""
        return f"{self.wake_prefix}{session}"


class RedisLockBackend:
    """Share a lock manager's locks with every process using the same Redis.

    Pass one to :class:`LockManager` or :class:`AsyncLockManager` as
    ``backend=``: the manager keeps its API, its ordering rules and its
    checks, and each lock becomes one key on the Redis server, so that
    every manager using the same server, database and ``namespace`` shares
    it, in any process on any host.

    Each acquisition gets a new owner token and a lease (a TTL on the key)
    that the manager renews in the background while the holder lives, so
    that a crashed holder blocks others for at most ``lease`` seconds. Only
    the token's owner can release it (an atomic compare-and-delete), and
    each acquisition hands out a *fencing token*, a number that grows with
    every acquisition of that lock (see :class:`Lease`): pass it along to
    the storage you protect and let it refuse writes that carry an older
    one. Waiters sleep until a release is published (Redis pub/sub), checking
    again at least every ``recheck_interval`` seconds and when the holder's
    lease would run out.

    What one Redis server guarantees, and what it does not:

    * Mutual exclusion holds while the server keeps its data and the
      holder's process keeps renewing in time. A restart without
      persistence, or a failover to a replica that had not received the
      latest writes, forgets held locks: two holders can then overlap.
    * A lease is time: a holder paused longer than its lease (a stopped
      process, a long GC or swap, a clock jump on the server) loses the lock
      without running any code. The manager notices at the next renewal or
      release (``Lease.lost``, ``on_lost``, :class:`LockLostError`), but
      the code of the paused block may already have acted. Fencing tokens,
      checked by the protected resource, are the real protection.
    * Redlock (the same lock on several independent servers) is not
      offered: it still rests on bounded pauses and clock drift, and
      gives no fencing token, so it buys no safety that a fencing token on
      one server does not; use Redis' own replication for availability.

    :param redis: where the server is: a URL (``redis://host:6379/0``,
        ``rediss://...``, ``unix:///path?db=0``) from which the manager
        makes the client it needs and closes it again (its credentials show
        as ``***`` in every repr, error and log line), or a redis-py client
        of your own that you close yourself: ``redis.asyncio.Redis`` for an
        :class:`AsyncLockManager` on asyncio, ``redis.Redis`` for a
        :class:`LockManager` (and for an :class:`AsyncLockManager` on trio,
        where its calls run in worker threads)
    :param namespace: the prefix of every key and channel; managers share a
        lock when they use the same server, database, namespace and name
    :param lease: seconds a lease lasts unless renewed; a crashed holder
        blocks others at most this long
    :param renew_interval: seconds between renewals of the held leases (one
        round trip for all of them); a third of ``lease`` by default
    :param recheck_interval: the longest a waiter sleeps before trying
        again without having been told of a release
    :param on_lost: called with the :class:`Lease` when a held lease is
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
        redis: str | redis.Redis | redis.asyncio.Redis,
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
        if not (isinstance(redis, str) or _is_redis_client(redis)):
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
        self._keys = _Keys(namespace)

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

    def _client_options(self) -> dict[str, Any]:
        # Our own clients do not retry on their own: the links retry each
        # script once themselves, and decide what a retried release means.
        # Timeouts keep a dead server from holding a caller, or the renewal,
        # past the lease.
        timeout = max(1.0, self._lease / 4)
        return {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
        }

    def _where(self) -> Endpoint:
        if isinstance(self._redis, str):
            return Endpoint(self._redis)
        kwargs = getattr(
            getattr(self._redis, "connection_pool", None), "connection_kwargs", {}
        )
        if "path" in kwargs:
            return Endpoint(f"unix://{kwargs['path']}")
        return Endpoint(f"redis://{kwargs.get('host', '?')}:{kwargs.get('port', '?')}")

    def connect(self, session: str, *, tasks: bool) -> RedisLink:
        """Return the link of the session ``session`` (see :class:`LockStore`).

        Threads use redis-py's blocking client; tasks on asyncio its asyncio
        client; tasks elsewhere (trio) the blocking client in worker threads.
        """
        redis_module = _import_redis()
        client = self._redis
        mode = (
            AWAIT if tasks and _running_on_asyncio() else IN_THREAD if tasks else DIRECT
        )
        if mode == AWAIT:
            import redis.asyncio as redis_asyncio
            from redis.asyncio.retry import Retry as AsyncRetry

            wanted: Any = redis_asyncio.Redis
            retry: Any = AsyncRetry
            needs = "an AsyncLockManager on asyncio needs a redis.asyncio.Redis"
        else:
            from redis.retry import Retry

            wanted, retry = redis_module.Redis, Retry
            needs = (
                "a LockManager, or an AsyncLockManager outside asyncio, needs a "
                "redis.Redis"
            )
        owned = isinstance(client, str)
        if owned:
            from redis.backoff import NoBackoff

            client = wanted.from_url(
                client, retry=retry(NoBackoff(), 0), **self._client_options()
            )
        elif not isinstance(client, wanted):
            raise TypeError(
                f"{needs} client or a URL, not {type(client).__name__}"
                + (
                    ""
                    if mode == AWAIT
                    else " (redis.asyncio clients work only on asyncio)"
                )
            )
        return RedisLink(
            client, self._keys, session, self._where(), owned=owned, mode=mode
        )

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


def _is_redis_client(value: object) -> bool:
    module = type(value).__module__
    return module.startswith("redis.") and callable(getattr(value, "evalsha", None))


def _import_redis() -> Any:
    try:
        import redis
    except ImportError as exc:  # pragma: no cover - the extra is installed in CI
        raise ImportError(
            'RedisLockBackend needs redis-py: pip install "cc-locks[redis]"'
        ) from exc
    return redis


def _running_on_asyncio() -> bool:
    aio: Any = sys.modules.get("asyncio")
    return aio is not None and aio._get_running_loop() is not None


def _parse_holder(pttl: object, fields: object) -> RemoteHolder | None:
    """Build a :class:`RemoteHolder` from a PTTL and the HMGET of a script reply."""
    ttl = int(pttl)  # type: ignore[call-overload]
    if ttl == -2 or not isinstance(fields, (list, tuple)) or fields[0] is None:
        return None
    holder, host, pid, since, site, fence = (_text(v) for v in fields)
    return RemoteHolder(
        holder=holder or "an unknown holder",
        host=host or "an unknown host",
        pid=int(pid) if pid else None,
        since=int(since) / 1e6 if since else None,
        site=site or None,
        fencing_token=int(fence) if fence else None,
        expires_in=ttl / 1000 if ttl >= 0 else None,
    )


def _parse_taken(reply: Any) -> Taken:
    if int(reply[0]) == 1:
        return Taken(True, int(reply[1]), int(reply[2]) / 1e6)
    ttl = int(reply[1])
    fields = reply[2]
    return Taken(
        False,
        retry_in=max(ttl, 0) / 1000 if ttl != -1 else math.inf,
        holder=_parse_holder(ttl, fields) if fields else None,
        queued=not fields,
    )


def _take_keys(keys: _Keys, name: str) -> tuple[str, str, str, str]:
    lock, queue, queued = keys.queue(name)
    return lock, f"{lock}:fence", queue, queued


def _release_args(
    keys: _Keys, names: Sequence[str], tokens: Sequence[str]
) -> tuple[list[str], list[str]]:
    script_keys: list[str] = []
    args = [keys.wake_prefix]
    for name, token in zip(names, tokens, strict=True):
        script_keys += keys.queue(name)
        args += (token, name)
    return script_keys, args


class RedisLink:
    """A session's operations on Redis (see :class:`cc.locks._store.StoreLink`).

    One class for every client: each operation is a generator of steps, and
    each call to redis-py is a :class:`~cc.locks._store.Call` step that the
    manager's driver runs as it must (``mode``): a plain call (threads), an
    await (redis.asyncio), or a call in a worker thread (tasks off asyncio).
    """

    def __init__(
        self, client: Any, keys: _Keys, session: str, where: Endpoint, *,
        owned: bool, mode: int,
    ) -> None:  # fmt: skip
        import redis.exceptions

        self._client = client
        self._keys = keys
        self.channel = keys.wake(session)
        self.where = where
        self._owned = owned
        self._mode = mode
        self._errors = redis.exceptions
        self._pubsub: Any = None
        # A listener off asyncio sits in a worker thread for long: it must
        # not take one of the default limiter's threads from the program.
        self._listening = anyio.CapacityLimiter(1) if mode == IN_THREAD else None
        self._close_name = "aclose" if mode == AWAIT else "close"

    def _call(self, fn: Callable[..., Any], *args: Any, listen: bool = False) -> Call:
        return Call(
            fn, *args, mode=self._mode, limiter=self._listening if listen else None
        )

    def _error(self, exc: BaseException) -> LockBackendError:
        text = self.where.scrub(f"{type(exc).__name__}: {exc}")
        return LockBackendError(f"Redis at {self.where} failed: {text}")

    def _script(
        self, script: _Script, keys: Sequence[str], args: Sequence[Any]
    ) -> Steps[Any]:
        client = self._client
        errors = self._errors
        for attempt in (1, 2):
            try:
                try:
                    return (
                        yield self._call(
                            client.evalsha, script.sha, len(keys), *keys, *args
                        )
                    )
                except errors.NoScriptError:
                    return (
                        yield self._call(
                            client.eval, script.text, len(keys), *keys, *args
                        )
                    )
            except (errors.ConnectionError, errors.TimeoutError) as exc:
                # One more try, releases included: a pooled connection that
                # went stale across a server restart fails without running
                # the command. Should the first release have run after all,
                # the retry finds the key gone and the lease is reported lost
                # (a LockLostError either way; never a silent success).
                if attempt == 2:
                    raise self._error(exc) from exc
            except errors.RedisError as exc:
                raise self._error(exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def take(
        self, name: str, token: str, lease_ms: int, holder: str, host: str,
        pid: int, site: str, queue_ms: int,
    ) -> Steps[Taken]:  # fmt: skip
        """Try to take ``name`` once; else queue for ``queue_ms`` (0: do not)."""
        reply = yield from self._script(
            _TAKE,
            _take_keys(self._keys, name),
            (token, lease_ms, holder, host, pid, site, queue_ms),
        )
        return _parse_taken(reply)

    def release(self, names: Sequence[str], tokens: Sequence[str]) -> Steps[list[int]]:
        """Release each ``(name, token)``: 1 done, 0 expired, -1 taken over."""
        keys, args = _release_args(self._keys, names, tokens)
        return [int(r) for r in (yield from self._script(_RELEASE, keys, args))]

    def renew(
        self, names: Sequence[str], tokens: Sequence[str], lease_ms: int
    ) -> Steps[list[int]]:
        """Renew each lease: 1 renewed, 0 expired, -1 taken over."""
        keys = [self._keys.lock(name) for name in names]
        return [
            int(r) for r in (yield from self._script(_RENEW, keys, (lease_ms, *tokens)))
        ]

    def inspect(self, names: Sequence[str]) -> Steps[list[RemoteHolder | None]]:
        """Return the holder of each lock, or ``None`` where it is free."""
        if not names:
            return []
        keys = [self._keys.lock(name) for name in names]
        replies = yield from self._script(_INSPECT, keys, ())
        return [_parse_holder(*item) for item in replies]

    def publish(self, message: str) -> Steps[None]:
        """Publish ``message`` on the link's wake channel (to stop its listener)."""
        try:
            yield self._call(self._client.publish, self.channel, message)
        except self._errors.RedisError as exc:
            raise self._error(exc) from exc

    def subscribe(self) -> Steps[None]:
        """Subscribe to the wake channel; return once the server confirmed."""
        yield from self._unsubscribe()
        errors = self._errors
        try:
            pubsub = self._pubsub = self._client.pubsub()
            yield self._call(pubsub.subscribe, self.channel, listen=True)
            while True:
                message = yield self._call(pubsub.get_message, False, 5.0, listen=True)
                if message is None:
                    raise errors.TimeoutError("no subscription confirmation")
                if message["type"] == "subscribe":
                    return
        except errors.RedisError as exc:
            raise self._error(exc) from exc

    def next_wake(self, seconds: float) -> Steps[str | None]:
        """Wait up to ``seconds`` for a published name; ``None`` if none came."""
        try:
            message = yield self._call(
                self._pubsub.get_message, False, seconds, listen=True
            )
        except self._errors.RedisError as exc:
            raise self._error(exc) from exc
        if message is None or message["type"] != "message":
            return None
        return _text(message["data"])

    def _unsubscribe(self) -> Steps[None]:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(Exception):  # closing a broken socket
                yield self._call(getattr(pubsub, self._close_name), listen=True)

    def close(self) -> Steps[None]:
        """Drop the subscription; close the client if the link made it."""
        yield from self._unsubscribe()
        if self._owned:
            yield self._call(getattr(self._client, self._close_name))
