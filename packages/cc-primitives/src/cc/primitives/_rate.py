"""A rate limiter (exact sliding window) with first-in first-out waiters."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from types import TracebackType

import anyio

from cc.primitives._backend import current_time
from cc.primitives._checkpoints import checkpoint_rule, take_checkpoint
from cc.primitives._parking import ParkingLot
from cc.primitives._validation import check_positive_number

__all__ = ["RateLimiter", "RateLimiterStatistics"]


@dataclass(frozen=True)
class RateLimiterStatistics:
    """A snapshot of a :class:`RateLimiter`'s state.

    :ivar rate: acquisitions allowed per period
    :ivar period: the period in seconds
    :ivar available: acquisitions that could succeed right now without waiting
    :ivar tasks_waiting: tasks queued in :meth:`RateLimiter.acquire`
    :ivar total_acquired: amount acquired since creation
    """

    rate: float
    period: float
    available: float
    tasks_waiting: int
    total_acquired: float


class RateLimiter:
    """Allow at most ``rate`` acquisitions in any window of ``period`` seconds.

    The limit is exact: the limiter remembers when each acquisition within
    the last ``period`` was made (a sliding-window log), so no window of
    ``period`` seconds, wherever it starts, ever holds more than ``rate``. An
    idle limiter lets a burst of up to ``rate`` through at once; after that,
    a slot frees up ``period`` seconds after the acquisition that used it.
    (A leaky bucket or GCRA with the same burst would let nearly twice
    ``rate`` through in some windows.) Memory is one small entry per clock
    reading at which acquisitions were made within the last ``period``.

    Waiters are served first in, first out: only the task at the head of the
    queue sleeps until its turn, and a task cancelled while queued leaves
    without consuming capacity.

    :param rate: acquisitions per period (a positive finite number)
    :param period: the period in seconds (a positive finite number)
    :param fast_acquire: the checkpoint rule of an acquisition that does not
        have to wait, as for :class:`Lock` (``None``: cc's default)
    :raises ValueError: for a zero, negative, infinite or NaN rate or period
    :raises TypeError: for a rate or period that is not a number, or a
        ``fast_acquire`` that is not a bool or ``None``

    >>> import anyio
    >>> from cc.primitives import RateLimiter
    >>> async def main() -> list[bool]:
    ...     limiter = RateLimiter(2, period=1.0)
    ...     await limiter.acquire()
    ...     second = limiter.has_capacity()
    ...     await limiter.acquire()
    ...     return [second, limiter.has_capacity()]
    >>> anyio.run(main)
    [True, False]
    """

    __slots__ = (
        "__weakref__",
        "_due",
        "_in_window",
        "_line",
        "_log",
        "_period",
        "_rate",
        "_slack",
        "_time_slack",
        "_total",
        "_turn_taken",
    )

    def __init__(
        self, rate: float, period: float = 1.0, *, fast_acquire: bool | None = None
    ) -> None:
        self._rate = check_positive_number("rate", rate, allow_inf=False)
        self._period = check_positive_number("period", period, allow_inf=False)
        self._due = checkpoint_rule(fast_acquire)
        # Every acquisition still inside the window, oldest first, as a clock
        # reading followed by its amount (flat: no object per entry), and
        # the sum of those amounts.
        self._log: deque[float] = deque()
        self._in_window = 0.0
        # Sums of float amounts and large clock readings (trio's clock starts
        # at a random offset) carry rounding residues; they must not turn into
        # a refusal or an endless series of tiny sleeps.
        self._slack = self._rate * 1e-9
        self._time_slack = self._period * 1e-9
        self._total = 0.0
        # Waiters take turns: the one holding the turn sleeps until its
        # amount fits, the others wait in line for the turn.
        self._turn_taken = False
        self._line = ParkingLot()

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} rate={self._rate:g}/{self._period:g}s "
            f"waiting={self._tasks_waiting()}>"
        )

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
    def rate(self) -> float:
        """Acquisitions allowed per period."""
        return self._rate

    @property
    def period(self) -> float:
        """The period, in seconds."""
        return self._period

    def _check_amount(self, amount: float) -> float:
        if type(amount) is int and 0 < amount <= self._rate:
            return amount  # the common case, checked at a glance
        value = check_positive_number("amount", amount, allow_inf=False)
        if value > self._rate:
            raise ValueError(
                f"amount ({amount!r}) must not exceed the rate ({self._rate:g}); "
                "it could never be granted"
            )
        return value

    def _expire(self, now: float) -> None:
        horizon = now - self._period + self._time_slack
        log = self._log
        while log and log[0] <= horizon:
            log.popleft()
            self._in_window -= log.popleft()
        if not log:
            self._in_window = 0.0

    def _take(self, amount: float, now: float) -> bool:
        """Record ``amount`` at ``now`` if it fits in the window; say whether it did."""
        log = self._log
        if log and log[0] <= now - self._period + self._time_slack:
            self._expire(now)
        in_window = self._in_window + amount
        if in_window - self._rate > self._slack:
            return False
        if log and log[-2] == now:
            log[-1] += amount
        else:
            log.append(now)
            log.append(amount)
        self._in_window = in_window
        self._total += amount
        return True

    def _delay(self, amount: float, now: float) -> float:
        """Seconds until ``amount`` fits in the window (0.0: it fits now)."""
        self._expire(now)
        excess = self._in_window + amount - self._rate
        if excess <= self._slack:
            return 0.0
        freed = 0.0
        entries = iter(self._log)
        # (reading, amount) pairs, oldest first: they leave the window first
        for stamp, used in zip(entries, entries, strict=True):
            freed += used
            if freed >= excess - self._slack:
                return max(stamp + self._period - now, self._time_slack)
        raise AssertionError("unreachable: amount <= rate")  # pragma: no cover

    def has_capacity(self, amount: float = 1) -> bool:
        """Return whether ``acquire(amount)`` would succeed without waiting."""
        value = self._check_amount(amount)
        return not self._turn_taken and self._delay(value, current_time()) == 0.0

    async def acquire(self, amount: float = 1) -> None:
        """Wait until ``amount`` more acquisitions fit in the window, then take them.

        :raises ValueError: for an amount that is not positive or exceeds the rate
        """
        value = self._check_amount(amount)
        if next(self._due):
            self._due = await take_checkpoint(self._due)
        if not self._turn_taken:
            if self._take(value, current_time()):
                return
            self._turn_taken = True
        else:
            # Woken holding the turn; cancelled just then, it passes it on.
            await self._line.park(hand_back=self._pass_turn)
        try:
            now = current_time()
            while not self._take(value, now):
                await anyio.sleep(self._delay(value, now))
                now = current_time()
        finally:
            self._pass_turn(None)

    def _pass_turn(self, _: object) -> None:
        if self._line.parked:
            self._line.unpark()
        else:
            self._turn_taken = False

    def _tasks_waiting(self) -> int:
        return self._line.parked + self._turn_taken

    def try_acquire(self, amount: float = 1) -> bool:
        """Take ``amount`` if it fits now; never waits.

        :return: whether the acquisition was made
        """
        value = self._check_amount(amount)
        return not self._turn_taken and self._take(value, current_time())

    def statistics(self) -> RateLimiterStatistics:
        """Return the current capacity, waiters and the total acquired."""
        self._expire(current_time())
        return RateLimiterStatistics(
            rate=self._rate,
            period=self._period,
            available=max(0.0, self._rate - self._in_window),
            tasks_waiting=self._tasks_waiting(),
            total_acquired=self._total,
        )
