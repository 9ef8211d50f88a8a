"""A condition variable built on the reentrant :class:`~cc.primitives.Lock`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
from anyio.lowlevel import checkpoint_if_cancelled

from cc.primitives._checkpoints import checkpoint, checkpoint_due, take_checkpoint
from cc.primitives._lock import Lock, LockStatistics
from cc.primitives._parking import ParkingLot, Primitive
from cc.primitives._validation import check_int

__all__ = ["Condition", "ConditionStatistics"]

_T = TypeVar("_T")


@dataclass(frozen=True)
class ConditionStatistics(anyio.ConditionStatistics):
    """A snapshot of a :class:`Condition` (an :class:`anyio.ConditionStatistics`).

    :ivar tasks_waiting: tasks blocked in :meth:`Condition.wait`
    :ivar lock_statistics: the underlying lock's statistics (a
        :class:`~cc.primitives.LockStatistics`)
    """

    lock_statistics: LockStatistics


class _Notified:
    """What notify() returns: already done; awaiting it is a checkpoint.

    Nothing happens unless it is awaited, so dropping it is fine (no "never
    awaited" warning, unlike a coroutine). Awaited, it follows cc's
    checkpoint rule.
    """

    __slots__ = ()

    def __await__(self) -> Generator[Any, Any, None]:
        if checkpoint_due():
            yield from checkpoint().__await__()


_NOTIFIED = _Notified()


class Condition(Primitive):
    """A condition variable: wait until another task notifies you.

    The condition wraps a reentrant :class:`Lock` (a new one unless given).
    :meth:`wait` must be called with that lock held; it releases the lock
    *fully*, even when the task acquired it several times, and restores the
    same depth before returning, so code that re-enters its lock can still
    wait. :meth:`notify` and :meth:`notify_all` also require the lock; they
    take effect when called, and what they return may be awaited (a
    checkpoint, as the reference API writes ``await condition.notify()``) or
    dropped (as anyio and asyncio code calls them): both styles work.

    Waiters are woken in first-in first-out order. A cancelled waiter still
    re-acquires the lock before the cancellation propagates, so the
    ``async with condition`` block around it stays balanced. It is a drop-in
    for :class:`anyio.Condition` built on cc's reentrant :class:`Lock`.

    :param lock: the lock to use; a new :class:`Lock` if ``None``
    :raises TypeError: if ``lock`` is not a :class:`cc.primitives.Lock`

    >>> import anyio
    >>> from cc.primitives import Condition
    >>> async def main() -> list[int]:
    ...     cond, items = Condition(), []
    ...     async def consumer() -> None:
    ...         async with cond:
    ...             await cond.wait_for(lambda: items)
    ...     async with anyio.create_task_group() as tg:
    ...         tg.start_soon(consumer)
    ...         await anyio.sleep(0.01)
    ...         async with cond:
    ...             items.append(1)
    ...             await cond.notify()
    ...     return items
    >>> anyio.run(main)
    [1]
    """

    __slots__ = ("_lock",)

    def __init__(self, lock: Lock | None = None) -> None:
        if lock is None:
            lock = Lock()
        elif not isinstance(lock, Lock):
            raise TypeError(
                f"lock must be a cc.primitives.Lock, not {type(lock).__name__}"
            )
        self._lock = lock
        # No checkpoint rule of its own: wait_for() follows the lock's.
        self._waiters = ParkingLot()

    def _state(self) -> str:
        return repr(self._lock)

    async def __aenter__(self) -> None:
        await self._lock.__aenter__()

    @property
    def lock(self) -> Lock:
        """The lock this condition uses."""
        return self._lock

    async def acquire(self) -> bool:
        """Acquire the underlying lock.

        :return: always ``True``
        """
        return await self._lock.acquire()

    def acquire_nowait(self) -> None:
        """Acquire the underlying lock without waiting.

        :raises anyio.WouldBlock: if another task holds it
        """
        self._lock.acquire_nowait()

    def release(self) -> None:
        """Release the underlying lock (one level)."""
        self._lock.release()

    def locked(self) -> bool:
        """Return whether the underlying lock is held."""
        return self._lock.locked()

    def _check_owner(self, what: str) -> None:
        if not self._lock.owned_by_current_task():
            raise RuntimeError(
                "The current task is not holding the underlying lock: "
                f"{what}() needs it (use 'async with condition:')"
            )

    async def wait(self) -> None:
        """Release the lock fully, wait for a notification, then re-acquire it.

        :raises RuntimeError: if the calling task does not hold the lock
        """
        await checkpoint_if_cancelled()  # already cancelled: keep the lock
        self._check_owner("wait")
        depth = self._lock._release_all()
        try:
            # A notification that reaches a waiter cancelled before it could
            # resume is passed on, so that it is not lost.
            await self._waiters.park(hand_back=self._pass_on)
        finally:
            # Re-acquire even when cancelled, so that the caller's
            # "async with condition" still owns the lock it will release.
            with anyio.CancelScope(shield=True):
                await self._lock._reacquire(depth)

    async def wait_for(self, predicate: Callable[[], _T]) -> _T:
        """Wait until ``predicate()`` is true and return its value.

        The predicate is checked with the lock held, first before waiting and
        again after every notification. A call that need not wait follows the
        lock's checkpoint rule.
        """
        lock = self._lock
        if next(lock._due):
            lock._due = await take_checkpoint(lock._due)
        result = predicate()
        while not result:
            await self.wait()
            result = predicate()
        return result

    def notify(self, n: int = 1) -> Awaitable[None]:
        """Wake up to ``n`` waiting tasks (the longest-waiting first), now.

        :return: an object that may be awaited (a checkpoint) or dropped
        :raises RuntimeError: if the calling task does not hold the lock
        :raises ValueError: if ``n`` is negative
        """
        check_int("n", n, minimum=0)
        self._check_owner("notify")
        self._waiters.unpark_n(n)
        return _NOTIFIED

    def notify_all(self) -> Awaitable[None]:
        """Wake every waiting task, now.

        :return: an object that may be awaited (a checkpoint) or dropped
        :raises RuntimeError: if the calling task does not hold the lock
        """
        self._check_owner("notify_all")
        self._waiters.unpark_all()
        return _NOTIFIED

    def _pass_on(self, _: object) -> None:
        self._waiters.unpark_n(1)

    def statistics(self) -> ConditionStatistics:
        """Return the number of waiting tasks and the lock's statistics."""
        return ConditionStatistics(
            tasks_waiting=self._waiters.parked,
            lock_statistics=self._lock.statistics(),
        )
