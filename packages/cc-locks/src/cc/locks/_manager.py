"""What the thread and the task managers, and their managed locks, share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Generic, TypeVar

from cc.locks._checks import retired_error
from cc.locks._engine import LockEngine
from cc.locks._hierarchy import (
    Entry,
    LockHierarchy,
    Policy,
    check_threshold,
    parse_hierarchy,
)
from cc.locks._records import (
    Holder,
    LockRecord,
    LockUsageStatistics,
    Plan,
    foreign_release_error,
)
from cc.locks._steps import Steps
from cc.locks._views import merge_remote, potential_deadlocks, remote_cycles, status
from cc.locks.lowlevel import Lease, LockStore, StoreSession

__all__ = ["ManagedLockBase", "ManagerBase"]

RecordT = TypeVar("RecordT", bound=LockRecord[Any])


class ManagedLockBase(Generic[RecordT]):
    """A handle on one registered lock that goes through its manager's checks."""

    __slots__ = ("_manager", "_plan", "_record")

    def __init__(self, manager: Any, record: RecordT) -> None:
        self._manager, self._record = manager, record
        self._plan = Plan((record,), learned=True, checked=manager._engine.checking)

    @property
    def name(self) -> str:
        """The name the lock is registered under."""
        return self._record.name

    @property
    def info(self) -> RecordT:
        """The lock's registration record (a ``LockInfo`` or ``AsyncLockInfo``)."""
        return self._record

    def __repr__(self) -> str:
        owner = self._record.owner
        state = "unlocked" if owner is None else f"held by {owner}"
        return f"<{type(self).__name__} {self._record.name!r} {state}>"

    def locked(self) -> bool:
        """Return whether some thread or task holds the lock through the manager."""
        return self._record.is_locked

    def _check_registered(self) -> None:
        if self._record._retired:
            raise retired_error(self._record)


class ManagerBase(ABC, Generic[RecordT]):
    """Configuration, registration and views shared by both lock managers."""

    _kind = "thread"  # or "task", for messages

    def __init__(
        self, hierarchy: LockHierarchy | None, *, policy: Policy,
        detect_deadlocks: bool, long_hold_threshold: float | None,
        backend: LockStore | None,
    ) -> None:  # fmt: skip
        if backend is not None and not isinstance(backend, LockStore):
            raise TypeError(
                "backend must be a lock store (such as cc.redis.RedisLockBackend) "
                f"or None, not {type(backend).__name__}"
            )
        self._engine: LockEngine[RecordT] = LockEngine(
            self._kind, self._new_record, self._check_lock_argument, policy=policy,
            detect_deadlocks=detect_deadlocks,
            long_hold=check_threshold(long_hold_threshold),
        )  # fmt: skip
        self._backend = backend
        if hierarchy is not None:
            self._engine.register(parse_hierarchy(hierarchy))

    def __repr__(self) -> str:
        shared = "" if self._backend is None else f" backend={self._backend!r}"
        return (
            f"<{type(self).__name__} locks={len(self._engine.records)} "
            f"policy={self._engine.policy!r}{shared}>"
        )

    @property
    def policy(self) -> Policy:
        """What happens on an order violation: ``"raise"``, ``"warn"``, ``"off"``."""
        policy: Policy = self._engine.policy
        return policy

    @property
    def detect_deadlocks(self) -> bool:
        """Whether a wait that would close a wait-for cycle raises instead."""
        return self._engine.detect

    @property
    def long_hold_threshold(self) -> float | None:
        """Hold time in seconds past which a release logs a warning, or ``None``."""
        long_hold = self._engine.long_hold
        return None if long_hold == float("inf") else long_hold

    @property
    def backend(self) -> LockStore | None:
        """Where the locks are shared, or ``None`` for this process only."""
        return self._backend

    # -- what the subclasses provide -----------------------------------------------

    @abstractmethod
    def _new_record(self, *entry: Any) -> RecordT: ...

    @abstractmethod
    def _check_lock_argument(self, name: str, lock: Any) -> None: ...

    @abstractmethod
    def _caller(self) -> Holder | None: ...

    @abstractmethod
    def _caller_name(self) -> str: ...

    @abstractmethod
    def _open_session(self) -> StoreSession: ...

    # -- shared behaviour ------------------------------------------------------------

    def _register(self, entries: list[Entry]) -> dict[str, Any]:
        return {record.name: record.lock for record in self._engine.register(entries)}

    def _caller_holding(self, record: RecordT) -> Holder:
        """Return the caller's holder if it holds ``record``; else raise.

        :raises RuntimeError: naming the lock's holder
        """
        holder = self._caller()
        if holder is None or record._owner is not holder:
            raise foreign_release_error([record], self._caller_name())
        return holder

    def held_locks(self) -> list[str]:
        """Return the names of the locks the caller holds, in the order taken."""
        holder = self._caller()
        return [] if holder is None else [r.name for r in holder.stack]

    def statistics(self) -> dict[str, LockUsageStatistics]:
        """Return each lock's contention statistics, by name."""
        return {name: r.statistics() for name, r in list(self._engine.records.items())}

    def lease(self, name: str) -> Lease:
        """Return the :class:`Lease` by which the caller holds ``name``.

        Its ``fencing_token`` identifies this acquisition to the resources
        the lock protects; ``lost`` tells whether it is still held.

        :raises KeyError: if no lock has that name
        :raises RuntimeError: without a backend, or if the caller does not
            hold the lock
        """
        record = self._engine.lookup(name)
        session = self._engine.session
        holder = self._caller()
        lease = None if session is None else session.lease(name)
        if lease is None or holder is None or record._owner is not holder:
            if self._backend is None:
                raise RuntimeError(
                    f"lock {name!r} has no lease: its manager has no backend"
                )
            raise RuntimeError(f"the calling {self._kind} does not hold lock {name!r}")
        return lease

    def _status(self) -> Steps[dict[str, dict[str, Any]]]:
        entries = status(self._engine.records.values(), self._engine.meta)
        if self._backend is not None:
            session = self._open_session()
            merge_remote(entries, (yield from session.inspect(list(entries))))
        return entries

    def _potential_deadlocks(self) -> Steps[list[str]]:
        engine, session = self._engine, self._engine.session
        shared = session is not None and not session.closed
        sharing = engine.sharing if shared else None
        waits = [] if sharing is None else (yield from sharing.wait_graph())
        return potential_deadlocks(
            engine.records.values(), engine.waiting, engine.reports, engine.meta,
            engine.long_hold, engine.where, remote_cycles(waits),
        )  # fmt: skip

    def _connect(self, board: Any, tasks: bool) -> Steps[StoreSession]:
        """Open a new session of the backend (disconnected again on failure)."""
        assert self._backend is not None
        session = self._backend.session(self._engine, board, tasks=tasks)
        try:
            yield from session.open()
        except BaseException:
            yield from session.disconnect()
            raise
        return session
