"""The lock manager for async tasks: the engine's steps, performed by awaiting."""

from __future__ import annotations

from sys import _getframe
from time import monotonic
from typing import Any

import anyio

from cc.locks import _hierarchy as check
from cc.locks._handles import (
    AsyncLockInfo,
    AsyncManagedLock,
    SharedTaskAcquisition,
    TaskAcquisition,
    pace,
)
from cc.locks._manager import ManagerBase
from cc.locks._records import (
    Holder,
    Plan,
    Site,
    foreign_release_error,
    release_levels,
    take_free,
)
from cc.locks._steps import TaskBoard, arun
from cc.locks.lowlevel import LockStore, StoreSession
from cc.primitives import Lock, current_task_key, task_name
from cc.primitives.lowlevel import checkpoint_rule, take_checkpoint

__all__ = ["AsyncLockInfo", "AsyncLockManager", "AsyncManagedLock"]

_MAX_SPARE_HOLDERS = 64


class AsyncLockManager(ManagerBase[AsyncLockInfo]):
    """Named locks for async tasks, taken in a declared order, with deadlock checks.

    The task counterpart of :class:`LockManager`, built on
    :class:`cc.primitives.Lock`, on asyncio, uvloop and trio: register locks
    with an order, take any set of them with ``async with
    manager.acquire(...)`` in ascending order under one deadline, with the
    same checks (order violations, learned orders, live deadlocks, long
    holds) and statistics. Every awaitable operation follows cc's checkpoint
    rule (:mod:`cc.primitives.lowlevel`): a loop of them that never has to
    wait still yields, and honours cancellation, at least every
    :data:`~cc.primitives.lowlevel.CHECKPOINT_INTERVAL`-th call.
    Only a task that has to wait pays for a cancel scope. A manager and its
    locks belong to one event loop (they are not thread safe).

    With ``backend=`` a lock store (such as ``cc.redis.RedisLockBackend``),
    every process using the store shares the locks; the manager then runs
    background tasks, so it is used inside ``async with manager:``. Each
    acquisition holds a :class:`Lease` (:meth:`lease`), and releasing a lock
    whose lease was lost raises :class:`LockLostError`.

    :param hierarchy: locks to register at once (see :meth:`register_locks`)
    :param policy: ``"raise"`` (the default), ``"warn"`` or ``"off"``, as for
        :class:`LockManager`
    :param detect_deadlocks: whether a wait that would close a wait-for cycle
        raises :class:`DeadlockError` (it costs only when a task waits)
    :param long_hold_threshold: hold time in seconds past which a release logs
        a warning; ``None`` (or a number too large for a float) turns it off
    :param backend: where the locks live when processes share them
    :raises ValueError: for an unknown policy or a negative threshold
    :raises TypeError: for a backend that is not a lock store

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
        self, hierarchy: check.LockHierarchy | None = None, *,
        policy: check.Policy = "raise", detect_deadlocks: bool = True,
        long_hold_threshold: float | None = 30.0,
        backend: LockStore | None = None,
    ) -> None:  # fmt: skip
        self._holders: dict[object, Holder] = {}
        self._spare_holders: list[Holder] = []
        self._task_group: Any = None
        # cc's checkpoint rule, bound once: the acquisitions spend from it.
        self._due = checkpoint_rule(None)
        super().__init__(
            hierarchy, policy=policy, detect_deadlocks=detect_deadlocks,
            long_hold_threshold=long_hold_threshold, backend=backend,
        )  # fmt: skip
        self._acquisition = (
            TaskAcquisition if backend is None else SharedTaskAcquisition
        )

    async def __aenter__(self) -> AsyncLockManager:
        """Connect to the backend and start its background tasks (if there is one).

        :raises LockBackendError: if the backend cannot be reached
        :raises RuntimeError: if the manager is open already
        """
        await pace()
        if self._backend is None:
            return self
        session = self._engine.session
        if session is not None and not session.closed:
            raise RuntimeError("this AsyncLockManager is open already")
        session = await arun(self._connect(TaskBoard(), tasks=True))
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._engine.attach(session)
        for name, work in session.background():
            self._task_group.start_soon(arun, work, name=name)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the background tasks and disconnect from the backend.

        Leases still held are released on the backend and marked lost (their
        holders get :class:`LockLostError` when they release). Without a
        backend, or when closed already, this does nothing.
        """
        session = self._engine.session
        if session is None or session.closed:
            return
        try:
            await arun(session.close())
        finally:
            task_group, self._task_group = self._task_group, None
            task_group.cancel_scope.cancel()
            try:
                await task_group.__aexit__(None, None, None)
            finally:
                await arun(session.disconnect())

    def _open_session(self) -> StoreSession:
        session = self._engine.session
        if session is None or session.closed:
            raise RuntimeError(
                "an AsyncLockManager with a backend must be opened before its "
                "locks are used: `async with AsyncLockManager(backend=...) as "
                "manager:` (it runs the lease renewal in the background)"
            )
        return session

    # -- registration ------------------------------------------------------

    def _check_lock_argument(self, name: str, lock: Any) -> None:
        if not isinstance(lock, Lock):
            raise TypeError(
                f"lock {name!r}: expected a cc.primitives.Lock, "
                f"not {type(lock).__name__}"
            )

    def _new_record(self, *entry: Any) -> AsyncLockInfo:
        name, order, description, lock, long_hold = entry
        # The manager applies cc's checkpoint rule once per operation; a
        # checkpoint in its local lock as well would spend the budget twice and
        # could hand the lock on while the status names this task a waiter.
        raw = Lock(fast_acquire=True) if lock is None else lock
        record = AsyncLockInfo(name, order, description, raw, long_hold)
        record.set_handle(AsyncManagedLock(self, record))
        return record

    async def register_lock(
        self,
        name: str,
        order: int | None,
        description: str = "",
        lock: Lock | None = None,
    ) -> AsyncManagedLock:
        """Register a lock under a unique name and order.

        As :meth:`LockManager.register_lock`; ``lock`` is an existing
        :class:`cc.primitives.Lock` to manage (by default a new one).

        :raises ValueError: if the name or the order is already registered
        :raises TypeError: for a name, order, description or lock of a wrong type
        """
        await pace()
        managed: AsyncManagedLock = self._register([(name, order, description, lock)])[
            name
        ]
        return managed

    async def register_locks(
        self, hierarchy: check.LockHierarchy
    ) -> dict[str, AsyncManagedLock]:
        """Register a whole hierarchy at once (see :meth:`LockManager.register_locks`).

        :raises ValueError: if a name or order clashes; nothing is registered
        :raises TypeError: for an entry of the wrong shape or type
        """
        await pace()
        return self._register(check.parse_hierarchy(hierarchy))

    async def get_lock(self, name: str) -> AsyncManagedLock:
        """Return the managed lock registered under ``name``.

        :raises KeyError: if no lock has that name (the message lists them)
        """
        await pace()
        return self._engine.lookup(name).lock

    async def get_lock_info(self, name: str) -> AsyncLockInfo:
        """Return the :class:`AsyncLockInfo` record of the lock named ``name``.

        :raises KeyError: if no lock has that name
        """
        await pace()
        return self._engine.lookup(name)

    def get_lock_info_nowait(self, name: str) -> AsyncLockInfo:
        """Return the record of the lock named ``name``, from sync code too.

        :raises KeyError: if no lock has that name
        """
        return self._engine.lookup(name)

    async def reset(self) -> None:
        """Unregister every lock and forget what was learned (for tests).

        :raises RuntimeError: if any lock is held or awaited
        """
        await pace()
        self._engine.retire_all()

    # -- acquiring and releasing ------------------------------------------------

    def acquire(
        self, *names: str, timeout: float | None = 10.0, blocking: bool = True
    ) -> TaskAcquisition:
        """Take the named locks, in ascending order, for an ``async with`` block.

        As :meth:`LockManager.acquire`, for tasks, with the same arguments and
        errors; a cancellation also releases what the call took. The context
        may be shared: each task that enters it gets a hold of its own.

        :param names: the locks to take (repeats count once)
        :param timeout: seconds to wait for the whole set; ``None`` (or a
            number too large for a float) waits as long as it takes
        :param blocking: with ``False``, fail at once instead of waiting
        :return: an async context manager holding the locks inside its block
        :raises TypeError: for a name that is not a str, a timeout that is not
            a number, or a ``blocking`` that is not a bool
        :raises ValueError: without names, or for a negative or NaN timeout
        :raises LockTimeoutError: (entering) if the deadline passed, naming
            the lock, its holder and where the holder acquired it
        """
        flag: object = blocking  # typed as a bool; callers may pass anything
        if flag is not True and flag is not False:
            check.check_blocking(blocking)
        if timeout is not None and not (timeout.__class__ is float and timeout >= 0):
            timeout = check.check_seconds(timeout)
        frame = _getframe(1)
        plan = self._engine.plan(names)
        site = (frame.f_code, frame.f_lasti)
        return self._acquisition(self, plan, timeout, blocking, site)

    def _attach(self) -> Holder:
        task = current_task_key()
        holder = self._holders.get(task)
        if holder is None:
            if self._spare_holders:
                holder = self._spare_holders.pop()
                holder.key = task
            else:
                holder = Holder(task, thread=False)
            self._holders[task] = holder
        return holder

    def _detach_if_idle(self, holder: Holder) -> None:
        # A task that holds and awaits nothing is forgotten (the manager never
        # keeps a finished task alive); its holder is kept for the next task.
        if (
            not holder.stack
            and holder.waiting_for is None
            and self._holders.pop(holder.key, None) is holder
        ):
            holder.key = None
            if len(self._spare_holders) < _MAX_SPARE_HOLDERS:
                self._spare_holders.append(holder)

    def _caller(self) -> Holder | None:
        return self._holders.get(current_task_key())

    def _caller_name(self) -> str:
        return f"task {task_name(current_task_key())!r}"

    async def _enter(
        self, plan: Plan[AsyncLockInfo], limit: float | None, blocking: bool, site: Site
    ) -> Holder:
        if next(self._due):  # cc's checkpoint rule, before taking anything
            self._due = await take_checkpoint(self._due)
        holder, now = self._attach(), monotonic()
        taken = take_free(plan, holder, now, site) if self._backend is None else 0
        if taken < plan.size:
            await self._enter_rest(plan, taken, holder, site, limit, blocking, now)
        return holder

    async def _enter_rest(
        self, plan: Plan[AsyncLockInfo], taken: int, holder: Holder, site: Site,
        limit: float | None, blocking: bool, now: float,
    ) -> None:  # fmt: skip
        engine = self._engine
        try:
            if self._backend is None:
                taken = engine.take_ready(plan, taken, holder, site, now)
            else:
                self._open_session()
            if taken < plan.size:
                await arun(
                    engine.acquire(plan, taken, holder, site, limit, blocking, now)
                )
        except BaseException:
            self._detach_if_idle(holder)
            raise

    def _release_here(self, records: tuple[AsyncLockInfo, ...], holder: Holder) -> None:
        """Release one level of ``records`` (in release order), without a store."""
        foreign = release_levels(records, holder, monotonic())
        if not holder.stack:
            self._detach_if_idle(holder)
        if foreign:
            raise foreign_release_error(foreign, holder.describe())

    async def _release(
        self, records: tuple[AsyncLockInfo, ...], holder: Holder | None
    ) -> None:
        """Release one level of ``records`` for ``holder``, leases included.

        ``None``: the calling task, which must hold the first of them.
        """
        holder = holder or self._caller_holding(records[0])
        try:
            if self._backend is None:
                self._engine.release(records, holder)
            else:
                await arun(self._engine.release_shared(records, holder))
        finally:
            if not holder.stack:
                self._detach_if_idle(holder)

    # -- views -----------------------------------------------------------------

    async def get_lock_status(self) -> dict[str, dict[str, Any]]:
        """Return the live state of every registered lock, by name.

        The entries of :meth:`LockManager.get_lock_status`, with tasks as
        holders and waiters (``"task 'worker-1'"``).

        :raises LockBackendError: (with a backend) if the store cannot be reached
        """
        await pace()
        return await arun(self._status())

    async def detect_potential_deadlocks(self) -> list[str]:
        """Describe every deadlock risk the manager knows of, one per string.

        As :meth:`LockManager.detect_potential_deadlocks`: long holds, live
        wait-for cycles (across processes too, with a backend that shares
        them), then the recorded reports.

        :raises LockBackendError: (with a backend) if the store cannot be reached
        """
        await pace()
        return await arun(self._potential_deadlocks())
