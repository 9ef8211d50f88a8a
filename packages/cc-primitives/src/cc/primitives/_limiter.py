"""A capacity limiter: a pool of tokens, each borrowed by a named borrower."""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

from cc.primitives._parking import ParkingLot
from cc.primitives._tasks import current_task_key, task_name
from cc.primitives._validation import check_total_tokens

__all__ = ["CapacityLimiter", "CapacityLimiterStatistics"]


@dataclass(frozen=True)
class CapacityLimiterStatistics:
    """A snapshot of a :class:`CapacityLimiter`'s state.

    :ivar borrowed_tokens: tokens currently held
    :ivar total_tokens: the limiter's capacity
    :ivar borrowers: names of the current borrowers
    :ivar tasks_waiting: how many borrowers are queued for a token
    """

    borrowed_tokens: int
    total_tokens: float
    borrowers: tuple[str, ...]
    tasks_waiting: int


def _borrower_name(borrower: object) -> str:
    return task_name(borrower) if not isinstance(borrower, str) else borrower


class CapacityLimiter:
    """Limit how many borrowers may use a resource at once.

    Each borrower (by default the calling task) holds at most one token; a
    second acquisition by the same borrower is a bug and raises
    ``RuntimeError`` instead of silently consuming capacity. Waiters are served
    first in, first out. :attr:`total_tokens` may be changed at run time;
    raising it wakes as many waiters as the new capacity allows.

    Use :meth:`acquire_on_behalf_of` to borrow for something other than the
    current task (a job id, a thread), as with anyio's limiter.

    :param total_tokens: the capacity, an ``int >= 1`` or ``math.inf``
    :raises ValueError: for a capacity below 1 (checked first: ``0.5`` is a
        ``ValueError``)
    :raises TypeError: for a capacity that is neither an int nor ``math.inf``

    >>> import anyio
    >>> from cc.primitives import CapacityLimiter
    >>> async def main() -> tuple[int, float]:
    ...     limiter = CapacityLimiter(3)
    ...     async with limiter:
    ...         return limiter.borrowed_tokens, limiter.available_tokens
    >>> anyio.run(main)
    (1, 2)
    """

    __slots__ = ("_borrowers", "_total_tokens", "_waiters")

    def __init__(self, total_tokens: float) -> None:
        self._total_tokens = check_total_tokens(total_tokens)
        self._borrowers: set[object] = set()
        # Borrowers waiting, keyed by borrower. Tokens are handed straight to
        # them as they free up, so nobody waits while a token is free.
        self._waiters = ParkingLot()

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} borrowed={len(self._borrowers)}/"
            f"{self._total_tokens} waiting={len(self._waiters)}>"
        )

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    # acquire() and release() inline the uncontended path of the
    # *_on_behalf_of methods: they are the hot path of "async with".

    @property
    def total_tokens(self) -> float:
        """The capacity. Setting it re-validates it and wakes waiters if raised."""
        return self._total_tokens

    @total_tokens.setter
    def total_tokens(self, value: float) -> None:
        self._total_tokens = check_total_tokens(value)
        self._wake_waiters()

    @property
    def borrowed_tokens(self) -> int:
        """How many tokens are currently held."""
        return len(self._borrowers)

    @property
    def available_tokens(self) -> float:
        """How many tokens could be borrowed now (never negative)."""
        return max(self._total_tokens - len(self._borrowers), 0)

    async def acquire(self) -> None:
        """Borrow a token for the current task, waiting if none is free.

        :raises RuntimeError: if the current task already holds a token
        """
        task = current_task_key()
        borrowers = self._borrowers
        if len(borrowers) < self._total_tokens and task not in borrowers:
            borrowers.add(task)
        else:
            await self.acquire_on_behalf_of(task)

    def acquire_nowait(self) -> bool:
        """Borrow a token for the current task if one is free at once."""
        return self.acquire_on_behalf_of_nowait(current_task_key())

    async def acquire_on_behalf_of(self, borrower: object) -> None:
        """Borrow a token for ``borrower``, waiting (FIFO) if none is free.

        :raises RuntimeError: if ``borrower`` already holds a token
        :raises TypeError: if ``borrower`` is not hashable
        """
        if not self.acquire_on_behalf_of_nowait(borrower):
            # Woken once _wake_waiters() has added the borrower; cancelled
            # just then, it gives the token back (to the next waiter).
            await self._waiters.park(
                borrower, lambda _: self.release_on_behalf_of(borrower)
            )

    def acquire_on_behalf_of_nowait(self, borrower: object) -> bool:
        """Borrow a token for ``borrower`` if one is free at once.

        :return: whether the token was borrowed
        :raises RuntimeError: if ``borrower`` already holds or awaits a token
        :raises TypeError: if ``borrower`` is not hashable
        """
        try:
            known = borrower in self._borrowers or borrower in self._waiters
        except TypeError:
            raise TypeError(
                f"borrower must be hashable (a task, a name, an id), not "
                f"{type(borrower).__name__}"
            ) from None
        if known:
            raise RuntimeError(
                f"{_borrower_name(borrower)!r} already holds (or is waiting for) "
                "a token of this CapacityLimiter; a borrower may hold only one"
            )
        if len(self._borrowers) < self._total_tokens:
            self._borrowers.add(borrower)
            return True
        return False

    def release(self) -> None:
        """Give back the current task's token.

        :raises RuntimeError: if the current task holds no token
        """
        self.release_on_behalf_of(current_task_key())

    def release_on_behalf_of(self, borrower: object) -> None:
        """Give back the token held by ``borrower``.

        :raises RuntimeError: if ``borrower`` holds no token
        """
        try:
            self._borrowers.remove(borrower)
        except KeyError:
            raise RuntimeError(
                f"{_borrower_name(borrower)!r} holds no token of this CapacityLimiter"
            ) from None
        self._wake_waiters()

    def _wake_waiters(self) -> None:
        waiters, borrowers = self._waiters, self._borrowers
        while waiters.parked and len(borrowers) < self._total_tokens:
            borrowers.add(waiters.unpark())

    def statistics(self) -> CapacityLimiterStatistics:
        """Return a snapshot of borrowed tokens, borrowers and waiters."""
        return CapacityLimiterStatistics(
            borrowed_tokens=len(self._borrowers),
            total_tokens=self._total_tokens,
            borrowers=tuple(_borrower_name(b) for b in self._borrowers),
            tasks_waiting=len(self._waiters),
        )
