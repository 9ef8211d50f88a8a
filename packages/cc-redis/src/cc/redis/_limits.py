"""What the shared limits have in common: checks, the server, connecting.

A :class:`SharedLimit` reaches its server through a
:class:`~cc.redis.RedisLockBackend` (given, or made from ``url=``), with the
clients that lock managers use, inside ``async with limit.connect():``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import secrets
from collections.abc import AsyncIterator
from typing import Any, TypeVar
from urllib.parse import urlsplit

from cc.locks.lowlevel import Shielded
from cc.redis._client import Endpoint, RedisLink
from cc.redis._locks import RedisLockBackend

__all__ = ["MAX_COUNT", "SharedLimit", "check_count", "check_seconds"]

logger = logging.getLogger(__name__.rpartition(".")[0])  # "cc.redis"

# The largest rate, amount or capacity (one sorted-set member per unit).
MAX_COUNT = 1_000_000_000
# The longest period: its microseconds must stay exact in a Lua number.
MAX_SECONDS = 10_000_000.0
_SCHEMES = ("redis", "rediss", "unix")
DEFAULT_NAMESPACE = "cc-limits"

L = TypeVar("L", bound="SharedLimit")


def _shown(value: object) -> str:
    if isinstance(value, int) and abs(value) >= 10**30:
        return f"an int of {len(str(abs(value)))} digits"
    return repr(value)


def check_count(name: str, value: object, maximum: int = MAX_COUNT) -> int:
    """Return ``value`` if it is an int from 1 to ``maximum``.

    :raises TypeError: for anything but an int (a bool, a float...)
    :raises ValueError: for an int out of range
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"{name} must be a whole number (int), not {type(value).__name__}"
        )
    if not 1 <= value <= maximum:
        raise ValueError(f"{name} must be from 1 to {maximum:_}, got {_shown(value)}")
    return value


def check_seconds(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a number of seconds > 0 (and sane).

    :raises TypeError: for anything but an int or a float
    :raises ValueError: for zero, a negative number, NaN, infinity, or more
        than :data:`MAX_SECONDS`
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{name} must be a number of seconds, not {type(value).__name__}"
        )
    if not (0 < value <= MAX_SECONDS and math.isfinite(value)):
        raise ValueError(
            f"{name} must be a number of seconds > 0 and at most "
            f"{MAX_SECONDS:g}, got {_shown(value)}"
        )
    return float(value)


class SharedLimit:
    """The server, key and connection of a limit shared through Redis."""

    _link_type: type[RedisLink] = RedisLink  # the kind of link connect() makes

    def __init__(
        self, key: object, url: object, backend: object, namespace: object,
        **options: Any,
    ) -> None:  # fmt: skip
        if not isinstance(key, str):
            raise TypeError(f"key must be a str, not {type(key).__name__}")
        if not key:
            raise ValueError("key must be a non-empty str")
        if (url is None) == (backend is None):
            raise TypeError("give either url= (a redis:// URL) or backend=, not both")
        given = {name: v for name, v in options.items() if v is not None}
        if backend is not None:
            if not isinstance(backend, RedisLockBackend):
                raise TypeError(
                    "backend must be a cc.redis.RedisLockBackend, not "
                    f"{type(backend).__name__}"
                )
            if namespace is not None or given:
                names = ", ".join(["namespace"] * (namespace is not None) + [*given])
                raise TypeError(
                    f"{names}: with backend=, these come from the backend; "
                    "give them to RedisLockBackend instead"
                )
        else:
            if not isinstance(url, str):
                raise TypeError(f"url must be a str, not {type(url).__name__}")
            if urlsplit(url).scheme not in _SCHEMES:
                raise ValueError(
                    "url must be a redis://, rediss:// or unix:// URL, not "
                    f"{str(Endpoint(url))!r}"
                )
            if namespace is None:
                namespace = DEFAULT_NAMESPACE
            backend = RedisLockBackend(url, namespace=namespace, **given)  # type: ignore[arg-type]
        self._key = key
        self._backend: RedisLockBackend = backend
        self._link: RedisLink | None = None
        self._session = ""

    def __repr__(self) -> str:
        from_url = isinstance(self._backend._redis, str)
        where = self._backend._where() if from_url else "a client of yours"
        state = "connected" if self._link is not None else "not connected"
        return (
            f"<{type(self).__name__} {self._describe()} key={self._key!r} "
            f"{where} namespace={self._backend.namespace!r} {state}>"
        )

    def _describe(self) -> str:
        raise NotImplementedError

    @property
    def key(self) -> str:
        """The name shared by every process that uses this limit."""
        return self._key

    @property
    def backend(self) -> RedisLockBackend:
        """Where the limit lives: the server, its namespace and lease settings."""
        return self._backend

    def _connected(self) -> RedisLink:
        link = self._link
        if link is None:
            raise RuntimeError(
                f"{type(self).__name__} {self._key!r} is not connected: use it "
                "inside 'async with limiter.connect():'"
            )
        return link

    @contextlib.asynccontextmanager
    async def connect(self: L) -> AsyncIterator[L]:
        """Connect to the server for the ``async with`` block; yield the limit.

        :raises RuntimeError: if it is connected already
        :raises TypeError: for a redis-py client of the wrong kind (an
            asyncio client off asyncio)
        """
        if self._link is not None:
            raise RuntimeError(f"{self!r} is connected already")
        session = secrets.token_hex(8)
        link = self._backend.connect(session, tasks=True, link_type=self._link_type)
        self._link, self._session = link, session
        try:
            async with self._running(link, session):
                yield self
        finally:
            self._link = None
            with contextlib.suppress(Exception):
                await Shielded(link.close(), None).wait()

    @contextlib.asynccontextmanager
    async def _running(self, link: RedisLink, session: str) -> AsyncIterator[None]:
        yield
