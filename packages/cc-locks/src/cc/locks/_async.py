"""The lock manager for async tasks (anyio: asyncio, uvloop and trio)."""

from __future__ import annotations

import contextlib
import math
from sys import _getframe
from time import monotonic
from types import TracebackType
from typing import Any

import anyio

from cc.locks._core import (
    LockHierarchy,
    ManagedLockBase,
    ManagerCore,
    Policy,
    check_blocking,
    check_timeout,
    find_wait_cycle,
    foreign_release_error,
    parse_hierarchy,
    retired_error,
)
from cc.locks._errors import LockLostError
from cc.locks._lease import AsyncLeaseSession, Lease, lost_error
from cc.locks._records import (
    LockRecord,
    LockUsageStatistics,
    Plan,
    Site,
    TaskHolder,
    caller_site,
)
from cc.locks._redis import RedisLockBackend
from cc.locks._tasks import current_task, describe_task
from cc.primitives import Lock

__all__ = ["AsyncLockInfo", "AsyncLockManager", "AsyncManagedLock"]

_MAX_SPARE_HOLDERS = 64


def _take_nowait(lock: Lock) -> bool:
    """Acquire a cc Lock if that needs no waiting (its acquire_nowait raises)."""
    try:
        lock.acquire_nowait()
    except anyio.WouldBlock:
        return False
    return True


class AsyncManagedLock(ManagedLockBase["AsyncLockInfo"]):
    """A lock registered with an :class:`AsyncLockManager`, used like a Lock.

    It behaves like :class:`cc.primitives.Lock` (reentrant, owned by the task
    that acquired it, first in first out) and goes through the same checks as
    :meth:`AsyncLockManager.acquire` for one lock: the order checks of the
    manager's policy, deadlock detection, statistics and hold-time warnings.
    ``async with lock:`` and :meth:`acquire` wait as long as it takes
    (deadlock detection still applies); put them in :func:`anyio.fail_after`
    or use :meth:`AsyncLockManager.acquire` for a deadline.

    >>> import anyio
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
    _manager: AsyncLockManager

    async def acquire(self) -> bool:
        """Acquire the lock, waiting as long as it takes; re-enter if held.

        :return: always ``True``
        :raises LockOrderError: if the acquisition breaks the lock order and
            the policy is ``"raise"``
        :raises DeadlockError: if waiting would close a wait-for cycle
        :raises LockBackendError: (with a backend) if Redis cannot be reached
        """
        self._check_registered()
        manager = self._manager
        if manager._backend is None:
            await manager._enter(self._plan, None, True, caller_site(1))
        else:
            await manager._enter_shared(self._plan, None, True, caller_site(1))
        return True

    def acquire_nowait(self) -> bool:
        """Acquire the lock if that is possible without waiting.

        :return: whether the calling task now holds the lock
        :raises LockOrderError: if the acquisition breaks the lock order and
            the policy is ``"raise"``
        :raises RuntimeError: with a backend, where taking a lock needs a
            round trip (use ``manager.acquire(name, blocking=False)``)
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
        taken = manager._take_ready(self._plan, 0, holder, caller_site(1), monotonic())
        if not taken:
            manager._detach_if_idle(holder)
        return taken == 1

    def release(self) -> None:
        """Release one level of the calling task's hold on the lock.

        :raises RuntimeError: if the calling task does not hold it, or the
            lock is shared through a backend (use :meth:`arelease`)
        """
        if self._manager._backend is not None:
            raise RuntimeError(
                f"lock {self.name!r} is shared through a backend: releasing it "
                "needs a round trip, so use `await lock.arelease()` (or "
                "`async with lock:`)"
            )
        self._manager._release_one(self._record)

    async def arelease(self) -> None:
        """Release one level of the calling task's hold, with or without a backend.

        :raises RuntimeError: if the calling task does not hold it
        :raises LockLostError: (with a backend) if the lease was lost before
            this last release; the lock is released all the same
        """
        manager = self._manager
        if manager._backend is None:
            manager._release_one(self._record)
        else:
            await manager._release_one_shared(self._record)

    async def __aenter__(self) -> None:
        self._check_registered()
        manager = self._manager
        if manager._backend is None:
            await manager._enter(self._plan, None, True, caller_site(1))
        else:
            await manager._enter_shared(self._plan, None, True, caller_site(1))

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        manager = self._manager
        if manager._backend is None:
            manager._release_one(self._record)
        else:
            await manager._release_one_shared(self._record)

    def locked(self) -> bool:
        """Return whether some task holds the lock through the manager."""
        return self._record._owner is not None

    def owned_by_current_task(self) -> bool:
        """Return whether the calling task holds the lock."""
        owner = self._record._owner
        return owner is not None and owner is self._manager._holders.get(current_task())


class AsyncLockInfo(LockRecord[AsyncManagedLock]):
    """The record of a lock registered with an :class:`AsyncLockManager`.

    :attr:`lock` is the :class:`AsyncManagedLock` that
    :meth:`AsyncLockManager.get_lock` returns; the other attributes describe
    the registration (``name``, ``order``, ``description``), the current
    holder (``owner``, ``acquired_at``, ``depth``, ``hold_time``,
    ``acquisition_site``, ``waiters``) and, through :meth:`statistics`, the
    lock's history.
    """

    __slots__ = ()


class _AsyncAcquisition:
    """The async context manager that :meth:`AsyncLockManager.acquire` returns."""

    __slots__ = (
        "_blocking", "_holder", "_manager", "_more", "_plan", "_site", "_timeout",
    )  # fmt: skip

    def __init__(
        self,
        manager: AsyncLockManager,
        plan: Plan[AsyncLockInfo],
        timeout: float | None,
        blocking: bool,
        site: Site,
    ) -> None:
        self._manager = manager
        self._plan = plan
        self._timeout = timeout
        self._blocking = blocking
        self._site = site
        # Who is inside: the first holder, then any others (the same context
        # may be entered by several tasks, or again by the same one).
        self._holder: TaskHolder | None = None
        self._more: list[TaskHolder] | None = None

    def _entered(self, holder: TaskHolder) -> None:
        if self._holder is None:
            self._holder = holder
        elif self._more is None:
            self._more = [holder]
        else:
            self._more.append(holder)

    def _leaving(self) -> TaskHolder:
        """Return (and forget) the holder of the calling task's entry."""
        holder = self._holder
        if not self._more:
            if holder is None:
                raise RuntimeError("this acquire() context was not entered")
            self._holder = None
            return holder
        mine = self._manager._holders.get(current_task())
        if mine is not None and mine is holder:
            self._holder = self._more.pop()
        elif mine is not None and mine in self._more:
            self._more.remove(mine)
        else:
            raise RuntimeError(
                "this acquire() context was not entered by task "
                f"{describe_task(current_task())!r}"
            )
        return mine

    async def __aenter__(self) -> None:
        manager = self._manager
        plan = self._plan
        now = monotonic()
        holder = manager._attach()
        start = manager._take_unchecked(plan, holder, self._site, now)
        if start >= 0:
            await manager._enter_checked(
                plan, start, holder, self._timeout, self._blocking, self._site, now
            )
        self._entered(holder)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        holder = self._leaving()
        manager = self._manager
        try:
            manager._release_levels(self._plan.records, holder)
        finally:
            if not holder.stack:
                manager._detach_if_idle(holder)


class _SharedAsyncAcquisition(_AsyncAcquisition):
    """:meth:`AsyncLockManager.acquire` of a manager with a backend."""

    __slots__ = ()

    async def __aenter__(self) -> None:
        self._entered(
            await self._manager._enter_shared(
                self._plan, self._timeout, self._blocking, self._site
            )
        )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        manager = self._manager
        holder = self._leaving()
        try:
            await manager._exit_shared(self._plan.records, holder)
        finally:
            if not holder.stack:
                manager._detach_if_idle(holder)


class AsyncLockManager(ManagerCore[AsyncLockInfo]):
    """Named locks for async tasks, taken in a declared order, with deadlock checks.

    The task counterpart of :class:`LockManager`, built on
    :class:`cc.primitives.Lock` and working unchanged on asyncio, uvloop and
    trio. Register each lock once with a name and an order (or load a whole
    hierarchy with :meth:`register_locks`), then take any set of them with
    ``async with manager.acquire(...)``, which always takes them in
    ascending order under one deadline. On top of ordering, the manager

    * refuses (or, by policy, reports) a task that asks for a lower-order lock
      while holding a higher one (:class:`LockOrderError`);
    * learns the order in which locks registered with ``order=None`` are
      nested, and reports an acquisition that contradicts it, even if it
      never blocked (:class:`LockOrderError`);
    * keeps a live wait-for graph and raises :class:`DeadlockError` in the
      task whose wait would close a cycle, instead of letting it hang;
    * logs a warning when a lock was held longer than a threshold, naming the
      holder and the place where it acquired the lock;
    * counts acquisitions, contention, wait and hold times per lock.

    An uncontended acquisition does not yield to the event loop and does not
    enter a cancel scope; only a task that has to wait pays for its deadline.
    A manager and its locks belong to the event loop of the tasks that use
    them (like :class:`cc.primitives.Lock`, they are not thread safe).

    With ``backend=RedisLockBackend(...)`` the locks are shared by every
    process using the same Redis server and namespace, with the same API
    and checks (see :class:`RedisLockBackend` for what that guarantees).
    Such a manager runs background tasks (lease renewal, release
    notifications), so it is used inside ``async with manager:``; each
    acquisition holds a :class:`Lease` (see :meth:`lease`), and releasing a
    lock whose lease was lost raises :class:`LockLostError`.

    :param hierarchy: locks to register at once, in any form that
        :meth:`register_locks` accepts
    :param policy: what an order violation does: ``"raise"`` (the default)
        raises :class:`LockOrderError`; ``"warn"`` logs it once and records
        it for :meth:`detect_potential_deadlocks`, then takes the lock;
        ``"off"`` checks nothing (the fastest)
    :param detect_deadlocks: whether a wait that would close a wait-for cycle
        raises :class:`DeadlockError` (it only costs when a task has to wait)
    :param long_hold_threshold: hold time in seconds past which releasing a
        lock logs a warning and :meth:`detect_potential_deadlocks` reports a
        lock still held; ``None`` turns both off
    :param backend: where the locks live when processes share them; by
        default (``None``) they live in this process only
    :raises ValueError: for an unknown policy or a negative threshold
    :raises TypeError: for a backend that is not a :class:`RedisLockBackend`

    >>> import anyio
    >>> async def main() -> list[str]:
    ...     manager = AsyncLockManager({"config": 10, "cache": 20})
    ...     async with manager.acquire("cache", "config"):  # config first
    ...         return manager.held_locks()
    >>> anyio.run(main)
    ['config', 'cache']
    """

    _kind = "task"

    def __init__(
        self,
        hierarchy: LockHierarchy | None = None,
        *,
        policy: Policy = "raise",
        detect_deadlocks: bool = True,
        long_hold_threshold: float | None = 30.0,
        backend: RedisLockBackend | None = None,
    ) -> None:
        super().__init__(
            policy=policy,
            detect_deadlocks=detect_deadlocks,
            long_hold_threshold=long_hold_threshold,
        )
        if backend is not None and not isinstance(backend, RedisLockBackend):
            raise TypeError(
                "backend must be a RedisLockBackend or None, "
                f"not {type(backend).__name__}"
            )
        self._backend = backend
        self._session: AsyncLeaseSession | None = None
        self._acquisition = (
            _AsyncAcquisition if backend is None else _SharedAsyncAcquisition
        )
        self._holders: dict[object, TaskHolder] = {}
        self._spare_holders: list[TaskHolder] = []
        if hierarchy is not None:
            self._register_entries(parse_hierarchy(hierarchy))

    def __repr__(self) -> str:
        shared = "" if self._backend is None else f" backend={self._backend!r}"
        return (
            f"<{type(self).__name__} locks={len(self._records)} "
            f"policy={self._policy!r}{shared}>"
        )

    # -- opening and closing (managers with a backend) -------------------------

    @property
    def backend(self) -> RedisLockBackend | None:
        """Where the locks are shared, or ``None`` for this process only."""
        return self._backend

    async def __aenter__(self) -> AsyncLockManager:
        """Connect to the backend and start renewing leases (if there is one).

        :raises LockBackendError: if the backend cannot be reached
        :raises RuntimeError: if the manager is open already
        """
        backend = self._backend
        if backend is not None:
            if self._session is not None and not self._session.closed:
                raise RuntimeError("this AsyncLockManager is open already")
            session = AsyncLeaseSession(self, backend)
            await session.open()
            self._session = session
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the background tasks and disconnect from the backend.

        Leases still held are released on the backend and marked lost (their
        holders get :class:`LockLostError` when they release). Without a
        backend, or when closed already, this does nothing.
        """
        session = self._session
        if session is not None:
            await session.aclose()

    def _open_session(self) -> AsyncLeaseSession:
        session = self._session
        if session is None or session.closed:
            raise RuntimeError(
                "an AsyncLockManager with a backend must be opened before its "
                "locks are used: `async with AsyncLockManager(backend=...) as "
                "manager:` (it runs the lease renewal in the background)"
            )
        return session

    def lease(self, name: str) -> Lease:
        """Return the :class:`Lease` by which the calling task holds ``name``.

        Its ``fencing_token`` identifies this acquisition to the resources
        the lock protects; ``lost`` tells whether it is still held.

        :raises KeyError: if no lock has that name
        :raises RuntimeError: without a backend, or if the calling task does
            not hold the lock
        """
        record = self._lookup(name)
        session = self._session
        holder = self._holders.get(current_task())
        lease = None if session is None else session.lease(name)
        if lease is None or holder is None or record._owner is not holder:
            if self._backend is None:
                raise RuntimeError(
                    f"lock {name!r} has no lease: its manager has no backend"
                )
            raise RuntimeError(f"the calling task does not hold lock {name!r}")
        return lease

    # -- registration ------------------------------------------------------

    def _check_lock_argument(self, name: str, lock: Any) -> None:
        if not isinstance(lock, Lock):
            raise TypeError(
                f"lock {name!r}: expected a cc.primitives.Lock, "
                f"not {type(lock).__name__}"
            )

    def _new_record(
        self, name: str, order: int | None, description: str, lock: Any
    ) -> AsyncLockInfo:
        record = AsyncLockInfo(
            name, order, description, Lock() if lock is None else lock
        )
        record._handle = AsyncManagedLock(self, record)
        return record

    async def register_lock(
        self,
        name: str,
        order: int | None,
        description: str = "",
        lock: Lock | None = None,
    ) -> AsyncManagedLock:
        """Register a lock under a unique name and order.

        :param name: the lock's unique name
        :param order: its place in the hierarchy; locks are taken in ascending
            order. ``None`` leaves the order to be learned from use.
        :param description: what the lock protects, for reports
        :param lock: an existing :class:`cc.primitives.Lock` to manage; by
            default a new one
        :return: the managed lock
        :raises ValueError: if the name, or the order, is already registered
            (the message names the lock that has it)
        :raises TypeError: for a name, order, description or lock of the
            wrong type
        """
        (record,) = self._register_entries([(name, order, description, lock)])
        return record._handle

    async def register_locks(
        self, hierarchy: LockHierarchy
    ) -> dict[str, AsyncManagedLock]:
        """Register a whole lock hierarchy at once: all of it, or nothing.

        Accepts the same forms as :meth:`LockManager.register_locks`.

        :param hierarchy: the locks to register
        :return: the managed locks by name, in the order given
        :raises ValueError: if any name or order clashes with another entry or
            with a registered lock; nothing is registered then
        :raises TypeError: for an entry of the wrong shape or type
        """
        records = self._register_entries(parse_hierarchy(hierarchy))
        return {record._name: record._handle for record in records}

    async def get_lock(self, name: str) -> AsyncManagedLock:
        """Return the managed lock registered under ``name``.

        :raises KeyError: if no lock has that name (the message says so)
        """
        return self._lookup(name)._handle

    async def get_lock_info(self, name: str) -> AsyncLockInfo:
        """Return the :class:`AsyncLockInfo` record of the lock named ``name``.

        :raises KeyError: if no lock has that name
        """
        return self._lookup(name)

    def get_lock_info_nowait(self, name: str) -> AsyncLockInfo:
        """Return the record of the lock named ``name``, from sync code too.

        :raises KeyError: if no lock has that name
        """
        return self._lookup(name)

    async def reset(self) -> None:
        """Unregister every lock and forget what was learned and reported.

        Meant for tests and for re-configuring the process-wide manager from
        :func:`get_async_lock_manager`. Lock objects obtained before stop
        working.

        :raises RuntimeError: if any lock is held or awaited
        """
        self._retire_all()

    # -- acquiring -----------------------------------------------------------

    def acquire(
        self, *names: str, timeout: float | None = 10.0, blocking: bool = True
    ) -> _AsyncAcquisition:
        """Take the named locks, in ascending order, for an ``async with`` block.

        Whatever order the names come in, locks with a declared order are
        taken in ascending order, then locks of learned order sorted by name.
        A lock the task already holds is re-entered. If any lock cannot be
        taken (error, timeout or cancellation), the ones already taken by this
        call are released before the exception propagates.

        :param names: the locks to take (repeats count once)
        :param timeout: seconds to wait for the whole set (one deadline, not
            one per lock); ``None`` waits as long as it takes
        :param blocking: with ``False``, fail at once instead of waiting for a
            lock another task holds
        :return: an async context manager holding the locks inside its block
        :raises KeyError: if a name is not registered
        :raises TypeError: for a name that is not a str, a timeout that is
            not a number, or a ``blocking`` that is not a bool
        :raises ValueError: without names, or for a negative or NaN timeout
        :raises LockOrderError: (on entering) if the task holds a lock of a
            higher order than one asked for, or the order contradicts a
            learned one, and the policy is ``"raise"``
        :raises DeadlockError: (on entering) if waiting would close a wait-for
            cycle
        :raises LockTimeoutError: (on entering) if the deadline passed, or a
            lock was taken and ``blocking`` is ``False``; the message names the
            lock, its holder and where the holder acquired it
        :raises RuntimeError: (on leaving) if a lock of the set was released
            inside the block and is no longer held by the caller; the others
            are released, the lock's new holder keeps it

        The context may be shared: each thread or task that enters it gets a
        hold of its own. A timeout too large for a float (``10**400``) waits
        as long as it takes, like ``None``.
        """
        flag: object = blocking  # typed as a bool; callers may pass anything
        if flag is not True and flag is not False:
            check_blocking(blocking)
        if timeout is not None and not (timeout.__class__ is float and timeout >= 0):
            timeout = check_timeout(timeout)
        try:
            plan = self._plans.get(names)
        except TypeError:  # an unhashable name: _plan() says which
            plan = None
        if plan is None:
            plan = self._plan(names)
        frame = _getframe(1)
        return self._acquisition(
            self, plan, timeout, blocking, (frame.f_code, frame.f_lasti)
        )

    def _attach(self) -> TaskHolder:
        task = current_task()
        holder = self._holders.get(task)
        if holder is None:
            if self._spare_holders:
                holder = self._spare_holders.pop()
                holder.task = task
            else:
                holder = TaskHolder(task)
            self._holders[task] = holder
        return holder

    def _detach_if_idle(self, holder: TaskHolder) -> None:
        # A task that holds nothing and waits for nothing is forgotten, so
        # that the manager never keeps a finished task alive; its holder
        # object is kept for the next task instead of being reallocated.
        if (
            not holder.stack
            and holder.waiting_for is None
            and self._holders.pop(holder.task, None) is holder
        ):
            holder.task = None
            if len(self._spare_holders) < _MAX_SPARE_HOLDERS:
                self._spare_holders.append(holder)

    async def _enter(
        self,
        plan: Plan[AsyncLockInfo],
        limit: float | None,
        blocking: bool,
        site: Site,
    ) -> None:
        now = monotonic()
        holder = self._attach()
        start = self._take_unchecked(plan, holder, site, now)
        if start >= 0:
            await self._enter_checked(plan, start, holder, limit, blocking, site, now)

    def _take_unchecked(
        self, plan: Plan[AsyncLockInfo], holder: TaskHolder, site: Site, now: float
    ) -> int:
        """Take the plan without checks, if ``holder`` holds nothing yet.

        That is the common case, kept lean: a plan is ascending by
        construction and its edges are checked the first time it runs.

        :return: -1 if every lock was taken; otherwise the index to go on
            from with every check (0 if this path does not apply)
        """
        stack = holder.stack
        if stack or not plan.learned:
            return 0
        for record in plan.records:
            if not _take_nowait(record._raw):
                return len(stack)
            record._owner = holder
            record._acquired_at = now
            record._site = site
            record._acquisitions += 1
            stack.append(record)
        return -1

    async def _enter_checked(
        self,
        plan: Plan[AsyncLockInfo],
        start: int,
        holder: TaskHolder,
        limit: float | None,
        blocking: bool,
        site: Site,
        now: float,
    ) -> None:
        """Take ``plan.records[start:]`` with every check; wait if needed.

        On an error or cancellation, releases every record of the plan taken
        so far.
        """
        records = plan.records
        count = start
        try:
            count = start + self._take_ready(plan, start, holder, site, now)
            if count < len(records):
                deadline = math.inf if limit is None else now + limit
                while count < len(records):
                    if not blocking:
                        raise self._unavailable(records[count], limit, blocking=False)
                    now = await self._wait(
                        records[count], holder, deadline, limit, site
                    )
                    count += 1
                    count += self._take_ready(plan, count, holder, site, now)
        except BaseException:
            if count:
                self._release_levels(records[:count], holder)
            self._detach_if_idle(holder)
            raise
        if not plan.learned:
            plan.check_learned()

    def _take_ready(
        self,
        plan: Plan[AsyncLockInfo],
        start: int,
        holder: TaskHolder,
        site: Site,
        now: float,
    ) -> int:
        """Take ``plan.records[start:]`` up to the first lock that needs a wait.

        Every check of the lock that needs a wait is done; the caller waits
        for it next. On an error, releases what it took here and re-raises.

        :return: how many locks it took
        """
        records = plan.records
        stack = holder.stack
        checking = self._checking
        index = start
        try:
            for index in range(start, len(records)):
                record = records[index]
                if record._owner is holder:
                    record._reentries += 1
                    continue
                if checking and stack:
                    order = record._order
                    if order is not None and order < holder.ceiling():
                        self._declared_violation(record, holder, site)
                    if record not in stack[-1]._after:
                        self._learn(stack[-1], record, holder, site)
                if record._retired:
                    raise retired_error(record)
                if not _take_nowait(record._raw):
                    return index - start
                record._owner = holder
                record._acquired_at = now
                record._site = site
                record._acquisitions += 1
                stack.append(record)
        except BaseException:
            if index > start:
                self._release_levels(records[start:index], holder)
            raise
        return len(records) - start

    async def _wait(
        self,
        record: AsyncLockInfo,
        holder: TaskHolder,
        deadline: float,
        limit: float | None,
        site: Site,
    ) -> float:
        """Wait for ``record`` until the deadline; take it and return the time."""
        start = monotonic()
        await self._wait_raw(record, holder, deadline, limit, site, start)
        now = monotonic()
        waited = now - start
        record._contended += 1
        record._wait_total += waited
        if waited > record._wait_max:
            record._wait_max = waited
        record._owner = holder
        record._acquired_at = now
        record._site = site
        record._acquisitions += 1
        holder.stack.append(record)
        return now

    async def _wait_raw(
        self,
        record: AsyncLockInfo,
        holder: TaskHolder,
        deadline: float,
        limit: float | None,
        site: Site,
        start: float,
    ) -> None:
        """Wait for ``record``'s in-process lock until the deadline."""
        with self._meta:
            if self._detect:
                path = find_wait_cycle(holder, record)
                if path is not None:
                    raise self._deadlock_error(holder, path, site)
            holder.waiting_for = record
            record._waiting.append(holder)
        acquired = False
        try:
            if deadline == math.inf:
                await record._raw.acquire()
                acquired = True
            else:
                with anyio.move_on_after(deadline - start):
                    await record._raw.acquire()
                    acquired = True
        finally:
            with self._meta:
                holder.waiting_for = None
                record._waiting.remove(holder)
        if not acquired:
            raise self._unavailable(record, limit, blocking=True)

    # -- acquiring and releasing through a backend --------------------------------

    async def _enter_shared(
        self,
        plan: Plan[AsyncLockInfo],
        limit: float | None,
        blocking: bool,
        site: Site,
    ) -> TaskHolder:
        """Take ``plan``: each lock's in-process lock, then its lease.

        Both halves of one lock are taken before the next lock, so every
        process takes the locks in the same ascending order. On an error or
        a cancellation, releases what this call took.
        """
        session = self._open_session()
        now = monotonic()
        holder = self._attach()
        deadline = math.inf if limit is None else now + limit
        records = plan.records
        stack = holder.stack
        checking = self._checking
        count = 0
        try:
            for record in records:
                if record._owner is holder:
                    record._reentries += 1
                    count += 1
                    continue
                if checking and stack:
                    order = record._order
                    if order is not None and order < holder.ceiling():
                        self._declared_violation(record, holder, site)
                    if record not in stack[-1]._after:
                        self._learn(stack[-1], record, holder, site)
                if record._retired:
                    raise retired_error(record)
                start = monotonic()
                waited = 0.0
                if not _take_nowait(record._raw):
                    if not blocking:
                        raise self._unavailable(record, limit, blocking=False)
                    await self._wait_raw(record, holder, deadline, limit, site, start)
                    waited = monotonic() - start
                try:
                    waited += await session.take(
                        record, holder, site, deadline, limit, blocking
                    )
                except BaseException:
                    record._raw.release()
                    raise
                if waited:
                    record._contended += 1
                    record._wait_total += waited
                    if waited > record._wait_max:
                        record._wait_max = waited
                record._owner = holder
                record._acquired_at = monotonic()
                record._site = site
                record._acquisitions += 1
                stack.append(record)
                count += 1
        except BaseException:
            if count:
                # A lost lease was logged when it was lost; the first error wins.
                with contextlib.suppress(LockLostError):
                    await self._exit_shared(records[:count], holder)
            self._detach_if_idle(holder)
            raise
        if not plan.learned:
            plan.check_learned()
        return holder

    async def _exit_shared(
        self, records: tuple[AsyncLockInfo, ...], holder: TaskHolder
    ) -> None:
        """Release one level of each of ``records``, last first, leases included.

        :raises LockLostError: after releasing everything, if a lease was lost
        """
        now = monotonic()
        stack = holder.stack
        names: list[str] = []
        released: list[AsyncLockInfo] = []
        foreign: list[AsyncLockInfo] = []
        for record in records[::-1]:
            if record._owner is not holder:
                foreign.append(record)
                continue
            if record._reentries:
                record._reentries -= 1
                continue
            held = now - record._acquired_at
            if held > record._hold_floor:
                self._note_hold(record, held)
            record._owner = None
            top = stack.pop()
            if top is not record:  # released out of order
                stack.append(top)
                stack.remove(record)
            names.append(record._name)
            released.append(record)
        if not released:
            if foreign:
                raise foreign_release_error(foreign, holder.describe())
            return
        session = self._session
        assert session is not None  # a lease was taken through it
        try:
            lost = await session.release(names)
        finally:
            for record in released:
                record._raw.release()
        if foreign:
            raise foreign_release_error(foreign, holder.describe())
        if lost:
            raise lost_error(lost)

    async def _release_one_shared(self, record: AsyncLockInfo) -> None:
        task = current_task()
        holder = self._holders.get(task)
        if holder is None or record._owner is not holder:
            owner = record.owner
            held = f"it is held by {owner}" if owner else "it is not held"
            raise RuntimeError(
                f"cannot release lock {record._name!r} from task "
                f"{describe_task(task)!r}: {held}"
            )
        try:
            await self._exit_shared(record._handle._plan.records, holder)
        finally:
            self._detach_if_idle(holder)

    def _release_one(self, record: AsyncLockInfo) -> None:
        task = current_task()
        holder = self._holders.get(task)
        if holder is None or record._owner is not holder:
            owner = record.owner
            held = f"it is held by {owner}" if owner else "it is not held"
            raise RuntimeError(
                f"cannot release lock {record._name!r} from task "
                f"{describe_task(task)!r}: {held}"
            )
        self._release_levels(record._handle._plan.records, holder)
        self._detach_if_idle(holder)

    # -- views -----------------------------------------------------------------

    def held_locks(self) -> list[str]:
        """Return the names of the locks the calling task holds, in order taken."""
        holder = self._holders.get(current_task())
        return [] if holder is None else [r._name for r in holder.stack]

    async def get_lock_status(self) -> dict[str, dict[str, Any]]:
        """Return the live state of every registered lock, by name.

        Each entry has ``order``, ``description``, ``owner`` (e.g.
        ``"task 'worker-1'"`` or ``None``), ``acquired_at`` (a
        :func:`time.time` timestamp or ``None``), ``is_locked``, ``depth``,
        ``waiters`` (how many tasks wait for it), ``waiting`` (which),
        ``hold_time`` (seconds held so far, or ``None``) and
        ``acquisition_site`` (``file:line in function``, or ``None``).

        With a backend, each entry describes the holder wherever it is:
        ``owner`` then reads like ``"task 'w1' (pid 4242 on db-7)"``, and
        the entry also has ``held_here`` (whether a task of this manager
        holds it), ``host``, ``pid``, ``fencing_token`` and
        ``lease_expires_in`` (seconds); for a holder in another process,
        ``depth`` is ``None`` and ``acquired_at`` is by the Redis server's
        clock. ``waiters`` counts this manager's waiting tasks only.

        :raises LockBackendError: (with a backend) if Redis cannot be reached
        """
        status = self._status()
        if self._backend is not None:
            holders = await self._open_session().inspect(list(status))
            self._merge_remote(status, holders)
        return status

    def statistics(self) -> dict[str, LockUsageStatistics]:
        """Return each lock's contention statistics, by name."""
        return self._statistics()

    async def detect_potential_deadlocks(self) -> list[str]:
        """Describe every deadlock risk the manager knows of, one per string.

        The list holds, in this order: locks held longer than
        ``long_hold_threshold`` right now; live wait-for cycles (tasks stuck
        waiting for each other, possible only when ``detect_deadlocks`` is
        off or a lock is also used outside the manager); and recorded
        reports: order violations, learned-order inversions and deadlocks that
        were averted by raising :class:`DeadlockError`. Each string reads on
        its own.
        """
        return self._potential_deadlocks()
