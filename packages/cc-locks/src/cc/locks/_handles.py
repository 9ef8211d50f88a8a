"""The lock objects of both managers: managed locks, records, ``acquire()`` contexts."""

from __future__ import annotations

from sys import _getframe
from time import monotonic
from typing import Any

from cc.locks._errors import LockTimeoutError
from cc.locks._hierarchy import check_blocking, check_seconds
from cc.locks._manager import ManagedLockBase
from cc.locks._records import (
    Holder,
    LockRecord,
    Plan,
    Site,
    caller_site,
    foreign_release_error,
    release_levels,
    take_free,
    thread_holder,
)
from cc.primitives.lowlevel import checkpoint, checkpoint_due, take_checkpoint

__all__ = [
    "LockInfo", "ManagedLock", "SharedAcquisition", "ThreadAcquisition",
    "AsyncLockInfo", "AsyncManagedLock", "SharedTaskAcquisition", "TaskAcquisition",
    "pace",
]  # fmt: skip


class ManagedLock(ManagedLockBase["LockInfo"]):
    """A lock registered with a :class:`LockManager`, used like an RLock.

    Acquiring it goes through the same checks as :meth:`LockManager.acquire`
    for one lock. Like :class:`threading.RLock`, ``with lock:`` waits as long
    as it takes (deadlock detection still applies).

    >>> from cc.locks import LockManager
    >>> manager = LockManager()
    >>> lock = manager.register_lock("jobs", order=None)
    >>> with lock:
    ...     manager.get_lock_status()["jobs"]["owner"]
    "thread 'MainThread'"
    """

    __slots__ = ()
    _manager: Any  # the LockManager

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Acquire the lock, like :meth:`threading.RLock.acquire`.

        :param blocking: with ``False``, return at once if another thread holds it
        :param timeout: seconds to wait at most; ``-1`` (or a number too large
            for a float) waits as long as it takes
        :return: whether the lock was acquired
        :raises TypeError: for a timeout that is not a number, or a ``blocking``
            that is not a bool
        :raises ValueError: for a timeout with ``blocking=False``, or a negative
            timeout other than ``-1``, or NaN
        :raises LockOrderError: if it breaks the lock order (policy ``"raise"``)
        :raises DeadlockError: if waiting would close a wait-for cycle
        :raises LockBackendError: (with a backend) if the store cannot be reached
        """
        self._check_registered()
        check_blocking(blocking)
        if timeout == -1:
            limit = None
        elif not blocking:
            raise ValueError("can't specify a timeout for a non-blocking call")
        else:
            limit = check_seconds(timeout, forever="-1")
        try:
            self._manager._enter(self._plan, limit, blocking, caller_site(1))
        except LockTimeoutError:
            return False
        return True

    def release(self) -> None:
        """Release one level of the calling thread's hold on the lock.

        :raises RuntimeError: if the calling thread does not hold it
        :raises LockLostError: (with a backend) if the lease was lost before
            this last release; the lock is released all the same
        """
        self._manager._release(self._plan.records, None)

    def __enter__(self) -> bool:
        self._check_registered()
        self._manager._enter(self._plan, None, True, caller_site(1))
        return True

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._manager._release(self._plan.records, None)

    def owned_by_current_thread(self) -> bool:
        """Return whether the calling thread holds the lock."""
        owner = self._record._owner
        return owner is not None and owner is self._manager._caller()


class LockInfo(LockRecord[ManagedLock]):
    """The record of a lock registered with a :class:`LockManager`.

    :attr:`lock` is the :class:`ManagedLock` that :meth:`LockManager.get_lock`
    returns; the other attributes describe the registration, the current
    holder and, through :meth:`statistics`, the lock's history.

    >>> from cc.locks import LockManager
    >>> manager = LockManager()
    >>> _ = manager.register_lock("db", 10, "the database")
    >>> info = manager.get_lock_info("db")
    >>> (info.name, info.order, info.description, info.is_locked)
    ('db', 10, 'the database', False)
    """

    __slots__ = ()
    _threaded = True


class ThreadAcquisition:
    """The context manager of :meth:`LockManager.acquire`.

    It keeps no state between ``__enter__`` and ``__exit__`` (the holder is
    the calling thread's), so one instance serves every thread and level.
    """

    __slots__ = ("_blocking", "_local", "_manager", "_plan", "_timeout")

    def __init__(
        self, manager: Any, plan: Plan[LockInfo], timeout: float | None,
        blocking: bool,
    ) -> None:  # fmt: skip
        self._manager, self._local, self._plan = manager, manager._local, plan
        self._timeout, self._blocking = timeout, blocking

    def __enter__(self) -> None:
        frame = _getframe(1)  # the with statement's frame: where it is taken
        site = (frame.f_code, frame.f_lasti)
        try:
            holder: Holder = self._local.holder
        except AttributeError:
            holder = self._local.holder = thread_holder()
        plan, now = self._plan, monotonic()
        taken = take_free(plan, holder, now, site)
        if taken < plan.size:
            self._manager._enter_rest(
                plan, taken, holder, site, self._timeout, self._blocking, now
            )

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            holder: Holder = self._local.holder
        except AttributeError:
            holder = self._local.holder = thread_holder()
        foreign = release_levels(self._plan.release_order, holder, monotonic())
        if foreign:
            raise foreign_release_error(foreign, holder.describe())


class SharedAcquisition(ThreadAcquisition):
    """:meth:`LockManager.acquire` of a manager with a backend."""

    __slots__ = ()

    def __enter__(self) -> None:
        frame = _getframe(1)
        site = (frame.f_code, frame.f_lasti)
        self._manager._enter(self._plan, self._timeout, self._blocking, site)

    def __exit__(self, *exc_info: object) -> None:
        self._manager._release(self._plan.release_order, self._manager._attach())


async def pace() -> None:
    """Apply cc's checkpoint rule (see :mod:`cc.primitives.lowlevel`)."""
    if checkpoint_due():
        await checkpoint()


class AsyncManagedLock(ManagedLockBase["AsyncLockInfo"]):
    """A lock registered with an :class:`AsyncLockManager`, used like a Lock.

    It behaves like :class:`cc.primitives.Lock` (reentrant, owned by the task
    that acquired it, first in first out) and goes through the same checks as
    :meth:`AsyncLockManager.acquire` for one lock. ``async with lock:`` and
    :meth:`acquire` wait as long as it takes (deadlock detection still
    applies); use :func:`anyio.fail_after` or ``manager.acquire(name,
    timeout=...)`` for a deadline.

    >>> import anyio
    >>> from cc.locks import AsyncLockManager
    >>> async def main() -> str:
    ...     manager = AsyncLockManager()
    ...     lock = await manager.register_lock("jobs", order=None)
    ...     async with lock:
    ...         async with lock:  # re-entry by the holder
    ...             return f"depth {manager.get_lock_info_nowait('jobs').depth}"
    >>> anyio.run(main)
    'depth 2'
    """

    __slots__ = ()
    _manager: Any  # the AsyncLockManager

    async def acquire(self) -> bool:
        """Acquire the lock, waiting as long as it takes; re-enter if held.

        :return: always ``True``
        :raises LockOrderError: if it breaks the lock order (policy ``"raise"``)
        :raises DeadlockError: if waiting would close a wait-for cycle
        :raises LockBackendError: (with a backend) if the store cannot be reached
        """
        self._check_registered()
        await self._manager._enter(self._plan, None, True, caller_site(1))
        return True

    def acquire_nowait(self) -> bool:
        """Acquire the lock if that is possible without waiting.

        :return: whether the calling task now holds the lock
        :raises LockOrderError: if it breaks the lock order (policy ``"raise"``)
        :raises RuntimeError: with a backend, where taking a lock needs a round
            trip (use ``manager.acquire(name, blocking=False)``)
        """
        self._check_registered()
        manager = self._manager
        if manager._backend is not None:
            raise RuntimeError(
                f"lock {self.name!r} is shared through a backend and cannot be "
                "taken without awaiting: use `async with "
                "manager.acquire(name, blocking=False)` instead"
            )
        holder = manager._attach()
        taken: int = manager._engine.take_ready(
            self._plan, 0, holder, caller_site(1), monotonic()
        )
        if not taken:
            manager._detach_if_idle(holder)
        return taken == 1

    def release(self) -> None:
        """Release one level of the calling task's hold on the lock.

        :raises RuntimeError: if the calling task does not hold it, or the lock
            is shared through a backend (use :meth:`arelease`)
        """
        manager = self._manager
        if manager._backend is not None:
            raise RuntimeError(
                f"lock {self.name!r} is shared through a backend: releasing it "
                "needs a round trip, so use `await lock.arelease()` (or "
                "`async with lock:`)"
            )
        manager._release_here(self._plan.records, manager._caller_holding(self._record))

    async def arelease(self) -> None:
        """Release one level of the calling task's hold, with or without a backend.

        :raises RuntimeError: if the calling task does not hold it
        :raises LockLostError: (with a backend) if the lease was lost before
            this last release; the lock is released all the same
        """
        await self._manager._release(self._plan.records, None)

    async def __aenter__(self) -> None:
        self._check_registered()
        await self._manager._enter(self._plan, None, True, caller_site(1))

    async def __aexit__(self, *exc_info: object) -> None:
        await self._manager._release(self._plan.records, None)

    def owned_by_current_task(self) -> bool:
        """Return whether the calling task holds the lock."""
        owner = self._record._owner
        return owner is not None and owner is self._manager._caller()


class AsyncLockInfo(LockRecord[AsyncManagedLock]):
    """The record of a lock registered with an :class:`AsyncLockManager`.

    :attr:`lock` is the :class:`AsyncManagedLock` that
    :meth:`AsyncLockManager.get_lock` returns; the other attributes describe
    the registration, the current holder and, through :meth:`statistics`,
    the lock's history.
    """

    __slots__ = ()
    _threaded = False


class TaskAcquisition:
    """The async context manager of :meth:`AsyncLockManager.acquire`."""

    __slots__ = ("_blocking", "_holder", "_manager", "_more", "_plan", "_site",
                 "_timeout")  # fmt: skip

    def __init__(
        self, manager: Any, plan: Plan[AsyncLockInfo],
        timeout: float | None, blocking: bool, site: Site,
    ) -> None:  # fmt: skip
        self._manager, self._plan, self._site = manager, plan, site
        self._timeout, self._blocking = timeout, blocking
        # Who is inside: the first holder, then any others (the same context
        # may be entered by several tasks, or again by the same one).
        self._holder: Holder | None = None
        self._more: list[Holder] | None = None

    async def __aenter__(self) -> None:
        manager = self._manager
        if next(manager._due):  # cc's checkpoint rule, before taking anything
            manager._due = await take_checkpoint(manager._due)
        plan, now = self._plan, monotonic()
        holder = manager._attach()
        taken = take_free(plan, holder, now, self._site)
        if taken < plan.size:
            await manager._enter_rest(
                plan, taken, holder, self._site, self._timeout, self._blocking, now
            )
        self._entered(holder)

    def _entered(self, holder: Holder) -> None:
        if self._holder is None:
            self._holder = holder
        elif self._more is None:
            self._more = [holder]
        else:
            self._more.append(holder)

    def _leaving(self) -> Holder:
        """Return (and forget) the entry of the calling task."""
        holder = self._holder
        if not self._more:
            self._holder = None
        else:  # shared: find the calling task's entry
            holder = self._manager._caller()
            if holder is not None and holder is self._holder:
                self._holder = self._more.pop()
            elif holder is not None and holder in self._more:
                self._more.remove(holder)
            else:
                holder = None
        # Not entered by this task: only the holder may release.
        return holder or self._manager._caller_holding(self._plan.records[0])

    async def __aexit__(self, *exc_info: object) -> None:
        self._manager._release_here(self._plan.release_order, self._leaving())


class SharedTaskAcquisition(TaskAcquisition):
    """:meth:`AsyncLockManager.acquire` of a manager with a backend."""

    __slots__ = ()

    async def __aenter__(self) -> None:
        manager = self._manager
        self._entered(
            await manager._enter(self._plan, self._timeout, self._blocking, self._site)
        )

    async def __aexit__(self, *exc_info: object) -> None:
        await self._manager._release(self._plan.release_order, self._leaving())
