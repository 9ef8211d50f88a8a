"""TokenLink: a capacity limiter's link to its pool: a lock's link on pool scripts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from cc.locks import LockTimeoutError
from cc.locks.lowlevel import RemoteHolder, RemoteWait, SharedOrder, Steps
from cc.redis._client import RedisLink, Taken
from cc.redis._limit_scripts import (
    CAPACITY_INSPECT,
    CAPACITY_RELEASE,
    CAPACITY_RENEW,
    CAPACITY_SET_TOTAL,
    CAPACITY_TAKE,
)
from cc.redis._scripts import Script

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

    def _pool(self, script: Script, *args: object) -> Steps[Any]:
        """Run a pool script on the pool's keys; the server has answered since."""
        reply = yield from self.script(script, self.keys, args)
        self.seen = "1"
        return reply

    def take(
        self, name: str, token: str, lease_ms: int, holder: str, host: str,
        pid: int, site: str, queue_ms: int, node: str = "", detect: int = 0,
        wait_ms: int = 0,
    ) -> Steps[Taken]:  # fmt: skip
        """Take a token of the pool; else queue for ``queue_ms`` (0: do not).

        A pool has no wait-for graph: ``node``, ``detect`` and ``wait_ms`` (what
        a lock's take publishes for deadlock detection) are not used.
        """
        who = f"{holder}{SEP}{host}{SEP}{pid}"
        reply = yield from self._pool(
            CAPACITY_TAKE, token, lease_ms, who, self.total, self.seen, queue_ms, name
        )
        if isinstance(reply, int):  # the fencing token; since is 1 us before
            reply = (1, reply, reply - 1)
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
        return [int(r) for r in (yield from self._pool(CAPACITY_RENEW, *args))]

    def release(
        self, names: Sequence[str], tokens: Sequence[str], node: str = ""
    ) -> Steps[list[int]]:
        """Give the tokens back (or leave the queue): 1 done, 0 no longer held.

        ``node`` (a published wait to drop) is not used: a pool publishes none.
        """
        for token in tokens:
            self._holders.pop(token, None)
        reply = yield from self._pool(CAPACITY_RELEASE, self._keys.wake_prefix, *tokens)
        return [reply] if isinstance(reply, int) else [int(r) for r in reply]

    def set_total(self, total: int) -> Steps[None]:
        """Store the pool's capacity, and wake the waiters it can now serve."""
        self.total = total
        yield from self._pool(
            CAPACITY_SET_TOTAL, total, self._keys.wake_prefix, self.seen, self.lease_ms
        )

    def inspect_pool(self) -> Steps[Any]:
        """Return ``(total, live waiters, [(token, ms left, info)...])``."""
        reply = yield from self._pool(
            CAPACITY_INSPECT, self.total, self.seen, self.lease_ms
        )
        return int(reply[0]), int(reply[1]), reply[2]


class TokenRecord:
    """What a lease session takes: a name (one per borrower of a pool)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class PoolReporter:
    """What the lease session may ask of its owner (here: the limiter).

    A pool takes part in no lock order and no wait-for graph: nothing is
    learned or shared (policy "off"), and no cycle is looked for.
    """

    policy = "off"
    detect = False

    def report(self, key: tuple[str, ...], message: str) -> bool:
        return True  # the session has logged it already

    def remote_unavailable(
        self, record: Any, holder: RemoteHolder | None, queued: bool,
        timeout: float | None, blocking: bool,
    ) -> LockTimeoutError:  # fmt: skip
        return LockTimeoutError("no token is free", record.name, None)

    def wait_begins(self, holder: Any, record: Any) -> None:
        return None

    wait_ends = wait_begins

    def remote_cycle(
        self, holder: Any, site: Any, cycle: Sequence[RemoteWait],
        seen_here_only: bool = False,
    ) -> RemoteWait:  # fmt: skip
        raise AssertionError("a token pool publishes no wait, so it has no cycle")

    def local_chain(self, start: int, end: Any) -> list[tuple[Any, str]] | None:
        return None

    def merge_order(self, edges: Sequence[SharedOrder]) -> None:
        return None
