"""RedisRateLimiter: one exact sliding-window rate limit for every process."""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import anyio

from cc.locks import LockBackendError
from cc.locks.lowlevel import Shielded, arun
from cc.primitives import RateLimiterStatistics
from cc.redis._client import RedisLink
from cc.redis._limit_scripts import RATE_STATISTICS, RESERVE, rate_keys, rate_members
from cc.redis._limits import SharedLimit, check_count, check_seconds, logger

__all__ = ["RedisRateLimiter", "RedisRateLimiterStatistics"]

# How the reserve script is asked: wait if need be, only now, only say.
_WAIT, _NOW, _ASK = "0", "1", "2"
# The longest a cancelled acquisition's clean-up may take.
_CLEANUP_SECONDS = 5.0
# Every this many acquisitions, a client drops what left the window.
_TIDY_EVERY = 16


@dataclass(frozen=True)
class RedisRateLimiterStatistics(RateLimiterStatistics):
    """A snapshot of a :class:`RedisRateLimiter`, as the server sees it.

    It is a :class:`cc.primitives.RateLimiterStatistics` with one field added.

    :ivar rate: acquisitions allowed per period
    :ivar period: the period in seconds
    :ivar available: acquisitions that could be granted now, in any process
        (0 while waiters anywhere hold reservations)
    :ivar tasks_waiting: tasks of this process waiting for their turn
    :ivar total_acquired: amount acquired through this object since creation
    :ivar reserved: units reserved by waiters in every process, granted later
    """

    reserved: int


class RedisRateLimiter(SharedLimit):
    """At most ``rate`` acquisitions in any ``period`` seconds, over every process.

    Every process that uses the same Redis server, namespace and ``key``
    counts against it. The limit is exact, as
    :class:`cc.primitives.RateLimiter`'s is, and timed by the server's clock
    (never the clients'): no window of ``period`` seconds, wherever it
    starts, holds more than ``rate`` grants. Each acquisition is one Lua
    script that gives the caller the earliest time, not before the latest
    grant made, at which its units fit, records them there and says how long
    that is; the caller sleeps exactly that long (no polling). So grants come
    first come, first served across every process, and never move.

    A waiter that is cancelled (or times out) takes its reservation back and
    consumes nothing; those behind it keep their times, and its time goes to
    a newcomer only if it fits before their grants. A waiter that woke checks
    that the server still knows its grant, and queues again if the server
    lost its data meanwhile (a restart without persistence). A client that
    used the limit before and finds its data gone makes the server grant
    nothing new for one period, so no window holds more than ``rate`` across
    the restart either; a process that starts after a restart, before any
    other client noticed it, cannot know this.

    Use it inside ``async with limiter.connect():``; then ``async with
    limiter:`` or ``await limiter.acquire()`` takes one unit. Every method
    that asks the server is a coroutine (``statistics()`` included), for
    asyncio, uvloop and trio. ``fast_acquire`` has no meaning here: every
    acquisition waits for the server's answer, which is a checkpoint.

    :param rate: acquisitions per period, an int from 1 to 1,000,000,000 (for
        one every two seconds, use ``rate=1, period=2``)
    :param period: the window, in seconds (> 0, at most 10,000,000)
    :param key: the limit's name: processes using the same server, namespace
        and key share it
    :param url: the server (``redis://``, ``rediss://`` or ``unix://``); its
        credentials never show in reprs, errors or logs
    :param backend: or a :class:`RedisLockBackend` to take the server (URL or
        client of yours) and the namespace from
    :param namespace: the prefix of its keys with ``url=`` (``"cc-limits"``)
    :raises TypeError: for arguments of the wrong type, or neither or both of
        ``url`` and ``backend``
    :raises ValueError: for a rate, period or key out of range, or a URL that
        is not a Redis URL

    >>> limiter = RedisRateLimiter(100, 60.0, key="geo-api", url="redis://db:6379/0")
    >>> limiter  # doctest: +ELLIPSIS
    <RedisRateLimiter 100/60s key='geo-api' redis://db:6379/0 namespace='cc-limits' ...>
    """

    def __init__(
        self,
        rate: int,
        period: float = 1.0,
        *,
        key: str,
        url: str | None = None,
        backend: Any = None,
        namespace: str | None = None,
    ) -> None:
        self._rate = check_count("rate", rate)
        self._period = check_seconds("period", period)
        self._period_us = max(1, round(self._period * 1e6))
        super().__init__(key, url, backend, namespace)
        self._keys = rate_keys(self._backend.namespace, key)
        self._seen = "0"  # "1" once the server answered: a restart is news
        self._tickets = itertools.count(1)
        self._waiting = 0
        self._total = 0

    def _describe(self) -> str:
        return f"{self._rate}/{self._period:g}s"

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    @property
    def rate(self) -> int:
        """Acquisitions allowed per period."""
        return self._rate

    @property
    def period(self) -> float:
        """The period, in seconds."""
        return self._period

    def _check_amount(self, amount: object) -> int:
        if type(amount) is int and 0 < amount <= self._rate:
            return amount
        return check_count("amount", amount, self._rate)

    async def acquire(self, amount: int = 1) -> float:
        """Wait until ``amount`` more units fit in every process's window; take them.

        :return: when they were granted: a :func:`time.time` timestamp by the
            server's clock (the caller never returns before it)

        :raises ValueError: for an amount below 1 or above the rate
        :raises TypeError: for an amount that is not an int
        :raises RuntimeError: outside ``async with limiter.connect():``
        :raises LockBackendError: if the server cannot be reached (nothing is
            consumed then)
        """
        value = self._check_amount(amount)
        link = self._connected()
        while True:
            number = next(self._tickets)
            _, wait, at = await self._reserve(link, number, value, _WAIT)
            if not wait or await self._wait_for(link, number, value, wait):
                break
            logger.warning(
                "rate limit %r: the server lost its log while this process "
                "waited (a restart?); queueing again",
                self._key,
            )
        self._total += value
        return at

    async def acquire_nowait(self, amount: int = 1) -> float:
        """Take ``amount`` units if they fit now, without waiting.

        :return: when they were granted (server clock, as for :meth:`acquire`)

        :raises anyio.WouldBlock: if they do not fit now, or others wait
        :raises LockBackendError: if the server cannot be reached
        """
        value = self._check_amount(amount)
        link = self._connected()
        granted, _, at = await self._reserve(link, next(self._tickets), value, _NOW)
        if not granted:
            raise anyio.WouldBlock
        self._total += value
        return at

    async def try_acquire(self, amount: int = 1) -> bool:
        """Take ``amount`` units if they fit now; never waits. Say whether it did.

        :raises LockBackendError: if the server cannot be reached
        """
        try:
            await self.acquire_nowait(amount)
        except anyio.WouldBlock:
            return False
        return True

    async def has_capacity(self, amount: int = 1) -> bool:
        """Return whether ``acquire(amount)`` would be granted now, taking nothing.

        :raises LockBackendError: if the server cannot be reached
        """
        value = self._check_amount(amount)
        _, wait, _ = await self._reserve(self._connected(), 0, value, _ASK)
        return wait == 0

    async def _reserve(
        self, link: RedisLink, number: int, amount: int, mode: str
    ) -> tuple[bool, float, float]:
        """Run the reserve script once: (granted, seconds to wait, grant time).

        Interrupted after the script was sent, it takes the ticket back.
        """
        ticket = f"{self._session}:{number}"
        flags = mode + self._seen + ("0" if number % _TIDY_EVERY else "1")
        args = (ticket, amount, self._rate, self._period_us, flags)
        try:
            reply = await arun(link.script(RESERVE, self._keys, args))
        except BaseException:
            if mode != _ASK:
                await self._cancel(link, ticket, amount)
            raise
        self._seen = "1"
        if isinstance(reply, int):  # granted now
            return True, 0.0, (reply >> 1) / 1e6
        return reply[0] == 1, reply[1] / 1e6, reply[2] / 1e6

    async def _wait_for(
        self, link: RedisLink, number: int, amount: int, seconds: float
    ) -> bool:
        """Sleep until the grant; say whether the server still knows it."""
        ticket = f"{self._session}:{number}"
        self._waiting += 1
        try:
            await anyio.sleep(seconds)
            member = rate_members(ticket, amount)[0]
            score = await arun(link.script("zscore", self._keys[:1], (member,)))
        except BaseException:
            await self._cancel(link, ticket, amount)
            raise
        finally:
            self._waiting -= 1
        return score is not None

    async def _cancel(self, link: RedisLink, ticket: str, amount: int) -> None:
        forget = link.script("zrem", self._keys[:1], rate_members(ticket, amount))
        with contextlib.suppress(LockBackendError, TimeoutError):
            await Shielded(forget, _CLEANUP_SECONDS).wait()

    async def statistics(self) -> RedisRateLimiterStatistics:
        """Return what the server says of the window now, and this process's waiters.

        :raises LockBackendError: if the server cannot be reached
        """
        link = self._connected()
        used, reserved = await arun(
            link.script(RATE_STATISTICS, self._keys[:1], (self._period_us,))
        )
        return RedisRateLimiterStatistics(
            rate=self._rate,
            period=self._period,
            available=0 if reserved else max(0, self._rate - int(used)),
            tasks_waiting=self._waiting,
            total_acquired=self._total,
            reserved=int(reserved),
        )
