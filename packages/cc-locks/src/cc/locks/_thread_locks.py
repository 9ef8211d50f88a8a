"""The lock objects of the thread manager: managed locks, records, ``acquire()``."""

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
    caller_site,
    foreign_release_error,
    release_levels,
    take_free,
    thread_holder,
)

__all__ = ["LockInfo", "ManagedLock", "SharedAcquisition", "ThreadAcquisition"]


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
