"""A capacity limiter: a pool of tokens, each borrowed by a named borrower."""

from __future__ import annotations

from dataclasses import dataclass

import anyio

from cc.primitives._backend import current_task_key, task_name
from cc.primitives._checkpoints import take_checkpoint
from cc.primitives._parking import Primitive
from cc.primitives._validation import check_total_tokens

__all__ = ["CapacityLimiter", "CapacityLimiterStatistics"]


@dataclass(frozen=True)
class CapacityLimiterStatistics(anyio.CapacityLimiterStatistics):
    """A snapshot of a :class:`CapacityLimiter`'s state.

    It is an :class:`anyio.CapacityLimiterStatistics` with cc's field added.

    :ivar borrowed_tokens: tokens currently held
    :ivar total_tokens: the limiter's capacity
    :ivar borrowers: the current borrowers themselves (tasks, or what was
        passed to :meth:`CapacityLimiter.acquire_on_behalf_of`)
    :ivar tasks_waiting: how many borrowers are queued for a token
    :ivar borrower_names: the borrowers' names, in the order of ``borrowers``
    """

    borrower_names: tuple[str, ...]


def _borrower_name(borrower: object) -> str:
    return borrower if isinstance(borrower, str) else task_name(borrower)


def _unhashable(borrower: object) -> TypeError:
    return TypeError(
        "borrower must be hashable (a task, a name, an id), not "
        f"{type(borrower).__name__}"
    )


class CapacityLimiter(Primitive):
    """Limit how many borrowers may use a resource at once.

    Each borrower (by default the calling task) holds at most one token; a
    second acquisition by the same borrower is a bug and raises
    ``RuntimeError`` instead of silently consuming capacity. Waiters are served
    first in, first out: a freed token goes straight to the one that has
    waited longest. :attr:`total_tokens` may be changed at run time; raising
    it wakes as many waiters as the new capacity allows.

    Use :meth:`acquire_on_behalf_of` to borrow for something other than the
    current task (a job id, a thread). It is a drop-in for
    :class:`anyio.CapacityLimiter` (same arguments, methods, exceptions and
    statistics), except that the capacity must be at least 1, as the
    reference API says (anyio accepts 0).

    :param total_tokens: the capacity, an ``int >= 1`` or ``math.inf``
    :param fast_acquire: the checkpoint rule of an acquisition that does not
        have to wait, as for :class:`Lock` (``None``: cc's default)
    :raises ValueError: for a capacity below 1 (checked first: ``0.5`` is a
        ``ValueError``)
    :raises TypeError: for a capacity that is neither an int nor ``math.inf``,
        or a ``fast_acquire`` that is not a bool or ``None``

    >>> import anyio
    >>> from cc.primitives import CapacityLimiter
    >>> async def main() -> tuple[int, float]:
    ...     limiter = CapacityLimiter(3)
    ...     async with limiter:
    ...         return limiter.borrowed_tokens, limiter.available_tokens
    >>> anyio.run(main)
    (1, 2)
    """

    __slots__ = ("_borrowers", "_total_tokens")

    def __init__(
        self, total_tokens: float, *, fast_acquire: bool | None = None
    ) -> None:
        self._total_tokens = check_total_tokens(total_tokens)
        # Waiters are keyed by borrower. Tokens are handed straight to them
        # as they free up, so nobody waits while a token is free.
        super().__init__(fast_acquire)
        self._borrowers: set[object] = set()

    def _state(self) -> str:
        return f"borrowed={len(self._borrowers)}/{self._total_tokens}"

    async def __aenter__(self) -> None:
        if next(self._due):
            self._due = await take_checkpoint(self._due)
        task = current_task_key()
        borrowers = self._borrowers
        if len(borrowers) < self._total_tokens and task not in borrowers:
            borrowers.add(task)
        elif not self._borrow(task):
            await self._wait_for_token(task)

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
        await self.__aenter__()

    def acquire_nowait(self) -> None:
        """Borrow a token for the current task without waiting.

        :raises anyio.WouldBlock: if no token is free
        :raises RuntimeError: if the current task already holds a token
        """
        self.acquire_on_behalf_of_nowait(current_task_key())

    async def acquire_on_behalf_of(self, borrower: object) -> None:
        """Borrow a token for ``borrower``, waiting (FIFO) if none is free.

        :raises RuntimeError: if ``borrower`` already holds or awaits a token
        :raises TypeError: if ``borrower`` is not hashable
        """
        if next(self._due):
            self._due = await take_checkpoint(self._due)
        if not self._borrow(borrower):
            await self._wait_for_token(borrower)

    def acquire_on_behalf_of_nowait(self, borrower: object) -> None:
        """Borrow a token for ``borrower`` without waiting.

        :raises anyio.WouldBlock: if no token is free
        :raises RuntimeError: if ``borrower`` already holds or awaits a token
        :raises TypeError: if ``borrower`` is not hashable
        """
        if not self._borrow(borrower):
            raise anyio.WouldBlock

    def _borrow(self, borrower: object) -> bool:
        """Lend ``borrower`` a free token; ``False`` if there is none."""
        try:
            holding = borrower in self._borrowers
        except TypeError:
            raise _unhashable(borrower) from None
        if holding or borrower in self._waiters:
            state = "holding" if holding else "waiting for"
            raise RuntimeError(
                f"this borrower ({_borrower_name(borrower)!r}) is already {state} "
                "one of this CapacityLimiter's tokens; a borrower may hold only one"
            )
        if len(self._borrowers) < self._total_tokens:
            self._borrowers.add(borrower)
            return True
        return False

    async def _wait_for_token(self, borrower: object) -> None:
        # Woken once _wake_waiters() has lent the borrower a token; cancelled
        # just then, it gives the token back (to the next waiter).
        await self._waiters.park(
            borrower, lambda _: self.release_on_behalf_of(borrower)
        )

    def release(self) -> None:
        """Give back the current task's token.

        :raises RuntimeError: if the current task holds no token
        """
        self.release_on_behalf_of(current_task_key())

    def release_on_behalf_of(self, borrower: object) -> None:
        """Give back the token held by ``borrower``.

        :raises RuntimeError: if ``borrower`` holds no token
        :raises TypeError: if ``borrower`` is not hashable
        """
        try:
            self._borrowers.remove(borrower)
        except KeyError:
            raise RuntimeError(
                f"this borrower ({_borrower_name(borrower)!r}) isn't holding any "
                "of this CapacityLimiter's tokens"
            ) from None
        except TypeError:
            raise _unhashable(borrower) from None
        if self._waiters.parked:
            self._wake_waiters()

    def _wake_waiters(self) -> None:
        waiters, borrowers = self._waiters, self._borrowers
        while waiters.parked and len(borrowers) < self._total_tokens:
            borrowers.add(waiters.unpark())

    def statistics(self) -> CapacityLimiterStatistics:
        """Return a snapshot of borrowed tokens, borrowers and waiters."""
        borrowers = tuple(self._borrowers)
        return CapacityLimiterStatistics(
            borrowed_tokens=len(borrowers),
            total_tokens=self._total_tokens,
            borrowers=borrowers,
            tasks_waiting=self._waiters.parked,
            borrower_names=tuple(_borrower_name(b) for b in borrowers),
        )
