"""The errors that cc.locks raises on purpose."""

from __future__ import annotations

from collections.abc import Sequence

from cc.primitives import ConcurrencyError

__all__ = [
    "DeadlockError",
    "LockBackendError",
    "LockLostError",
    "LockOrderError",
    "LockTimeoutError",
    "lost_error",
]


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


class LockLostError(ConcurrencyError, RuntimeError):
    """A lease on a shared lock ended before its holder released it.

    Raised when a lock taken through a manager with a ``backend`` (locks
    shared by processes through Redis) is released: if its lease expired,
    was taken over by another holder, could not be renewed in time, or the
    release itself could not be confirmed. The block it protected may have
    run while another process held the same lock, so whatever it wrote must
    be checked (a fencing token is the way to make such writes safe).
    Every lock of the block is released, locally and on the backend, before
    this is raised.

    :ivar lock_names: the locks whose lease was lost, in the order released
    :ivar reasons: why each of them was lost, in the same order
    """

    def __init__(
        self, message: str, lock_names: tuple[str, ...], reasons: tuple[str, ...]
    ) -> None:
        super().__init__(message)
        self.lock_names = lock_names
        self.reasons = reasons


class LockBackendError(ConcurrencyError, ConnectionError):
    """The lock backend (Redis) could not be reached, or refused a command.

    Raised instead of taking a lock, with the backend's own error as its
    ``__cause__``; nothing is held afterwards. The manager recovers by
    itself once the backend answers again.

    :ivar lock_name: the lock being taken, or ``None``
    """

    def __init__(self, message: str, lock_name: str | None = None) -> None:
        super().__init__(message)
        self.lock_name = lock_name


def lost_error(lost: Sequence[tuple[str, str]]) -> LockLostError:
    """Return the :class:`LockLostError` for ``(name, reason)`` pairs."""
    parts = "; ".join(f"{name!r}: {reason}" for name, reason in lost)
    plural = "s" if len(lost) > 1 else ""
    return LockLostError(
        f"lost the shared lock{plural} before releasing: {parts}. The block "
        "may have run while another holder had the lock; rely on the "
        "fencing token to reject its stale writes",
        tuple(name for name, _ in lost),
        tuple(reason for _, reason in lost),
    )
