"""TokenLink: the link of a RedisCapacityLimiter to its pool of tokens.

Its take, renew and release are those a lease session expects of a lock's
link, run by the pool's own scripts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from cc.locks import LockTimeoutError
from cc.locks.lowlevel import RemoteHolder, Steps
from cc.redis._client import RedisLink, Taken
from cc.redis._limit_scripts import (
    CAPACITY_INSPECT,
    CAPACITY_RELEASE,
    CAPACITY_RENEW,
    CAPACITY_SET_TOTAL,
    CAPACITY_TAKE,
)

__all__ = ["SEP", "PoolReporter", "TokenLink", "TokenRecord"]

# Between the fields of a holder's description on the server.
SEP = "\x1f"


class TokenLink(RedisLink):
    """A link whose take, renew and release work on one limiter's token pool."""

    keys: tuple[str, ...] = ()
    total = 1
    lease_ms = 1
    # "1" once the server answered: from then on, a pool found missing was
    # lost by the server (a restart), not new.
    seen = "0"

    def bind(self, keys: tuple[str, ...], total: int, lease_ms: int) -> None:
        """Say which pool the link works on, its capacity and lease."""
        self.keys, self.total, self.lease_ms = keys, total, lease_ms
        self._holders: dict[str, str] = {}  # token -> who holds it

    def take(
        self, name: str, token: str, lease_ms: int, holder: str, host: str,
        pid: int, site: str, queue_ms: int,
    ) -> Steps[Taken]:  # fmt: skip
        """Take a token of the pool; else queue for ``queue_ms`` (0: do not)."""
        who = f"{holder}{SEP}{host}{SEP}{pid}"
        reply = yield from self.script(
            CAPACITY_TAKE,
            self.keys,
            (token, lease_ms, who, self.total, self.seen, queue_ms, name),
        )
        self.seen = "1"
        if isinstance(reply, int):  # the fencing token; since is 1 us before
            self._holders[token] = who
            return Taken(True, reply, (reply - 1) / 1e6)
        if int(reply[0]) == 1:
            self._holders[token] = who
            return Taken(True, int(reply[1]), int(reply[2]) / 1e6)
        wait = int(reply[1])
        return Taken(False, retry_in=wait / 1000 if wait >= 0 else math.inf,
                     queued=True)  # fmt: skip

    def renew(
        self, names: Sequence[str], tokens: Sequence[str], lease_ms: int
    ) -> Steps[list[int]]:
        """Renew the tokens' leases: 1 renewed (or taken back), 0 gone."""
        args: list[object] = [lease_ms, self.total, self.seen]
        for token in tokens:
            args += (token, self._holders.get(token, "?"))
        reply = yield from self.script(CAPACITY_RENEW, self.keys[:3], args)
        self.seen = "1"
        return [int(r) for r in reply]

    def release(self, names: Sequence[str], tokens: Sequence[str]) -> Steps[list[int]]:
        """Give the tokens back (or leave the queue): 1 done, 0 no longer held."""
        for token in tokens:
            self._holders.pop(token, None)
        reply = yield from self.script(
            CAPACITY_RELEASE, self.keys, (self._keys.wake_prefix, *tokens)
        )
        return [reply] if isinstance(reply, int) else [int(r) for r in reply]

    def set_total(self, total: int) -> Steps[None]:
        """Store the pool's capacity, and wake the waiters it can now serve."""
        self.total = total
        args = (total, self._keys.wake_prefix, self.seen, self.lease_ms)
        yield from self.script(CAPACITY_SET_TOTAL, self.keys, args)
        self.seen = "1"

    def inspect_pool(self) -> Steps[Any]:
        """Return ``(total, live waiters, [(token, ms left, info)...])``."""
        reply = yield from self.script(
            CAPACITY_INSPECT, self.keys, (self.total, self.seen, self.lease_ms)
        )
        self.seen = "1"
        return int(reply[0]), int(reply[1]), reply[2]


class TokenRecord:
    """What a lease session takes: a name (one per borrower of a pool)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class PoolReporter:
    """What the lease session may ask of its owner (here: the limiter)."""

    def report(self, key: tuple[str, ...], message: str) -> bool:
        return True  # the session has logged it already

    def remote_unavailable(
        self, record: Any, holder: RemoteHolder | None, queued: bool,
        timeout: float | None, blocking: bool,
    ) -> LockTimeoutError:  # fmt: skip
        return LockTimeoutError("no token is free", record.name, None)

    def wait_begins(self, holder: Any, record: Any) -> None:
        return None

    def wait_ends(self, holder: Any, record: Any) -> None:
        return None
