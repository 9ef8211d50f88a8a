"""The lock manager for threads: the engine's steps, performed by blocking."""

from __future__ import annotations

import math
import threading
from sys import _getframe
from time import monotonic
from types import TracebackType
from typing import Any

from cc.locks._errors import LockTimeoutError
from cc.locks._hierarchy import (
    LockHierarchy,
    Policy,
    check_blocking,
    check_timeout,
    parse_hierarchy,
)
from cc.locks._manager import ManagedLockBase, ManagerBase
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
from cc.locks._store import (
    Call,
    LockStore,
    Pause,
    Shielded,
    Steps,
    StoreSession,
    WaitLocal,
)
from cc.locks._views import merge_remote

__all__ = ["LockInfo", "LockManager", "ManagedLock", "run"]

# acquire() shares one context manager per plan and (timeout, blocking).
_MAX_CONTEXTS_PER_PLAN = 8


def run(steps: Steps[Any]) -> Any:
    """Perform ``steps`` in the calling thread, blocking where they wait."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = steps.send(value) if error is None else steps.throw(error)
        except StopIteration as stop:
            return stop.value
        value = error = None
        try:
            kind = step.__class__
            if kind is WaitLocal:
                value = _wait_local(step.lock, step.deadline)
            elif kind is Call:
                value = step.fn(*step.args)
            elif kind is Pause:
                value = step.board.wait(step.token, step.seconds)
            else:
                assert kind is Shielded
                value = run(step.steps)
        except BaseException as exc:  # thrown into the steps, which decide
            error = exc


def _wait_local(lock: Any, deadline: float) -> bool:
    if deadline == math.inf:
        return bool(lock.acquire())
    remaining = deadline - monotonic()
    # threading refuses a timeout with blocking=False, so a spent deadline
    # is one last non-blocking try; and above TIMEOUT_MAX (about 292 years)
    # it raises OverflowError, so a huge finite one waits that long.
    if remaining > 0:
        return bool(lock.acquire(True, min(remaining, threading.TIMEOUT_MAX)))
    return bool(lock.acquire(False))


class ThreadBoard:
    """Where threads sleep until a key (a lock's name) is woken."""

    def __init__(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._wakes: dict[str, int] = {}
        self._closed = False

    def prepare(self, key: str) -> tuple[str, int]:
        """Return the token of ``key`` to wait on, from now on."""
        with self._condition:
            return key, self._wakes.setdefault(key, 0)

    def wake(self, key: str) -> None:
        """Wake whoever waits on ``key`` (and whoever prepared it since)."""
        with self._condition:
            self._wakes[key] = self._wakes.get(key, 0) + 1
            self._condition.notify_all()

    def wake_all(self) -> None:
        """Wake every waiter."""
        with self._condition:
            for key in self._wakes:
                self._wakes[key] += 1
            self._condition.notify_all()

    def close(self) -> None:
        """Wake every waiter, now and from now on."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    def wait(self, token: tuple[str, int], seconds: float | None) -> None:
        """Sleep until ``token`` is woken, or ``seconds`` pass."""
        key, seen = token
        with self._condition:
            if self._wakes[key] == seen and not self._closed:
                self._condition.wait(seconds)


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
        :param timeout: seconds to wait at most; ``-1`` (or a number too
            large for a float) waits as long as it takes
        :return: whether the lock was acquired
        :raises TypeError: for a timeout that is not a number, or a
            ``blocking`` that is not a bool
        :raises ValueError: for a timeout with ``blocking=False``, or a
            negative timeout other than ``-1``, or NaN
        :raises LockOrderError: if the acquisition breaks the lock order and
            the policy is ``"raise"``
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
            limit = check_timeout(timeout, forever="-1")
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
        self._manager._release_one(self._record)

    def __enter__(self) -> bool:
        self._check_registered()
        self._manager._enter(self._plan, None, True, caller_site(1))
        return True

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._manager._release_one(self._record)

    def owned_by_current_thread(self) -> bool:
        """Return whether the calling thread holds the lock."""
        owner = self._record._owner
        return owner is not None and owner is self._manager._caller()


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
        self, manager: LockManager, plan: Plan[LockInfo], timeout: float | None,
        blocking: bool,
    ) -> None:  # fmt: skip
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
            holder: Holder = self._local.holder
        except AttributeError:
            holder = self._local.holder = thread_holder()
        plan = self._plan
        now = monotonic()
        taken = take_free(plan, holder, now, site)
        if taken < plan.size:
            self._manager._enter_rest(
                plan, taken, holder, site, self._timeout, self._blocking, now
            )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            holder: Holder = self._local.holder
        except AttributeError:
            holder = self._local.holder = thread_holder()
        foreign = release_levels(self._plan.release_order, holder, monotonic())
        if foreign:
            raise foreign_release_error(foreign, holder.describe())


class _SharedAcquisition(_Acquisition):
    """:meth:`LockManager.acquire` of a manager with a backend."""

    __slots__ = ()

    def __enter__(self) -> None:
        frame = _getframe(1)
        site = (frame.f_code, frame.f_lasti)
        self._manager._enter(self._plan, self._timeout, self._blocking, site)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        manager = self._manager
        run(manager._engine.release_shared(self._plan.release_order, manager._attach()))


class LockManager(ManagerBase[LockInfo]):
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

    With ``backend=`` a lock store such as ``cc.redis.RedisLockBackend``
    (``pip install cc-redis``), the locks are shared by every process using
    the same store, with the same API and checks. The manager connects on
    first use (or on ``with manager:``) and runs a lease renewal thread and
    a listener thread until :meth:`close`. Each acquisition holds a
    :class:`Lease` (see :meth:`lease`), and releasing a lock whose lease was
    lost raises :class:`LockLostError`.

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
        lock still held; ``None`` (or a number too large for a float) turns
        both off
    :param backend: where the locks live when processes share them; by
        default (``None``) they live in this process only
    :raises ValueError: for an unknown policy or a negative threshold
    :raises TypeError: for a backend that is not a lock store

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
        backend: LockStore | None = None,
    ) -> None:
        self._local = threading.local()
        self._session_lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        super().__init__(
            hierarchy,
            policy=policy,
            detect_deadlocks=detect_deadlocks,
            long_hold_threshold=long_hold_threshold,
            backend=backend,
        )
        self._acquisition = _Acquisition if backend is None else _SharedAcquisition

    # -- opening and closing (managers with a backend) -------------------------

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
            session = self._engine.session
            workers, self._workers = self._workers, []
        if session is None or session.closed:
            return
        run(session.close())
        for worker in workers:
            worker.join()
        run(session.disconnect())

    def _open_session(self) -> StoreSession:
        session = self._engine.session
        if session is None or session.closed:
            with self._session_lock:
                session = self._engine.session
                if session is None or session.closed:
                    assert self._backend is not None
                    session = self._backend.session(
                        self._engine, ThreadBoard(), tasks=False
                    )
                    try:
                        run(session.open())
                    except BaseException:
                        run(session.disconnect())
                        raise
                    self._engine.session = session
                    for name, work in session.background():
                        worker = threading.Thread(
                            target=run, args=(work,), name=name, daemon=True
                        )
                        worker.start()
                        self._workers.append(worker)
        return session

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
        self,
        name: str,
        order: int | None,
        description: str,
        lock: Any,
        long_hold: float,
    ) -> LockInfo:
        raw = threading.RLock() if lock is None else lock
        record = LockInfo(
            name,
            order,
            description,
            raw,
            raw.acquire,
            long_hold,
        )
        record.set_handle(ManagedLock(self, record, self._engine.single(record)))
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
        lock_: ManagedLock = self._register([(name, order, description, lock)])[name]
        return lock_

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
        return self._register(parse_hierarchy(hierarchy))

    def get_lock(self, name: str) -> ManagedLock:
        """Return the managed lock registered under ``name``.

        :raises KeyError: if no lock has that name (the message says so)
        """
        return self._engine.lookup(name).lock

    def get_lock_info(self, name: str) -> LockInfo:
        """Return the :class:`LockInfo` record of the lock named ``name``.

        :raises KeyError: if no lock has that name
        """
        return self._engine.lookup(name)

    def reset(self) -> None:
        """Unregister every lock and forget what was learned and reported.

        Meant for tests and for re-configuring the process-wide manager from
        :func:`get_lock_manager`. Lock objects obtained before stop working.

        :raises RuntimeError: if any lock is held or awaited
        """
        self._engine.retire_all()

    # -- acquiring and releasing ------------------------------------------------

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

        The context may be shared: each thread that enters it gets a hold of
        its own. A timeout too large for a float (``10**400``) waits as long
        as it takes, like ``None``.
        """
        flag: object = blocking  # typed as a bool; callers may pass anything
        if flag is not True and flag is not False:
            check_blocking(blocking)
        plan = self._engine.plan(names)
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

    def _attach(self) -> Holder:
        try:
            holder: Holder = self._local.holder
        except AttributeError:
            holder = self._local.holder = thread_holder()
        return holder

    def _caller(self) -> Holder | None:
        holder: Holder | None = getattr(self._local, "holder", None)
        return holder

    def _caller_name(self) -> str:
        return f"thread {threading.current_thread().name!r}"

    def _enter(
        self, plan: Plan[LockInfo], timeout: float | None, blocking: bool, site: Site
    ) -> None:
        holder = self._attach()
        now = monotonic()
        if self._backend is not None:
            self._open_session()
            run(self._engine.acquire(plan, 0, holder, site, timeout, blocking, now))
            return
        taken = take_free(plan, holder, now, site)
        if taken < plan.size:
            self._enter_rest(plan, taken, holder, site, timeout, blocking, now)

    def _enter_rest(
        self, plan: Plan[LockInfo], taken: int, holder: Holder, site: Site,
        timeout: float | None, blocking: bool, now: float,
    ) -> None:  # fmt: skip
        engine = self._engine
        index = engine.take_ready(plan, taken, holder, site, now)
        if index < plan.size:
            run(engine.acquire(plan, index, holder, site, timeout, blocking, now))

    def _release_one(self, record: LockInfo) -> None:
        holder = self._caller_holding(record)
        if self._backend is None:
            self._engine.release((record,), holder)
        else:
            run(self._engine.release_shared((record,), holder))

    # -- views -----------------------------------------------------------------

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
        ``depth`` is ``None`` and ``acquired_at`` is by the store's clock.
        ``waiters`` counts this manager's waiting threads only.

        :raises LockBackendError: (with a backend) if the store cannot be reached
        """
        entries = self._status()
        if self._backend is not None:
            holders = run(self._open_session().inspect(list(entries)))
            merge_remote(entries, holders)
        return entries

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
