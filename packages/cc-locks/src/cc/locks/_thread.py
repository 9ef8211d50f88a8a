"""The lock manager for threads: the engine's steps, performed by blocking."""

from __future__ import annotations

import threading
from time import monotonic
from typing import Any

from cc.locks._handles import (
    LockInfo,
    ManagedLock,
    SharedAcquisition,
    ThreadAcquisition,
)
from cc.locks._hierarchy import (
    LockHierarchy,
    Policy,
    check_blocking,
    check_seconds,
    parse_hierarchy,
)
from cc.locks._manager import ManagerBase
from cc.locks._records import Holder, Plan, Site, take_free, thread_holder
from cc.locks._steps import ThreadBoard, run
from cc.locks.lowlevel import LockStore, StoreSession

__all__ = ["LockInfo", "LockManager", "ManagedLock"]

_MAX_CONTEXTS = 4096  # acquire() contexts kept, by (names, timeout, blocking)


class LockManager(ManagerBase[LockInfo]):
    """Named locks for threads, taken in a declared order, with deadlock checks.

    Register each lock once with a name and an order (or a hierarchy with
    :meth:`register_locks`), then take any set of them with :meth:`acquire`:
    in ascending order, under one deadline. The manager refuses (or, by
    policy, reports) an acquisition against the declared order or against
    the order it learned for locks of ``order=None`` (:class:`LockOrderError`),
    raises :class:`DeadlockError` instead of waiting into a wait-for cycle,
    warns about long holds and counts contention per lock. Locks are
    reentrant; use the ones :meth:`get_lock` returns, so that the manager
    sees every holder.

    With ``backend=`` a lock store (such as ``cc.redis.RedisLockBackend``),
    every process using the store shares the locks: the manager connects on
    first use (or ``with manager:``) and works in background threads until
    :meth:`close`; each acquisition holds a :class:`Lease`.

    :param hierarchy: locks to register at once (see :meth:`register_locks`)
    :param policy: what an order violation does: ``"raise"`` (the default)
        raises :class:`LockOrderError`; ``"warn"`` logs it once and records it
        for :meth:`detect_potential_deadlocks`; ``"off"`` checks nothing
    :param detect_deadlocks: whether a wait that would close a wait-for cycle
        raises :class:`DeadlockError` (it costs only when a thread waits)
    :param long_hold_threshold: hold time in seconds past which a release logs
        a warning and :meth:`detect_potential_deadlocks` reports a lock still
        held; ``None`` (or a number too large for a float) turns both off
    :param backend: where the locks live when processes share them; by
        default (``None``) in this process only
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
        self, hierarchy: LockHierarchy | None = None, *, policy: Policy = "raise",
        detect_deadlocks: bool = True, long_hold_threshold: float | None = 30.0,
        backend: LockStore | None = None,
    ) -> None:  # fmt: skip
        self._local = threading.local()
        # acquire()'s contexts keep no state (the holder is the calling
        # thread's), so one per (names, timeout, blocking) serves every thread.
        self._contexts: dict[tuple[Any, ...], ThreadAcquisition] = {}
        self._session_lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        super().__init__(
            hierarchy, policy=policy, detect_deadlocks=detect_deadlocks,
            long_hold_threshold=long_hold_threshold, backend=backend,
        )  # fmt: skip
        self._acquisition = ThreadAcquisition if backend is None else SharedAcquisition

    def __enter__(self) -> LockManager:
        """Connect to the backend now rather than on first use (if there is one).

        :raises LockBackendError: if the backend cannot be reached
        """
        if self._backend is not None:
            self._open_session()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the background threads and disconnect from the backend.

        Leases still held are released on the backend and marked lost (their
        holders get :class:`LockLostError` when they release). Using the
        manager again connects again. Without a backend this does nothing.
        """
        with self._session_lock:
            session, workers, self._workers = self._engine.session, self._workers, []
        if session is not None and not session.closed:
            run(session.close())
            for worker in workers:
                worker.join()
            run(session.disconnect())

    def _open_session(self) -> StoreSession:
        session = self._engine.session
        if session is not None and not session.closed:
            return session
        with self._session_lock:
            session = self._engine.session
            if session is None or session.closed:
                session = run(self._connect(ThreadBoard(), tasks=False))
                self._engine.attach(session)
                for name, work in session.background():
                    worker = threading.Thread(
                        target=run, args=(work,), name=name, daemon=True
                    )
                    worker.start()
                    self._workers.append(worker)
        return session

    # -- registration ------------------------------------------------------

    def _check_lock_argument(self, name: str, lock: Any) -> None:
        if not all(callable(getattr(lock, m, None)) for m in ("acquire", "release")):
            raise TypeError(
                f"lock {name!r}: expected a threading.RLock (or another lock "
                f"with acquire() and release()), not {type(lock).__name__}"
            )

    def _new_record(self, *entry: Any) -> LockInfo:
        name, order, description, lock, long_hold = entry
        raw = threading.RLock() if lock is None else lock
        record = LockInfo(name, order, description, raw, long_hold)
        record.set_handle(ManagedLock(self, record))
        return record

    def register_lock(
        self, name: str, order: int | None, description: str = "",
        lock: threading.RLock | None = None,
    ) -> ManagedLock:  # fmt: skip
        """Register a lock under a unique name and order.

        :param order: its place in the hierarchy (taken in ascending order);
            ``None`` leaves it to be learned from use
        :param description: what the lock protects, for reports
        :param lock: a lock to manage (with ``acquire(blocking, timeout)`` and
            ``release()``); by default a new :class:`threading.RLock`
        :return: the managed lock, usable like a :class:`threading.RLock`
        :raises ValueError: if the name or the order is already registered
        :raises TypeError: for a name, order, description or lock of a wrong type
        """
        managed: ManagedLock = self._register([(name, order, description, lock)])[name]
        return managed

    def register_locks(self, hierarchy: LockHierarchy) -> dict[str, ManagedLock]:
        """Register a whole lock hierarchy at once: all of it, or nothing.

        A mapping of names to orders, to ``(order, description)`` tuples or to
        ``{"order", "description"}`` mappings; or a list of ``(name, order[,
        description])`` tuples or of ``{"name", "order", "description"}``
        mappings.

        :return: the managed locks by name, in the order given
        :raises ValueError: if a name or order clashes; nothing is registered
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

        :raises KeyError: if no lock has that name (the message lists them)
        """
        return self._engine.lookup(name).lock

    def get_lock_info(self, name: str) -> LockInfo:
        """Return the :class:`LockInfo` record of the lock named ``name``.

        :raises KeyError: if no lock has that name
        """
        return self._engine.lookup(name)

    def reset(self) -> None:
        """Unregister every lock and forget what was learned (for tests).

        :raises RuntimeError: if any lock is held or awaited
        """
        self._engine.retire_all()
        self._contexts.clear()  # their plans hold the retired records

    # -- acquiring and releasing ------------------------------------------------

    def acquire(
        self, *names: str, timeout: float | None = 10.0, blocking: bool = True
    ) -> ThreadAcquisition:
        """Take the named locks, in ascending order, for a ``with`` block.

        Declared orders first, ascending, then locks of learned order by name,
        whatever order they are named in; a lock the caller holds is
        re-entered; on any error, what this call took is released first. The
        context may be shared: each thread that enters it holds on its own.

        :param names: the locks to take (repeats count once)
        :param timeout: seconds for the whole set (one deadline); ``None`` (or
            a number too large for a float) waits as long as it takes
        :param blocking: with ``False``, fail at once instead of waiting
        :return: a context manager holding the locks inside its block
        :raises KeyError: if a name is not registered
        :raises TypeError: for a name that is not a str, a timeout that is not
            a number, or a ``blocking`` that is not a bool
        :raises ValueError: without names, or for a negative or NaN timeout
        :raises LockOrderError: (entering) for an order violation, with the
            policy ``"raise"``
        :raises DeadlockError: (entering) if waiting would close a wait-for cycle
        :raises LockTimeoutError: (entering) past the deadline, or at once with
            ``blocking=False``, naming the lock, its holder and where it took it
        :raises RuntimeError: (leaving) if a lock of the set was released inside
            the block and is someone else's now: the rest is released
        """
        flag: object = blocking  # typed as a bool; callers may pass anything
        if flag is not True and flag is not False:
            check_blocking(blocking)
        contexts = self._contexts
        try:
            context = contexts.get((names, timeout, blocking))
        except TypeError:  # an unhashable name or timeout: refused below
            context = None
        if context is None:
            # A cached context was made for valid arguments: check new ones.
            plan = self._engine.plan(names)
            limit = None if timeout is None else check_seconds(timeout)
            context = self._acquisition(self, plan, limit, blocking)
            # 0 and 1 equal False and True as dict keys: never cache them.
            if timeout not in (0, 1):
                if len(contexts) >= _MAX_CONTEXTS:
                    contexts.clear()
                contexts[names, timeout, blocking] = context
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
        holder, now = self._attach(), monotonic()
        if self._backend is None:
            taken = take_free(plan, holder, now, site)
            if taken < plan.size:
                self._enter_rest(plan, taken, holder, site, timeout, blocking, now)
        else:
            self._open_session()
            run(self._engine.acquire(plan, 0, holder, site, timeout, blocking, now))

    def _enter_rest(
        self, plan: Plan[LockInfo], taken: int, holder: Holder, site: Site,
        timeout: float | None, blocking: bool, now: float,
    ) -> None:  # fmt: skip
        index = self._engine.take_ready(plan, taken, holder, site, now)
        if index < plan.size:
            run(self._engine.acquire(plan, index, holder, site, timeout, blocking, now))

    def _release(self, records: tuple[LockInfo, ...], holder: Holder | None) -> None:
        """Release one level of ``records`` (in release order) for ``holder``.

        ``None``: the calling thread, which must hold the first of them.
        """
        if holder is None:
            mine: Holder | None = getattr(self._local, "holder", None)
            if mine is None or records[0]._owner is not mine:
                mine = self._caller_holding(records[0])  # raises: not ours
            holder = mine
        if self._backend is None:
            self._engine.release(records, holder)
        else:
            run(self._engine.release_shared(records, holder))

    # -- views -----------------------------------------------------------------

    def get_lock_status(self) -> dict[str, dict[str, Any]]:
        """Return the live state of every registered lock, by name.

        Each entry has ``order``, ``description``, ``owner`` (``"thread 'w1'"``
        or ``None``), ``acquired_at`` (a :func:`time.time` timestamp),
        ``is_locked``, ``depth``, ``waiters``, ``waiting`` (which threads),
        ``hold_time`` (seconds) and ``acquisition_site``. With a backend, it
        describes the holder wherever it is (``"thread 'w1' (pid 42 on db-7)"``)
        and adds ``held_here``, ``host``, ``pid``, ``fencing_token`` and
        ``lease_expires_in``.

        :raises LockBackendError: (with a backend) if the store cannot be reached
        """
        return run(self._status())

    def detect_potential_deadlocks(self) -> list[str]:
        """Describe every deadlock risk the manager knows of, one per string.

        Locks held longer than ``long_hold_threshold`` now; live wait-for
        cycles (only with ``detect_deadlocks`` off, or a lock used outside the
        manager); with a backend that shares waits (``RedisLockBackend``), the
        live wait-for cycles across processes; then order violations,
        learned-order inversions (those of other processes included) and
        averted deadlocks, as recorded. With such a backend every holder is
        named with its pid and host.

        :raises LockBackendError: (with a backend) if the store cannot be reached
        """
        return run(self._potential_deadlocks())
