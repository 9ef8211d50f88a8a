"""One command layer for redis-py's blocking and asyncio clients.

Each operation of :class:`RedisLink` is written once, as a generator of steps
(see :mod:`cc.locks.lowlevel`): the sync and async paths differ only in how
they wait. Credentials never show: :class:`Endpoint`.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import anyio

import redis.exceptions
from cc.locks import LockBackendError
from cc.locks.lowlevel import (
    AWAIT,
    IN_THREAD,
    Call,
    RemoteHolder,
    RemoteWait,
    SharedOrder,
    Steps,
    arun,
    run,
)
from cc.redis._scripts import (
    INSPECT,
    RELEASE,
    RENEW,
    SHARE_ORDER,
    TAKE,
    WAIT_GRAPH,
    Keys,
    Script,
)

__all__ = ["Endpoint", "Protected", "RedisLink", "Taken"]


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


def text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


@dataclass(slots=True)  # (not frozen: one is made per try, and that is slow)
class Taken:
    """The reply of one attempt to take a lock."""

    ok: bool
    fencing_token: int = 0
    since: float = 0.0  # time.time() seconds, the server's clock
    # seconds until the holder's lease ends, or the turn of the waiter
    # ahead lapses (if it stopped checking in); inf: no end in sight
    retry_in: float = 0.0
    holder: RemoteHolder | None = None
    queued: bool = False  # free, but an earlier waiter is due to take it
    # the wait-for cycle through the caller's own wait (first), if any; or,
    # with `home`, the chain from it to a holder of the caller's own session
    cycle: tuple[RemoteWait, ...] = ()
    home: str | None = None


def parse_holder(pttl: object, fields: object) -> RemoteHolder | None:
    """Build a :class:`RemoteHolder` from a PTTL and the HMGET of a script reply."""
    ttl = int(pttl)  # type: ignore[call-overload]
    if ttl == -2 or not isinstance(fields, (list, tuple)) or fields[0] is None:
        return None
    holder, host, pid, since, site, fence = (text(v) for v in fields)
    return RemoteHolder(
        holder or "an unknown holder", host or "an unknown host",
        int(pid) if pid else None, int(since) / 1e6 if since else None,
        site or None, int(fence) if fence else None,
        ttl / 1000 if ttl >= 0 else None,
    )  # fmt: skip


def parse_wait(node: object, wait: object) -> RemoteWait:
    """Build a :class:`RemoteWait` from a node and its wait, as the scripts keep it."""
    lock, since, holder, host, pid, site = json.loads(text(wait) or "")
    waiter = RemoteHolder(
        holder, host, int(pid) if pid else None, int(since) / 1e6, site or None,
        None, None,
    )  # fmt: skip
    return RemoteWait(text(node) or "", lock, waiter)


def parse_taken(reply: Any) -> Taken:
    if int(reply[0]) == 1:
        return Taken(True, int(reply[1]), int(reply[2]) / 1e6)
    ttl = int(reply[1])
    fields = reply[2]
    path: Sequence[Any] = reply[3] if len(reply) > 3 else ()
    return Taken(
        False,
        retry_in=max(ttl, 0) / 1000 if ttl != -1 else math.inf,
        holder=parse_holder(ttl, fields) if fields else None,
        queued=not fields,
        cycle=tuple(parse_wait(*path[i : i + 2]) for i in range(0, len(path) - 1, 2)),
        home=text(path[-1]) if len(path) % 2 else None,
    )


def parse_order(fields: Sequence[Any]) -> tuple[str | None, SharedOrder]:
    """Build the session and the :class:`SharedOrder` of an order stream entry."""
    values = {text(fields[i]): text(fields[i + 1]) for i in range(0, len(fields), 2)}
    return values.get("session"), SharedOrder(
        before=values.get("before") or "",
        after=values.get("after") or "",
        holder=values.get("holder") or "an unknown holder",
        before_site=values.get("before_site") or None,
        after_site=values.get("after_site") or None,
    )


class Protected:
    """A step: :class:`~cc.locks.lowlevel.Shielded` without a time limit.

    One cancel scope instead of two, on every release: the client's socket
    timeout bounds it instead.
    """

    __slots__ = ("steps",)

    def __init__(self, steps: Steps[Any]) -> None:
        self.steps = steps

    def block(self) -> Any:
        """Run the steps (a thread)."""
        return run(self.steps)

    async def wait(self) -> Any:
        """Run the steps in a shielded cancel scope (a task)."""
        with anyio.CancelScope(shield=True):
            return await arun(self.steps)


class RedisLink:
    """A session's operations on Redis, for every client (see the module).

    ``mode`` says how its :class:`~cc.locks.lowlevel.Call` steps run for tasks.
    """

    def __init__(
        self, client: Any, keys: Keys, session: str, where: Endpoint, *,
        owned: bool, mode: int,
    ) -> None:  # fmt: skip
        self._client = client
        self._keys = keys
        self.channel = keys.wake(session)
        self.where = where
        self._owned = owned
        self._mode = mode
        self._pubsub: Any = None
        # A listener off asyncio sits in a worker thread for long: it must
        # not take one of the default limiter's threads from the program.
        self._listening = anyio.CapacityLimiter(1) if mode == IN_THREAD else None
        self._close_name = "aclose" if mode == AWAIT else "close"
        # What the lock scripts send every time, encoded once by the client's
        # own encoder (redis-py sends bytes as they are): keys by lock name,
        # the namespace's, a session's fixed arguments (as given, encoded).
        self._encode: Callable[[Any], bytes] = client.get_encoder().encode
        self._named: dict[str, tuple[bytes, ...]] = {}
        *self._shared, self._prefix, self._wake_prefix = map(
            self._encode, (keys.waits, keys.wait_times, keys.prefix, keys.wake_prefix)
        )
        self._fixed: tuple[tuple[Any, ...], tuple[bytes, ...]] = ((), ())

    def _call(self, fn: Callable[..., Any], *args: Any, listen: bool = False) -> Call:
        return Call(
            fn, *args, mode=self._mode, limiter=self._listening if listen else None
        )

    def _error(self, exc: BaseException) -> LockBackendError:
        text = self.where.scrub(f"{type(exc).__name__}: {exc}")
        return LockBackendError(f"Redis at {self.where} failed: {text}")

    def script(
        self, script: Script | str, keys: Sequence[str | bytes], args: Sequence[Any]
    ) -> Steps[Any]:
        """Run ``script`` on ``keys`` and ``args``; return the reply.

        ``script`` is a Lua script, or the name of one of the client's
        commands (``"zscore"``...). A dropped connection is tried once more.

        :raises LockBackendError: if the server cannot be reached or refuses it
        """
        client, errors = self._client, redis.exceptions
        counted = (len(keys), *keys, *args)
        for attempt in (1, 2):
            try:
                if isinstance(script, str):
                    return (yield self._call(getattr(client, script), *keys, *args))
                try:
                    return (yield self._call(client.evalsha, script.sha, *counted))
                except errors.NoScriptError:
                    return (yield self._call(client.eval, script.text, *counted))
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

    def _keys_of(self, name: str) -> tuple[bytes, ...]:
        """Return lock ``name``'s keys (lock, fence, queue, queued), and name: bytes."""
        named = self._named.get(name)
        if named is None:
            if len(self._named) >= 4096:  # a bound for names used once
                self._named.clear()
            lock, queue, queued = self._keys.queue(name)
            given = (lock, f"{lock}:fence", queue, queued, name)
            named = self._named[name] = tuple(map(self._encode, given))
        return named

    def take(
        self, name: str, token: str, lease_ms: int, holder: str, host: str,
        pid: int, site: str, queue_ms: int, node: str, detect: int, wait_ms: int,
    ) -> Steps[Taken]:  # fmt: skip
        """Try to take ``name`` once; else queue for ``queue_ms`` (0: do not).

        ``node`` is the caller's identity; with ``detect`` 1 a queued caller
        publishes its wait for ``wait_ms`` and gets the cycle through it, if
        any; with 2 also, and a caller that takes the lock drops its wait.
        """
        lock, fence, queue, queued, encoded = self._keys_of(name)
        given = (lease_ms, host, pid, wait_ms)
        if given != self._fixed[0]:  # (one attribute: threads share the link)
            self._fixed = given, tuple(map(self._encode, given))
        lease_ms_, host_, pid_, wait_ms_ = self._fixed[1]
        reply = yield from self.script(
            TAKE,
            (lock, fence, queue, queued, *self._shared),
            (token, lease_ms_, holder, host_, pid_, site, queue_ms, node, detect,
             encoded, self._prefix, wait_ms_),
        )  # fmt: skip
        return parse_taken(reply)

    def release(
        self, names: Sequence[str], tokens: Sequence[str], node: str = ""
    ) -> Steps[list[int]]:
        """Release each ``(name, token)``: 1 done, 0 expired, -1 taken over.

        ``node``: a waiter whose published wait is dropped too.
        """
        keys: list[bytes] = [*self._shared]
        args: list[Any] = [self._wake_prefix, node]
        for name, token in zip(names, tokens, strict=True):
            lock, _, queue, queued, encoded = self._keys_of(name)
            keys += (lock, queue, queued)
            args += (token, encoded)
        return [int(r) for r in (yield from self.script(RELEASE, keys, args))]

    def wait_graph(self) -> Steps[list[tuple[RemoteWait, str | None]]]:
        """Return every live wait, with the node that holds the lock it waits for."""
        keys = (self._keys.waits, self._keys.wait_times)
        replies = yield from self.script(WAIT_GRAPH, keys, (self._keys.prefix,))
        return [
            (parse_wait(node, wait), text(holder) or None)
            for node, wait, holder in replies
        ]

    def share_order(
        self, last_id: str, edges: Sequence[SharedOrder], session: str,
        keep: int, count: int,
    ) -> Steps[list[tuple[str, str | None, SharedOrder]]]:  # fmt: skip
        """Add ``edges`` to the order stream; return up to ``count`` after ``last_id``.

        Each entry read is ``(id, session that added it, order)``.
        """
        args: list[Any] = [last_id, keep, count, session]
        for edge in edges:
            args += (edge.before, edge.after, edge.holder, edge.before_site or "",
                     edge.after_site or "")  # fmt: skip
        replies = yield from self.script(SHARE_ORDER, (self._keys.order,), args)
        return [(text(entry) or "", *parse_order(fields)) for entry, fields in replies]

    def renew(
        self, names: Sequence[str], tokens: Sequence[str], lease_ms: int
    ) -> Steps[list[int]]:
        """Renew each lease: 1 renewed, 0 expired, -1 taken over."""
        keys = [self._keys.lock(name) for name in names]
        return [
            int(r) for r in (yield from self.script(RENEW, keys, (lease_ms, *tokens)))
        ]

    def inspect(self, names: Sequence[str]) -> Steps[list[RemoteHolder | None]]:
        """Return the holder of each lock, or ``None`` where it is free."""
        if not names:
            return []
        keys = [self._keys.lock(name) for name in names]
        replies = yield from self.script(INSPECT, keys, ())
        return [parse_holder(*item) for item in replies]

    def _checked(
        self, fn: Callable[..., Any], *args: Any, listen: bool = True
    ) -> Steps[Any]:
        """Call ``fn`` (by default, of the subscription); raise LockBackendError."""
        try:
            return (yield self._call(fn, *args, listen=listen))
        except redis.exceptions.RedisError as exc:
            raise self._error(exc) from exc

    def publish(self, message: str) -> Steps[None]:
        """Publish ``message`` on the link's wake channel (to stop its listener)."""
        yield from self._checked(
            self._client.publish, self.channel, message, listen=False
        )

    def subscribe(self) -> Steps[None]:
        """Subscribe to the wake channel; return once the server confirmed."""
        yield from self._unsubscribe()
        pubsub = self._pubsub = self._client.pubsub()
        yield from self._checked(pubsub.subscribe, self.channel)
        while True:
            message = yield from self._checked(pubsub.get_message, False, 5.0)
            if message is None:
                exc = redis.exceptions.TimeoutError("no subscription confirmation")
                raise self._error(exc) from exc
            if message["type"] == "subscribe":
                return

    def next_wake(self, seconds: float) -> Steps[str | None]:
        """Wait up to ``seconds`` for a published name; ``None`` if none came."""
        message = yield from self._checked(self._pubsub.get_message, False, seconds)
        if message is None or message["type"] != "message":
            return None
        return text(message["data"])

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
