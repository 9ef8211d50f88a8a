"""A counting semaphore with first-in first-out waiters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import anyio

from cc.primitives._checkpoints import take_checkpoint
from cc.primitives._parking import Primitive
from cc.primitives._validation import check_int

__all__ = ["Semaphore", "SemaphoreStatistics"]

_S = TypeVar("_S", bound="Semaphore")


@dataclass(frozen=True)
class SemaphoreStatistics(anyio.SemaphoreStatistics):
    """A snapshot of a :class:`Semaphore`'s state.

    It is an :class:`anyio.SemaphoreStatistics` with cc's fields added.

    :ivar tasks_waiting: how many tasks are queued in :meth:`Semaphore.acquire`
    :ivar value: tokens currently available
    :ivar max_value: the upper bound on ``value``, or ``None``
    """

    value: int
    max_value: int | None


class Semaphore(Primitive):
    """A counting semaphore: at most ``initial_value`` holders at once.

    :meth:`acquire` takes a token, waiting in first-in first-out order when
    none is left; :meth:`release` gives one back, handing it straight to the
    task that has waited longest. With ``max_value`` set, a release that would
    push the value above it raises ``ValueError`` (a bounded semaphore), which
    catches unbalanced releases early.

    Waiting is a cancellation point, and a task cancelled while waiting
    never strands a token. It is a drop-in for :class:`anyio.Semaphore` (same
    arguments, methods, exceptions and statistics).

    :param initial_value: tokens available at first (``>= 0``)
    :param max_value: optional upper bound on the value (``>= initial_value``)
    :param fast_acquire: the checkpoint rule of an acquisition that does not
        have to wait, as for :class:`Lock` (``None``: cc's default)
    :raises TypeError: for a value that is not an integer, or a
        ``fast_acquire`` that is not a bool or ``None``
    :raises ValueError: for a negative ``initial_value`` or a ``max_value``
        below it

    >>> import anyio
    >>> from cc.primitives import Semaphore
    >>> async def main() -> tuple[int, int]:
    ...     sem = Semaphore(2, max_value=2)
    ...     async with sem:
    ...         inside = sem.value
    ...     return inside, sem.value
    >>> anyio.run(main)
    (1, 2)
    """

    __slots__ = ("_max_value", "_value")

    def __init__(
        self,
        initial_value: int,
        *,
        max_value: int | None = None,
        fast_acquire: bool | None = None,
    ) -> None:
        check_int("initial_value", initial_value, minimum=0)
        check_int("max_value", max_value, minimum=0, or_none=True)
        if max_value is not None and max_value < initial_value:
            raise ValueError(
                "max_value must be equal to or higher than initial_value "
                f"(max_value={max_value}, initial_value={initial_value})"
            )
        # A release hands its token straight to the first waiter, so the
        # value stays 0 while anyone waits.
        super().__init__(fast_acquire)
        self._value = initial_value
        self._max_value = max_value

    def _state(self) -> str:
        bound = "" if self._max_value is None else f"/{self._max_value}"
        return f"value={self._value}{bound}"

    async def __aenter__(self: _S) -> _S:
        if next(self._due):
            self._due = await take_checkpoint(self._due)
        if self._value > 0:
            self._value -= 1
        else:
            # Woken with the token a release handed over.
            await self._waiters.park(hand_back=self._pass_on)
        return self

    @property
    def value(self) -> int:
        """Tokens currently available."""
        return self._value

    @property
    def max_value(self) -> int | None:
        """The upper bound on :attr:`value`, or ``None`` if unbounded."""
        return self._max_value

    async def acquire(self) -> None:
        """Take a token, waiting (first in, first out) until one is available."""
        await self.__aenter__()

    def acquire_nowait(self) -> None:
        """Take a token without waiting.

        :raises anyio.WouldBlock: if no token is available
        """
        if self._value <= 0:
            raise anyio.WouldBlock
        self._value -= 1

    def release(self) -> None:
        """Return a token, handing it to the longest-waiting task if there is one.

        :raises ValueError: if that would raise the value above ``max_value``
        """
        if self._max_value is not None and self._value >= self._max_value:
            raise ValueError(
                "semaphore released too many times: release() would raise the "
                f"value above max_value ({self._max_value})"
            )
        if self._waiters.parked:
            self._waiters.unpark()
        else:
            self._value += 1

    def _pass_on(self, _: object) -> None:
        # A token was handed to a waiter cancelled before it could resume.
        self.release()

    def locked(self) -> bool:
        """Return whether :meth:`acquire` would have to wait."""
        return self._value == 0

    def statistics(self) -> SemaphoreStatistics:
        """Return a snapshot of the value and the number of waiting tasks."""
        return SemaphoreStatistics(
            tasks_waiting=self._waiters.parked,
            value=self._value,
            max_value=self._max_value,
        )
