"""The errors that cc.locks raises on purpose."""

from __future__ import annotations

from cc.primitives import ConcurrencyError

__all__ = ["DeadlockError", "LockOrderError", "LockTimeoutError"]


class LockOrderError(ConcurrencyError, RuntimeError):
    """Locks were (or were about to be) taken in an order that can deadlock.

    Raised when a thread or task holding a lock asks for one that must come
    before it: a lower declared order, or, for locks registered with
    ``order=None``, an order that contradicts one already seen. The message
    names both acquisition sites.

    :ivar cycle: the lock names along the offending order, first name
        repeated at the end (``("a", "b", "a")`` means "b" was asked for
        while holding "a" and, elsewhere, "a" while holding "b")
    """

    def __init__(self, message: str, cycle: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.cycle = cycle


class DeadlockError(LockOrderError):
    """Waiting for a lock would never end: a live wait-for cycle was found.

    Raised in the thread or task whose wait would close the cycle, before it
    blocks; every other member of the cycle keeps waiting and proceeds once
    the caller's locks are released.

    :ivar cycle: the lock names along the cycle, first name repeated at the
        end
    :ivar holders: the thread or task holding each lock in ``cycle`` (one
        fewer entry than ``cycle``)
    """

    def __init__(
        self, message: str, cycle: tuple[str, ...], holders: tuple[str, ...]
    ) -> None:
        super().__init__(message, cycle)
        self.holders = holders


class LockTimeoutError(ConcurrencyError, TimeoutError):
    """A lock could not be acquired before the deadline, or at once.

    The message names the lock, its holder and where the holder acquired it.

    :ivar lock_name: the lock that was not acquired
    :ivar holder: the thread or task that held it, or ``None`` if unknown
    """

    def __init__(self, message: str, lock_name: str, holder: str | None) -> None:
        super().__init__(message)
        self.lock_name = lock_name
        self.holder = holder
