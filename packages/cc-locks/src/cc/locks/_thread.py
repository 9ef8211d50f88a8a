"""The lock manager for threads."""

from __future__ import annotations

import contextlib
import math
import threading
from sys import _getframe
from time import monotonic
from types import TracebackType
from typing import Any

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
from cc.locks._errors import LockLostError, LockTimeoutError
from cc.locks._lease import Lease, ThreadLeaseSession, lost_error
from cc.locks._records import (
    LockRecord,
    LockUsageStatistics,
    Plan,
    Site,
    ThreadHolder,
    caller_site,
)
from cc.locks._redis import RedisLockBackend

__all__ = ["LockInfo", "LockManager", "ManagedLock"]

# acquire() shares one context manager per plan and (timeout, blocking).
_MAX_CONTEXTS_PER_PLAN = 8


class ManagedLock(ManagedLockBase["LockInfo"]):
    """A lock registered with a :class:`LockManager`, used like an RLock.

    Acquiring it directly goes through the same checks as
    :meth:`LockManager.acquire` for one lock: re-entry by its holder, the
    order checks of the manager's policy, deadlock detection, statistics and
    hold-time warnings. Like :class:`threading.RLock`, ``with lock:`` waits as
    long as it takes (deadlock detection still applies).

    >>> manager = LockManager()
    >>> lock = manager.register_lock("jobs", order=None)
    >>> with lock:
    ...     manager.get_lock_status()["jobs"]["owner"]
    "thread 'MainThread'"
    """

    __slots__ = ()
    _manager: LockManager

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Acquire the lock, like :meth:`threading.RLock.acquire`.

        :param blocking: with ``False``, return at once if another thread
            holds the lock
        :param timeout: seconds to wait at most; ``-1`` waits as long as it
            takes
        :return: whether the lock was acquired
        :raises TypeError: for a timeout that is not a number, or a
            ``blocking`` that is not a bool
        :raises ValueError: for a timeout with ``blocking=False``, or a
            negative timeout other than ``-1``, or NaN
        :raises LockOrderError: if the acquisition breaks the lock order and
            the policy is ``"raise"``
        :raises DeadlockError: if waiting would close a wait-for cycle
        :raises LockBackendError: (with a backend) if Redis cannot be reached
        """
        self._check_registered()
        check_blocking(blocking)
        if timeout == -1:
            limit = None
        elif not blocking:
            raise ValueError("can't specify a timeout for a non-blocking call")
        else:
            limit = check_timeout(timeout, forever="-1")
        manager = self._manager
        enter = manager._enter if manager._backend is None else manager._enter_shared
        try:
            enter(self._plan, limit, blocking, caller_site(1))
        except LockTimeoutError:
            return False
        return True

    def release(self) -> None:
        """Release one level of the calling thread's hold on the lock.

        :raises RuntimeError: if the calling thread does not hold it
        :raises LockLostError: (with a backend) if the lease was lost before
            this last release; the lock is released all the same
        """
        self._manager._release_one(self._record)

    def __enter__(self) -> bool:
        self._check_registered()
        manager = self._manager
        enter = manager._enter if manager._backend is None else manager._enter_shared
        enter(self._plan, None, True, caller_site(1))
        return True

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._manager._release_one(self._record)

    def locked(self) -> bool:
        """Return whether some thread holds the lock through the manager."""
        return self._record._owner is not None

    def owned_by_current_thread(self) -> bool:
        """Return whether the calling thread holds the lock."""
        owner = self._record._owner
        return owner is not None and owner is getattr(
            self._manager._local, "holder", None
        )


class LockInfo(LockRecord[ManagedLock]):
    """The record of a lock registered with a :class:`LockManager`.

    :attr:`lock` is the :class:`ManagedLock` that :meth:`LockManager.get_lock`
    returns; the other attributes describe the registration (``name``,
    ``order``, ``description``), the current holder (``owner``,
    ``acquired_at``, ``depth``, ``hold_time``, ``acquisition_site``,
    ``waiters``) and, through :meth:`statistics`, the lock's history.

    >>> manager = LockManager()
    >>> _ = manager.register_lock("db", 10, "the database")
    >>> info = manager.get_lock_info("db")
    >>> (info.name, info.order, info.description, info.is_locked)
    ('db', 10, 'the database', False)
    """

    __slots__ = ()


class _Acquisition:
    """The context manager that :meth:`LockManager.acquire` returns.

    It keeps no state between ``__enter__`` and ``__exit__`` (the holder is
    the calling thread's), so one instance per plan and arguments is shared
    by every thread and every nesting level.
    """

    __slots__ = ("_blocking", "_local", "_manager", "_plan", "_timeout")

    def __init__(
        self,
        manager: LockManager,
        plan: Plan[LockInfo],
        timeout: float | None,
        blocking: bool,
    ) -> None:
        self._manager = manager
        self._local = manager._local
        self._plan = plan
        self._timeout = timeout
        self._blocking = blocking

    def __enter__(self) -> None:
        # The with statement calls __enter__ from the frame that acquires.
        frame = _getframe(1)
        site = (frame.f_code, frame.f_lasti)
        try:
            holder: ThreadHolder = self._local.holder
        except AttributeError:
            holder = self._manager._attach()
        stack = holder.stack
        plan = self._plan
        now = monotonic()
        start = 0
        if not stack and plan.learned:
            # The common case, kept lean (the same as LockManager._enter).
            for record in plan.records:
                if not record._raw.acquire(False):
                    break
                record._owner = holder
                record._acquired_at = now
                record._site = site
                record._acquisitions += 1
                stack.append(record)
            else:
                return
            start = len(stack)
        self._manager._enter_checked(
            plan, start, holder, self._timeout, self._blocking, site, now
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # The same as ManagerCore._release_levels, inlined on the hot path.
        try:
            holder: ThreadHolder = self._local.holder
        except AttributeError:
            holder = self._manager._attach()
        stack = holder.stack
        now = monotonic()
        foreign: list[LockInfo] = []
        for record in self._plan.release_order:
            if record._owner is not holder:
                foreign.append(record)
                continue
            if record._reentries:
                record._reentries -= 1
                continue
            held = now - record._acquired_at
            if held > record._hold_floor:
                self._manager._note_hold(record, held)
            record._owner = None
            top = stack.pop()
            if top is not record:  # released out of order
                stack.append(top)
                stack.remove(record)
            record._raw.release()
        if foreign:
            raise foreign_release_error(foreign, holder.describe())


class _SharedAcquisition(_Acquisition):
    """:meth:`LockManager.acquire` of a manager with a backend."""

    __slots__ = ()

    def __enter__(self) -> None:
        frame = _getframe(1)
        self._manager._enter_shared(
            self._plan, self._timeout, self._blocking, (frame.f_code, frame.f_lasti)
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            holder: ThreadHolder = self._local.holder
        except AttributeError:
            holder = self._manager._attach()
        self._manager._exit_shared(self._plan.records, holder)


class LockManager(ManagerCore[LockInfo]):
    """Named locks for threads, taken in a declared order, with deadlock checks.

    Register each lock once with a name and an order (or load a whole
    hierarchy with :meth:`register_locks`), then take any set of them with
    :meth:`acquire`, which always takes them in ascending order, under one
    deadline. On top of ordering, the manager

    * refuses (or, by policy, reports) a thread that asks for a lower-order
      lock while holding a higher one (:class:`LockOrderError`);
    * learns the order in which locks registered with ``order=None`` are
      nested, and reports an acquisition that contradicts it, even if it
      never blocked (:class:`LockOrderError`);
    * keeps a live wait-for graph and raises :class:`DeadlockError` in the
      thread whose wait would close a cycle, instead of letting it hang;
    * logs a warning when a lock was held longer than a threshold, naming the
      holder and the place where it acquired the lock;
    * counts acquisitions, contention, wait and hold times per lock.

    Locks are reentrant: a thread may take a lock it already holds. Use the
    lock objects that :meth:`get_lock` returns (not a lock you passed to
    :meth:`register_lock`) when you need a lock outside :meth:`acquire`, so
    that the manager sees every holder.

    With ``backend=RedisLockBackend(...)`` the locks are shared by every
    process using the same Redis server and namespace, with the same API
    and checks (see :class:`RedisLockBackend` for what that guarantees).
    The manager connects on first use (or on ``with manager:``) and runs a
    lease renewal thread and a listener thread until :meth:`close`. Each
    acquisition holds a :class:`Lease` (see :meth:`lease`), and releasing a
    lock whose lease was lost raises :class:`LockLostError`.

    :param hierarchy: locks to register at once, in any form that
        :meth:`register_locks` accepts
    :param policy: what an order violation does: ``"raise"`` (the default)
        raises :class:`LockOrderError`; ``"warn"`` logs it once and records
        it for :meth:`detect_potential_deadlocks`, then takes the lock;
        ``"off"`` checks nothing (the fastest)
    :param detect_deadlocks: whether a wait that would close a wait-for cycle
        raises :class:`DeadlockError` (it only costs when a thread has to
        wait)
    :param long_hold_threshold: hold time in seconds past which releasing a
        lock logs a warning and :meth:`detect_potential_deadlocks` reports a
        lock still held; ``None`` turns both off
    :param backend: where the locks live when processes share them; by
        default (``None``) they live in this process only
    :raises ValueError: for an unknown policy or a negative threshold
    :raises TypeError: for a backend that is not a :class:`RedisLockBackend`

    >>> manager = LockManager({"config": 10, "cache": 20})
    >>> with manager.acquire("cache", "config"):  # taken as config, then cache
    ...     manager.get_lock_status()["cache"]["is_locked"]
    True
    >>> with manager.acquire("cache"):
    ...     with manager.acquire("config"):
    ...         pass
    Traceback (most recent call last):
    ...
    cc.locks.LockOrderError: lock order violation: thread 'MainThread' asks for ...
    """

    _kind = "thread"

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
        self._session: ThreadLeaseSession | None = None
        self._session_lock = threading.Lock()
        self._acquisition = _Acquisition if backend is None else _SharedAcquisition
        self._local = threading.local()
        if hierarchy is not None:
            self.register_locks(hierarchy)

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

    def __enter__(self) -> LockManager:
        """Connect to the backend now rather than on first use (if there is one).

        :raises LockBackendError: if the backend cannot be reached
        """
        if self._backend is not None:
            self._open_session()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the background threads and disconnect from the backend.

        Leases still held are released on the backend and marked lost (their
        holders get :class:`LockLostError` when they release). Using the
        manager again connects again. Without a backend this does nothing.
        """
        with self._session_lock:
            session, self._session = self._session, None
        if session is not None:
            session.close()

    def _open_session(self) -> ThreadLeaseSession:
        session = self._session
        if session is None:
            with self._session_lock:
                session = self._session
                if session is None:
                    assert self._backend is not None
                    session = ThreadLeaseSession(self, self._backend)
                    session.open()
                    self._session = session
        return session

    def lease(self, name: str) -> Lease:
        """Return the :class:`Lease` by which the calling thread holds ``name``.

        Its ``fencing_token`` identifies this acquisition to the resources
        the lock protects; ``lost`` tells whether it is still held.

        :raises KeyError: if no lock has that name
        :raises RuntimeError: without a backend, or if the calling thread
            does not hold the lock
        """
        record = self._lookup(name)
        session = self._session
        holder = getattr(self._local, "holder", None)
        lease = None if session is None else session.lease(name)
        if lease is None or holder is None or record._owner is not holder:
            if self._backend is None:
                raise RuntimeError(
                    f"lock {name!r} has no lease: its manager has no backend"
                )
            raise RuntimeError(f"the calling thread does not hold lock {name!r}")
        return lease

    # -- registration ------------------------------------------------------

    def _check_lock_argument(self, name: str, lock: Any) -> None:
        if not (
            callable(getattr(lock, "acquire", None))
            and callable(getattr(lock, "release", None))
        ):
            raise TypeError(
                f"lock {name!r}: expected a threading.RLock (or another lock "
                f"with acquire() and release()), not {type(lock).__name__}"
            )

    def _new_record(
        self, name: str, order: int | None, description: str, lock: Any
    ) -> LockInfo:
        record = LockInfo(
            name, order, description, threading.RLock() if lock is None else lock
        )
        record._handle = ManagedLock(self, record)
        return record

    def register_lock(
        self,
        name: str,
        order: int | None,
        description: str = "",
        lock: threading.RLock | None = None,
    ) -> ManagedLock:
        """Register a lock under a unique name and order.

        :param name: the lock's unique name
        :param order: its place in the hierarchy; locks are taken in ascending
            order. ``None`` leaves the order to be learned from use (see the
            class documentation).
        :param description: what the lock protects, for reports
        :param lock: an existing lock to manage (a :class:`threading.RLock`
            or any lock with ``acquire(blocking, timeout)`` and ``release()``);
            by default a new :class:`threading.RLock`
        :return: the managed lock, usable like a :class:`threading.RLock`
        :raises ValueError: if the name, or the order, is already registered
            (the message names the lock that has it)
        :raises TypeError: for a name, order, description or lock of the
            wrong type
        """
        (record,) = self._register_entries([(name, order, description, lock)])
        return record._handle

    def register_locks(self, hierarchy: LockHierarchy) -> dict[str, ManagedLock]:
        """Register a whole lock hierarchy at once: all of it, or nothing.

        Accepted forms: a mapping of names to orders
        (``{"db": 10, "cache": 20}``), to ``(order, description)`` tuples or
        to ``{"order": ..., "description": ...}`` mappings; or a list of
        ``(name, order)`` / ``(name, order, description)`` tuples or of
        ``{"name": ..., "order": ..., "description": ...}`` mappings.

        :param hierarchy: the locks to register
        :return: the managed locks by name, in the order given
        :raises ValueError: if any name or order clashes with another entry or
            with a registered lock; nothing is registered then
        :raises TypeError: for an entry of the wrong shape or type

        >>> manager = LockManager()
        >>> locks = manager.register_locks([("db", 10, "the database"), ("cache", 20)])
        >>> sorted(locks)
        ['cache', 'db']
        >>> manager.register_locks({"metrics": 30, "index": 10})
        Traceback (most recent call last):
        ...
        ValueError: order 10 of lock 'index' is already used by lock 'db'; ...
        >>> "metrics" in manager.get_lock_status()
        False
        """
        records = self._register_entries(parse_hierarchy(hierarchy))
        return {record._name: record._handle for record in records}

    def get_lock(self, name: str) -> ManagedLock:
        """Return the managed lock registered under ``name``.

        :raises KeyError: if no lock has that name (the message says so)
        """
        return self._lookup(name)._handle

    def get_lock_info(self, name: str) -> LockInfo:
        """Return the :class:`LockInfo` record of the lock named ``name``.

        :raises KeyError: if no lock has that name
        """
        return self._lookup(name)

    def reset(self) -> None:
        """Unregister every lock and forget what was learned and reported.

        Meant for tests and for re-configuring the process-wide manager from
        :func:`get_lock_manager`. Lock objects obtained before stop working.

        :raises RuntimeError: if any lock is held or awaited
        """
        self._retire_all()

    # -- acquiring -----------------------------------------------------------

    def acquire(
        self, *names: str, timeout: float | None = 10.0, blocking: bool = True
    ) -> _Acquisition:
        """Take the named locks, in ascending order, for a ``with`` block.

        Whatever order the names come in, locks with a declared order are
        taken in ascending order, then locks of learned order sorted by name.
        A lock the thread already holds is re-entered. If any lock cannot be
        taken, the ones already taken by this call are released before the
        error propagates.

        :param names: the locks to take (repeats count once)
        :param timeout: seconds to wait for the whole set (one deadline, not
            one per lock); ``None`` waits as long as it takes
        :param blocking: with ``False``, fail at once instead of waiting for a
            lock another thread holds
        :return: a context manager holding the locks inside its block
        :raises KeyError: if a name is not registered
        :raises TypeError: for a name that is not a str, a timeout that is
            not a number, or a ``blocking`` that is not a bool
        :raises ValueError: without names, or for a negative or NaN timeout
        :raises LockOrderError: (on entering) if the thread holds a lock of a
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
        try:
            plan = self._plans.get(names)
        except TypeError:  # an unhashable name: _plan() says which
            plan = None
        if plan is None:
            plan = self._plan(names)
        try:
            context = plan.contexts.get((timeout, blocking))
        except TypeError:  # an unhashable timeout: refused below
            context = None
        if context is None:
            # Only here, where a context is made, is the timeout checked:
            # the cached ones were made for valid timeouts.
            limit = None if timeout is None else check_timeout(timeout)
            context = self._acquisition(self, plan, limit, blocking)
            # A timeout equal to 0 or 1 is never cached: as a dict key it is
            # equal to False or True, which would then skip the check above.
            if len(plan.contexts) < _MAX_CONTEXTS_PER_PLAN and timeout not in (0, 1):
                plan.contexts[timeout, blocking] = context
        return context

    def _attach(self) -> ThreadHolder:
        holder = self._local.holder = ThreadHolder(threading.current_thread())
        return holder

    def _enter(
        self,
        plan: Plan[LockInfo],
        timeout: float | None,
        blocking: bool,
        site: Site,
    ) -> ThreadHolder:
        try:
            holder: ThreadHolder = self._local.holder
        except AttributeError:
            holder = self._attach()
        stack = holder.stack
        now = monotonic()
        start = 0
        if not stack and plan.learned:
            # The common case, kept lean: nothing held, nothing to check.
            for record in plan.records:
                if not record._raw.acquire(False):
                    break
                record._owner = holder
                record._acquired_at = now
                record._site = site
                record._acquisitions += 1
                stack.append(record)
            else:
                return holder
            start = len(stack)
        self._enter_checked(plan, start, holder, timeout, blocking, site, now)
        return holder

    def _enter_checked(
        self,
        plan: Plan[LockInfo],
        start: int,
        holder: ThreadHolder,
        timeout: float | None,
        blocking: bool,
        site: Site,
        now: float,
    ) -> None:
        """Take ``plan.records[start:]`` with every check; waits if needed.

        On an error, releases every record of the plan taken so far.
        """
        records = plan.records
        stack = holder.stack
        checking = self._checking
        deadline: float | None = None
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
                if not record._raw.acquire(False):
                    if deadline is None:
                        deadline = math.inf if timeout is None else now + timeout
                    now = self._wait(record, holder, deadline, timeout, blocking, site)
                record._owner = holder
                record._acquired_at = now
                record._site = site
                record._acquisitions += 1
                stack.append(record)
        except BaseException:
            if index:
                self._release_levels(records[:index], holder)
            raise
        if not plan.learned:
            plan.check_learned()

    def _wait(
        self,
        record: LockInfo,
        holder: ThreadHolder,
        deadline: float,
        timeout: float | None,
        blocking: bool,
        site: Site,
    ) -> float:
        """Block until ``record`` is free or the deadline passes."""
        if not blocking:
            raise self._unavailable(record, timeout, blocking=False)
        with self._meta:
            if self._detect:
                path = find_wait_cycle(holder, record)
                if path is not None:
                    raise self._deadlock_error(holder, path, site)
            holder.waiting_for = record
            record._waiting.append(holder)
        start = monotonic()
        try:
            if deadline == math.inf:
                acquired = record._raw.acquire()
            else:
                remaining = deadline - start
                # threading refuses a timeout with blocking=False, so a spent
                # deadline (timeout=0, or used up by earlier locks of the set)
                # is one last non-blocking try.
                if remaining > 0:
                    # threading refuses a timeout above TIMEOUT_MAX (about 292
                    # years) with OverflowError: a huge finite one waits.
                    acquired = record._raw.acquire(
                        True, min(remaining, threading.TIMEOUT_MAX)
                    )
                else:
                    acquired = record._raw.acquire(False)
        finally:
            with self._meta:
                holder.waiting_for = None
                record._waiting.remove(holder)
        if not acquired:
            raise self._unavailable(record, timeout, blocking=True)
        now = monotonic()
        waited = now - start
        record._contended += 1
        record._wait_total += waited
        if waited > record._wait_max:
            record._wait_max = waited
        return now

    def _release_one(self, record: LockInfo) -> None:
        holder: ThreadHolder | None = getattr(self._local, "holder", None)
        if holder is None or record._owner is not holder:
            owner = record.owner
            held = f"it is held by {owner}" if owner else "it is not held"
            raise RuntimeError(
                f"cannot release lock {record._name!r} from "
                f"thread {threading.current_thread().name!r}: {held}"
            )
        if self._backend is None:
            self._release_levels(record._handle._plan.records, holder)
        else:
            self._exit_shared(record._handle._plan.records, holder)

    # -- acquiring and releasing through a backend --------------------------------

    def _enter_shared(
        self,
        plan: Plan[LockInfo],
        timeout: float | None,
        blocking: bool,
        site: Site,
    ) -> ThreadHolder:
        """Take ``plan``: each lock's in-process lock, then its lease.

        Both halves of one lock are taken before the next lock, so every
        process takes the locks in the same ascending order. On an error,
        releases what this call took.
        """
        session = self._open_session()
        try:
            holder: ThreadHolder = self._local.holder
        except AttributeError:
            holder = self._attach()
        now = monotonic()
        deadline = math.inf if timeout is None else now + timeout
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
                waited_here = not record._raw.acquire(False)
                if waited_here:
                    self._wait(record, holder, deadline, timeout, blocking, site)
                try:
                    waited = session.take(
                        record, holder, site, deadline, timeout, blocking
                    )
                except BaseException:
                    record._raw.release()
                    raise
                if waited:
                    if not waited_here:
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
                    self._exit_shared(records[:count], holder)
            raise
        if not plan.learned:
            plan.check_learned()
        return holder

    def _exit_shared(self, records: tuple[LockInfo, ...], holder: ThreadHolder) -> None:
        """Release one level of each of ``records``, last first, leases included.

        :raises LockLostError: after releasing everything, if a lease was lost
        """
        now = monotonic()
        stack = holder.stack
        names: list[str] = []
        released: list[LockInfo] = []
        foreign: list[LockInfo] = []
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
        try:
            if session is None:
                lost = [
                    (name, "its manager was closed while it was held") for name in names
                ]
            else:
                lost = session.release(names)
        finally:
            for record in released:
                record._raw.release()
        if foreign:
            raise foreign_release_error(foreign, holder.describe())
        if lost:
            raise lost_error(lost)

    # -- views -----------------------------------------------------------------

    def held_locks(self) -> list[str]:
        """Return the names of the locks the calling thread holds, in order taken."""
        holder: ThreadHolder | None = getattr(self._local, "holder", None)
        return [] if holder is None else [r._name for r in holder.stack]

    def get_lock_status(self) -> dict[str, dict[str, Any]]:
        """Return the live state of every registered lock, by name.

        Each entry has ``order``, ``description``, ``owner`` (e.g.
        ``"thread 'worker-1'"`` or ``None``), ``acquired_at`` (a
        :func:`time.time` timestamp or ``None``), ``is_locked``, ``depth``,
        ``waiters`` (how many threads wait for it), ``waiting`` (which),
        ``hold_time`` (seconds held so far, or ``None``) and
        ``acquisition_site`` (``file:line in function``, or ``None``).

        With a backend, each entry describes the holder wherever it is:
        ``owner`` then reads like ``"thread 'w1' (pid 4242 on db-7)"``, and
        the entry also has ``held_here`` (whether a thread of this manager
        holds it), ``host``, ``pid``, ``fencing_token`` and
        ``lease_expires_in`` (seconds); for a holder in another process,
        ``depth`` is ``None`` and ``acquired_at`` is by the Redis server's
        clock. ``waiters`` counts this manager's waiting threads only.

        :raises LockBackendError: (with a backend) if Redis cannot be reached
        """
        status = self._status()
        if self._backend is not None:
            holders = self._open_session().inspect(list(status))
            self._merge_remote(status, holders)
        return status

    def statistics(self) -> dict[str, LockUsageStatistics]:
        """Return each lock's contention statistics, by name."""
        return self._statistics()

    def detect_potential_deadlocks(self) -> list[str]:
        """Describe every deadlock risk the manager knows of, one per string.

        The list holds, in this order: locks held longer than
        ``long_hold_threshold`` right now; live wait-for cycles (threads
        stuck waiting for each other, possible only when
        ``detect_deadlocks`` is off or a lock is also used outside the
        manager); and recorded reports: order violations, learned-order
        inversions and deadlocks that were averted by raising
        :class:`DeadlockError`. Each string reads on its own.
        """
        return self._potential_deadlocks()
