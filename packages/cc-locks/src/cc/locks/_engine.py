"""The lock-set engine: what both managers do, written once.

An acquisition: plan (validate, order, de-duplicate; cached), take what is
free (:func:`~cc.locks._records.take_free`, or :meth:`LockEngine.take_ready`
when checks are due), then, only if a lock must be waited for or a store
asked, :meth:`LockEngine.acquire`, which rolls back on any error. Whatever
waits is a step (:mod:`cc.locks._steps`) that the drivers block on or await.
"""

from __future__ import annotations

import logging
import math
import threading
import weakref
from collections.abc import Callable, Sequence
from time import monotonic
from typing import Any

from cc.locks import _views
from cc.locks._checks import OrderChecks, RecordT
from cc.locks._errors import LockTimeoutError, lost_error
from cc.locks._hierarchy import Entry, check_entry, check_name, check_policy
from cc.locks._order import OrderGraph
from cc.locks._records import Holder, LockRecord, Plan, Site, release_levels
from cc.locks._records import foreign_release_error as foreign_error
from cc.locks._steps import Steps, WaitLocal
from cc.locks._waits import cycle_from
from cc.locks.lowlevel import RemoteHolder, SharingSession, StoreSession

__all__ = ["LockEngine"]

logger = logging.getLogger("cc.locks")
_MAX_PLANS = 4096  # cached plans, by tuple of names


class LockEngine(OrderChecks[RecordT]):
    """Registration, order checks, acquisition and release of one manager's locks.

    :param kind: ``"thread"`` or ``"task"``, for messages
    :param new_record: makes a lock's record (name, order, description, the
        lock to manage or ``None``, the long-hold threshold)
    :param check_lock: refuses a lock given to ``register_lock(lock=...)``
    """

    def __init__(
        self, kind: str, new_record: Callable[..., RecordT],
        check_lock: Callable[[str, Any], None], *, policy: Any,
        detect_deadlocks: bool, long_hold: float,
    ) -> None:  # fmt: skip
        check_policy(policy)
        self.kind, self.policy, self.checking = kind, policy, policy != "off"
        self.detect, self.long_hold = bool(detect_deadlocks), long_hold
        self._new_record, self._check_lock = new_record, check_lock
        # Guards registration, the learned order, waiters and reports; never
        # held while waiting for a lock.
        self.meta = threading.RLock()
        self.records: dict[str, RecordT] = {}
        self._orders: dict[int, RecordT] = {}
        self.plans: dict[tuple[str, ...], Plan[RecordT]] = {}
        self.reports: dict[tuple[str, ...], str] = {}
        self._graph = OrderGraph()
        # Plans marked learned from learned edges: reset if edges are forgotten.
        self._learned_plans: weakref.WeakSet[Plan[RecordT]] = weakref.WeakSet()
        self.waiting: set[Holder] = set()
        self.session: StoreSession | None = None
        # The session if it shares waits and orders; `where` (" (pid 42 on
        # db-7)") then follows every holder in reports.
        self.sharing: SharingSession | None = None
        self.where = ""

    def attach(self, session: StoreSession) -> None:
        """Use ``session`` (opened) for the locks' shared half from now on."""
        sharing = session if isinstance(session, SharingSession) else None
        self.sharing, self.where = sharing, f" ({sharing.identity})" if sharing else ""
        self.session = session

    # -- registration -------------------------------------------------------------

    def register(self, entries: list[Entry]) -> list[RecordT]:
        """Validate every entry, then register them all or none."""
        for name, order, description, lock in entries:
            check_entry(name, order, description)
            if lock is not None:
                self._check_lock(name, lock)
        with self.meta:
            orders = {order: r.name for order, r in self._orders.items()}
            names = set(self.records)
            for name, order, _, _ in entries:
                if name in names:
                    raise ValueError(f"a lock named {name!r} is already registered")
                names.add(name)
                if order is not None and order in orders:
                    raise ValueError(
                        f"order {order} of lock {name!r} is already used by lock "
                        f"{orders[order]!r}; every declared order must be unique"
                    )
                if order is not None:
                    orders[order] = name
            records = [self._new_record(*entry, self.long_hold) for entry in entries]
            for record in records:
                self.records[record.name] = record
                if record.order is not None:
                    self._orders[record.order] = record
        return records

    def lookup(self, name: str) -> RecordT:
        """Return the record of ``name`` (:class:`KeyError` if there is none)."""
        check_name(name)
        try:
            return self.records[name]
        except KeyError:
            known = ", ".join(map(repr, self.records)) or "none"
            raise KeyError(
                f"no lock named {name!r} is registered (registered: {known})"
            ) from None

    def plan(self, names: tuple[str, ...]) -> Plan[RecordT]:
        """Return the (cached) plan of ``names``: their records, in taking order."""
        try:
            plan = self.plans.get(names)
        except TypeError:  # an unhashable name: lookup() says which
            plan = None
        if plan is None:
            if not names:
                raise ValueError("acquire() needs the name of at least one lock")
            records = {name: self.lookup(name) for name in names}
            ordered = tuple(sorted(records.values(), key=LockRecord.sort_key))
            learned = not self.checking or self._decided(ordered)
            plan = Plan(ordered, learned=learned, checked=self.checking)
            if len(self.plans) >= _MAX_PLANS:
                self.plans.clear()
            self.plans[names] = plan
        return plan

    def retire_all(self) -> None:
        """Unregister every lock, forget what was learned; refuse while busy."""
        with self.meta:
            busy = [r.name for r in self.records.values() if r.is_locked or r.waiters]
            if busy:
                raise RuntimeError(
                    "cannot reset the manager while locks are held or awaited: "
                    + ", ".join(map(repr, busy))
                )
            for record in self.records.values():
                record.retire()
            for table in (self.records, self._orders, self.plans, self.reports):
                table.clear()
            self._graph.clear()
            self._learned_plans.clear()

    # -- acquiring ----------------------------------------------------------------

    def take_ready(
        self, plan: Plan[RecordT], start: int, holder: Holder, site: Site, now: float
    ) -> int:
        """Take ``plan.records[start:]``, checked, up to the first that is not free.

        On an error, releases what the acquisition took (from index 0) first.

        :return: the index of the first lock that needs a wait, or the size
        """
        records = plan.records
        index = start
        try:
            for index in range(start, plan.size):
                record = records[index]
                if not self.prepare(record, holder, site):
                    if not record.try_local():
                        return index
                    record.take(holder, now, site)
        except BaseException:
            self.release(records[index - 1 :: -1] if index else (), holder)
            raise
        if not plan.learned:
            self._learned(plan)
        return plan.size

    def acquire(
        self, plan: Plan[RecordT], start: int, holder: Holder, site: Site,
        timeout: float | None, blocking: bool, now: float,
    ) -> Steps[None]:  # fmt: skip
        """Take ``plan.records[start:]``, checked, waiting; roll back as above."""
        records, session = plan.records, self.session
        deadline = math.inf if timeout is None else now + timeout
        index = start
        try:
            for index in range(start, plan.size):
                record = records[index]
                if self.prepare(record, holder, site):
                    continue
                waited = 0.0
                if not record.try_local():
                    if not blocking:
                        raise self.unavailable(record, timeout, blocking)
                    waited = yield from self._wait_local(
                        record, holder, deadline, timeout, site
                    )
                if session is not None:
                    try:
                        waited += yield from session.take(
                            record, holder, site, deadline, timeout, blocking
                        )
                    except BaseException:
                        record.release_local()
                        raise
                record.take(holder, monotonic(), site)
                if waited:
                    record.waited(waited)
        except GeneratorExit:
            raise
        except BaseException:
            if index:
                yield from self.roll_back(records[index - 1 :: -1], holder)
            raise
        if not plan.learned:
            self._learned(plan)

    def _wait_local(
        self, record: RecordT, holder: Holder, deadline: float,
        timeout: float | None, site: Site,
    ) -> Steps[float]:  # fmt: skip
        self.wait_begins(holder, record, site)
        started = monotonic()
        try:
            acquired = yield WaitLocal(record._raw, deadline)
        finally:
            self.wait_ends(holder, record)
        if not acquired:
            raise self.unavailable(record, timeout, blocking=True)
        return monotonic() - started

    def wait_begins(
        self, holder: Holder, record: LockRecord[Any], site: Site | None = None
    ) -> None:
        """Note that ``holder`` waits for ``record`` (from ``site``: check first).

        :raises DeadlockError: if the wait would close a wait-for cycle
        """
        with self.meta:
            owner = record._owner
            if self.detect and site is not None and owner is not None:
                path = cycle_from(holder, (record, owner), _views.wait_step)
                if path is not None:
                    key, report, error = _views.deadlock(holder, path, site, self.where)
                    self.report(key, report)
                    raise error
            holder.waiting_for = record
            record.add_waiter(holder)
            self.waiting.add(holder)

    def wait_ends(self, holder: Holder, record: LockRecord[Any]) -> None:
        """Note that ``holder`` no longer waits for ``record``."""
        with self.meta:
            holder.waiting_for = None
            record.remove_waiter(holder)
            self.waiting.discard(holder)

    # -- releasing ----------------------------------------------------------------

    def release(self, records: Sequence[RecordT], holder: Holder) -> None:
        """Release one level of each of ``records``, in that order (no store).

        :raises RuntimeError: after releasing the others, for those that
            ``holder`` does not hold
        """
        foreign = release_levels(records, holder, monotonic())
        if foreign:
            raise foreign_error(foreign, holder.describe())

    def release_shared(
        self, records: Sequence[RecordT], holder: Holder, rolling_back: bool = False
    ) -> Steps[None]:
        """Release one level of each of ``records``, leases included.

        :raises LockLostError: after releasing everything, if a lease was lost
            (not while ``rolling_back``: the first error wins)
        :raises RuntimeError: for a record that ``holder`` does not hold
        """
        released: list[RecordT] = []
        foreign = release_levels(records, holder, monotonic(), released)
        lost: list[tuple[str, str]] = []
        if released:
            assert self.session is not None  # a lease was taken through it
            try:
                lost = yield from self.session.release([r.name for r in released])
            finally:
                for record in released:
                    record.release_local()
        if foreign:
            raise foreign_error(foreign, holder.describe())
        if lost and not rolling_back:
            raise lost_error(lost)

    def roll_back(self, records: Sequence[RecordT], holder: Holder) -> Steps[None]:
        """Release what a failed acquisition took (``records`` in release order)."""
        if self.session is None:
            self.release(records, holder)
        else:
            yield from self.release_shared(records, holder, rolling_back=True)

    # -- timeouts -----------------------------------------------------------------

    def unavailable(
        self, record: RecordT, timeout: float | None, blocking: bool
    ) -> LockTimeoutError:
        """Return the timeout error for ``record``'s local lock, naming its holder."""
        return self.timeout_error(record, timeout, blocking, *_views.local_held(record))

    def remote_unavailable(
        self, record: RecordT, holder: RemoteHolder | None, queued: bool,
        timeout: float | None, blocking: bool,
    ) -> LockTimeoutError:  # fmt: skip
        """Return the timeout error for a lock another process holds (or is due)."""
        held = _views.remote_held(holder, queued)
        return self.timeout_error(record, timeout, blocking, *held)

    def timeout_error(
        self, record: RecordT, timeout: float | None, blocking: bool,
        holder: str | None, held: str,
    ) -> LockTimeoutError:  # fmt: skip
        """Count a timeout of ``record`` and return its error."""
        with self.meta:
            record.timed_out()
        if blocking:
            text = f"could not acquire {record.describe()} within {timeout} s"
        else:
            text = f"{record.describe()} is not available and blocking=False"
        return LockTimeoutError(f"{text}: it is held {held}", record.name, holder)
