"""A reentrant, task-owned, first-in first-out async lock."""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

import anyio

from cc.primitives._backend import current_task_key, task_info, task_name
from cc.primitives._checkpoints import take_checkpoint
from cc.primitives._parking import Primitive

__all__ = ["Lock", "LockStatistics"]


@dataclass(frozen=True)
class LockStatistics(anyio.LockStatistics):
    """A snapshot of a :class:`Lock`'s state (an :class:`anyio.LockStatistics`).

    :ivar locked: whether some task holds the lock
    :ivar owner: the owning task as an :class:`anyio.TaskInfo` (its ``name``
        says which), or ``None``
    :ivar tasks_waiting: how many tasks are queued to acquire it
    :ivar depth: how many times the owner has acquired the lock without
        releasing it (0 when free)
    """

    depth: int


class Lock(Primitive):
    """A reentrant mutual-exclusion lock owned by the task that acquired it.

    The owning task may acquire the lock again; it must then release it as
    many times before another task can take it. Only the owner may release
    it, on every path (``async with`` included). Waiting tasks are served
    strictly first in, first out: on release the lock is handed directly to
    the task that has waited longest, so a running task cannot barge ahead of
    it. A task cancelled while waiting leaves no trace.

    It is a drop-in for :class:`anyio.Lock` (same arguments, methods,
    exceptions and statistics), except that it is reentrant where anyio's
    raises ``RuntimeError``.

    :param fast_acquire: the checkpoint rule of an acquisition that does not
        have to wait: ``None`` (cc's default) makes every
        :data:`~cc.primitives.lowlevel.CHECKPOINT_INTERVAL`-th such call on a
        thread a checkpoint, ``False`` makes every call one (anyio's and
        trio's default), ``True`` never yields (anyio's opt-in); see the
        primitives guide
    :raises TypeError: for a ``fast_acquire`` that is not a bool or ``None``

    The lock belongs to the event loop of the tasks that use it; it is not
    thread safe.

    >>> import anyio
    >>> from cc.primitives import Lock
    >>> async def main() -> int:
    ...     lock = Lock()
    ...     async with lock:
    ...         async with lock:  # the owner may re-enter
    ...             depth = lock.statistics().depth
    ...     return depth
    >>> anyio.run(main)
    2
    """

    __slots__ = ("_depth", "_owner")

    def __init__(self, *, fast_acquire: bool | None = None) -> None:
        # Waiters are keyed by task. The lock is handed straight to the first
        # of them on release, so it is never free while one waits.
        super().__init__(fast_acquire)
        self._owner: object | None = None
        self._depth = 0

    def _state(self) -> str:
        if self._owner is None:
            return "unlocked"
        return f"locked by {task_name(self._owner)!r} depth={self._depth}"

    async def __aenter__(self) -> None:
        if next(self._due):
            self._due = await take_checkpoint(self._due)
        task = current_task_key()
        owner = self._owner
        if owner is None:  # the common cases, without a call
            self._owner, self._depth = task, 1
        elif owner is task:
            self._depth += 1
        else:  # woken as the new owner (at depth 1) by _hand_off()
            await self._waiters.park(task, self._pass_on)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._owner is current_task_key():  # the common cases, without a call
            if self._depth > 1:
                self._depth -= 1
                return
            if not self._waiters.parked:
                self._owner, self._depth = None, 0
                return
        self.release()  # hands the lock on, or names its owner if it is not us

    async def acquire(self) -> bool:
        """Acquire the lock, waiting until it is free; re-enter if already owned.

        :return: always ``True`` (as the reference API and :class:`asyncio.Lock`)
        """
        await self.__aenter__()
        return True

    def acquire_nowait(self) -> None:
        """Acquire the lock (or re-enter it) without waiting.

        :raises anyio.WouldBlock: if another task holds the lock
        """
        if not self._take(current_task_key()):
            raise anyio.WouldBlock

    def _take(self, task: object) -> bool:
        owner = self._owner
        if owner is None:
            self._owner = task
            self._depth = 1
        elif owner is task:
            self._depth += 1
        else:
            return False
        return True

    def release(self) -> None:
        """Release one level of ownership; the last release frees the lock.

        :raises RuntimeError: if the calling task does not hold the lock (the
            message names the task that does)
        """
        owner = self._owner
        if owner is not current_task_key():
            if owner is None:
                raise RuntimeError(
                    "The current task is not holding this lock (it is not locked)"
                )
            raise RuntimeError(
                "The current task is not holding this lock (it is held by "
                f"another task, {task_name(owner)!r})"
            )
        if self._depth > 1:
            self._depth -= 1
        else:
            self._hand_off()

    def _hand_off(self) -> None:
        """Give the lock to the longest waiter at depth 1, or free it."""
        waiters = self._waiters
        if waiters.parked:
            self._owner = waiters.unpark()
            self._depth = 1
        else:
            self._owner = None
            self._depth = 0

    def _pass_on(self, _: object) -> None:
        # The lock was handed to a waiter cancelled before it could resume.
        self._hand_off()

    def locked(self) -> bool:
        """Return whether any task holds the lock."""
        return self._owner is not None

    def owned_by_current_task(self) -> bool:
        """Return whether the calling task holds the lock."""
        return self._owner is not None and self._owner is current_task_key()

    def statistics(self) -> LockStatistics:
        """Return a snapshot of the lock's owner, depth and waiting tasks."""
        owner = self._owner
        return LockStatistics(
            locked=owner is not None,
            owner=None if owner is None else task_info(owner),
            tasks_waiting=self._waiters.parked,
            depth=self._depth,
        )

    # Used by Condition: give the lock up entirely, and take it back at the
    # same depth, whatever that depth was (waiting without the rule's
    # checkpoint: the caller has just waited).
    def _release_all(self) -> int:
        depth = self._depth
        self._hand_off()
        return depth

    async def _reacquire(self, depth: int) -> None:
        task = current_task_key()
        if not self._take(task):
            await self._waiters.park(task, self._pass_on)
        self._depth = depth
