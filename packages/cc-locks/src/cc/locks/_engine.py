"""The lock-set engine: what both managers do, written once.

An acquisition goes: plan (validate, order, de-duplicate the names, cached),
take what is free without waiting (:func:`~cc.locks._records.take_free` when
nothing needs checking, else :meth:`LockEngine.take_ready`), then, only if a
lock must be waited for or a store must be asked, :meth:`LockEngine.acquire`:
wait for the next lock, take what is free again, and roll back everything
this acquisition took on a timeout, an error or a cancellation. Release goes
through :func:`~cc.locks._records.release_levels`, or
:meth:`LockEngine.release_shared` with a store.

Whatever has to wait is a step (:mod:`cc.locks._store`): the thread manager
and the task manager are thin drivers that perform the steps, blocking or
awaiting, and hold nothing else of the logic.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Sequence
from time import monotonic
from typing import Any, Generic, TypeVar

from cc.locks._errors import (
    DeadlockError,
    LockOrderError,
    LockTimeoutError,
    lost_error,
)
from cc.locks._hierarchy import Entry, check_entry, check_name, check_policy
from cc.locks._order import Edge, OrderGraph, Path
from cc.locks._records import (
    Holder,
    LockRecord,
    Plan,
    Site,
    foreign_release_error,
    format_site,
    release_levels,
)
from cc.locks._store import RemoteHolder, Steps, StoreSession, WaitLocal
from cc.locks._views import describe_cycle, remote_held, wait_step
from cc.locks._waits import cycle_from

__all__ = ["LockEngine", "retired_error"]

logger = logging.getLogger("cc.locks")

RecordT = TypeVar("RecordT", bound=LockRecord[Any])

# Reports kept for detect_potential_deadlocks(); older ones are dropped.
_MAX_REPORTS = 256
# Plans cached for distinct tuples of names.
_MAX_PLANS = 4096


def retired_error(record: LockRecord[Any]) -> RuntimeError:
    """Return the error for using a lock after its manager was reset."""
    return RuntimeError(
        f"lock {record.name!r} is no longer registered (its manager was reset)"
    )


class LockEngine(Generic[RecordT]):
    """Registration, order checks, acquisition and release of one manager's locks.

    :param kind: ``"thread"`` or ``"task"``, for messages
    :param new_record: makes the record of a lock (name, order, description,
        the lock to manage or ``None``, the long-hold threshold)
    :param check_lock: refuses a lock given to ``register_lock(lock=...)``
    """

    def __init__(
        self,
        kind: str,
        new_record: Callable[[str, int | None, str, Any, float], RecordT],
        check_lock: Callable[[str, Any], None],
        *,
        policy: Any,
        detect_deadlocks: bool,
        long_hold: float,
    ) -> None:
        check_policy(policy)
        self.kind = kind
        self.policy = policy
        self.checking = policy != "off"
        self.detect = bool(detect_deadlocks)
        self.long_hold = long_hold
        self._new_record = new_record
        self._check_lock = check_lock
        # Guards registration, the learned graph, the wait-for graph and the
        # reports. Never held while waiting for a lock.
        self.meta = threading.RLock()
        self.records: dict[str, RecordT] = {}
        self._orders: dict[int, RecordT] = {}
        self.plans: dict[tuple[str, ...], Plan[RecordT]] = {}
        self.reports: dict[tuple[str, ...], str] = {}
        self._graph = OrderGraph()
        self.waiting: set[Holder] = set()  # the holders waiting for a lock
        self.session: StoreSession | None = None

    # -- registration -------------------------------------------------------------

    def register(self, entries: list[Entry]) -> list[RecordT]:
        """Validate every entry, then register them all or none."""
        for name, order, description, lock in entries:
            check_entry(name, order, description)
            if lock is not None:
                self._check_lock(name, lock)
        with self.meta:
            names: set[str] = set()
            orders: dict[int, str] = {}
            for name, order, _, _ in entries:
                if name in self.records or name in names:
                    raise ValueError(f"a lock named {name!r} is already registered")
                names.add(name)
                if order is None:
                    continue
                clash = self._orders.get(order)
                clash_name = clash.name if clash is not None else orders.get(order)
                if clash_name is not None:
                    raise ValueError(
                        f"order {order} of lock {name!r} is already used by lock "
                        f"{clash_name!r}; every declared order must be unique"
                    )
                orders[order] = name
            records = [
                self._new_record(name, order, description, lock, self.long_hold)
                for name, order, description, lock in entries
            ]
            for record in records:
                self.records[record.name] = record
                if record.order is not None:
                    self._orders[record.order] = record
        return records

    def lookup(self, name: str) -> RecordT:
        """Return the record named ``name``.

        :raises TypeError: for a name that is not a str
        :raises KeyError: if no lock has that name (the message lists them)
        """
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
        if plan is not None:
            return plan
        if not names:
            raise ValueError("acquire() needs the name of at least one lock")
        records = {name: self.lookup(name) for name in names}
        ordered = tuple(sorted(records.values(), key=lambda r: r._sort_key))
        plan = Plan(ordered, learned=len(ordered) < 2 or not self.checking)
        if len(self.plans) >= _MAX_PLANS:
            self.plans.clear()
        self.plans[names] = plan
        return plan

    def single(self, record: RecordT) -> Plan[RecordT]:
        """Return the plan of one lock (for its managed lock)."""
        return Plan((record,), learned=True)

    def retire_all(self) -> None:
        """Unregister every lock and forget what was learned and reported.

        :raises RuntimeError: if any lock is held or awaited
        """
        with self.meta:
            busy = [r.name for r in self.records.values() if r.is_locked or r.waiters]
            if busy:
                raise RuntimeError(
                    "cannot reset the manager while locks are held or awaited: "
                    + ", ".join(map(repr, busy))
                )
            for record in self.records.values():
                record.retire()
            self.records.clear()
            self._orders.clear()
            self.plans.clear()
            self.reports.clear()
            self._graph.clear()

    # -- order checks -------------------------------------------------------------

    def prepare(self, record: RecordT, holder: Holder, site: Site) -> bool:
        """Check ``holder`` taking ``record``; return True if it re-entered it.

        :raises LockOrderError: for an order violation (policy ``"raise"``)
        :raises RuntimeError: if the manager was reset
        """
        if record._owner is holder:
            record.reenter()
            return True
        stack = holder.stack
        if stack and self.checking:
            order = record.order
            if order is not None and order < holder.ceiling():
                self._declared_violation(record, holder, site)
            top = stack[-1]
            if not self._graph.knows(top.name, record.name):
                self._learn(top, record, holder, site)
        if record._retired:
            raise retired_error(record)
        return False

    def _declared_violation(self, wanted: RecordT, holder: Holder, site: Site) -> None:
        declared = [r for r in holder.stack if r.order is not None]
        highest = max(declared, key=lambda r: r.order)  # type: ignore[arg-type, return-value]
        message = (
            f"lock order violation: {holder.describe()} asks for "
            f"{wanted.describe()} at {format_site(site)} while holding "
            f"{highest.describe()}, acquired at {format_site(highest._site)}; "
            "locks must be taken in ascending order"
        )
        cycle = (highest.name, wanted.name, highest.name)
        self._on_inversion(("order", highest.name, wanted.name), message, cycle)

    def _learn(
        self, before: LockRecord[Any], after: RecordT, holder: Holder, site: Site
    ) -> None:
        """Record "``after`` taken while holding ``before``"; check for a cycle."""
        edge = Edge(holder.describe(), before._site, site)
        with self.meta:
            path = self._graph.learn(
                before.name, after.name, edge, keep_cycle=self.policy == "warn"
            )
        if path is not None:
            self._inversion(before, after, holder, site, path)

    def _inversion(
        self, before: LockRecord[Any], after: RecordT, holder: Holder, site: Site,
        path: Path,
    ) -> None:  # fmt: skip
        steps = [
            f"{seen.holder} took {b!r} at {format_site(seen.after_site)} "
            f"while holding {a!r} (taken at {format_site(seen.before_site)})"
            for a, b, seen in path
        ]
        message = (
            f"potential deadlock: {holder.describe()} takes {after.name!r} at "
            f"{format_site(site)} while holding {before.name!r} (taken at "
            f"{format_site(before._site)}), but the opposite order was seen "
            f"before: {'; then '.join(steps)}. Two {self.kind}s doing both at "
            "the same time would deadlock"
        )
        cycle = (before.name, after.name, *(b for _, b, _ in path))
        self._on_inversion(("learned", *sorted(cycle[:-1])), message, cycle)

    def _on_inversion(
        self, key: tuple[str, ...], message: str, cycle: tuple[str, ...]
    ) -> None:
        first = self.report(key, message)
        if self.policy == "raise":
            raise LockOrderError(message, cycle)
        if first:
            logger.warning("%s", message)

    def report(self, key: tuple[str, ...], message: str) -> bool:
        """Keep ``message`` for detect_potential_deadlocks(); True if new."""
        with self.meta:
            if key in self.reports:
                return False
            if len(self.reports) >= _MAX_REPORTS:
                del self.reports[next(iter(self.reports))]
            self.reports[key] = message
            return True

    def _check_learned(self, plan: Plan[RecordT]) -> None:
        records = plan.records
        plan.learned = all(
            self._graph.knows(records[i - 1].name, records[i].name)
            for i in range(1, len(records))
        )

    # -- acquiring ----------------------------------------------------------------

    def take_ready(
        self, plan: Plan[RecordT], start: int, holder: Holder, site: Site, now: float
    ) -> int:
        """Take ``plan.records[start:]``, checked, up to the first that is not free.

        On an error, releases what this acquisition took (``records[:start]``
        included) before it raises.

        :return: the index of the first lock that needs a wait, or the size
        """
        records = plan.records
        index = start
        try:
            for index in range(start, plan.size):
                record = records[index]
                if self.prepare(record, holder, site):
                    continue
                if not record.try_local():
                    return index
                record.take(holder, now, site)
        except BaseException:
            self.release(records[index - 1 :: -1] if index else (), holder)
            raise
        if not plan.learned:
            self._check_learned(plan)
        return plan.size

    def acquire(
        self, plan: Plan[RecordT], start: int, holder: Holder, site: Site,
        timeout: float | None, blocking: bool, now: float,
    ) -> Steps[None]:  # fmt: skip
        """Take ``plan.records[start:]``, checked, waiting where needed.

        On an error or a cancellation, releases what this acquisition took
        (``records[:start]`` included) before it raises.
        """
        records = plan.records
        session = self.session
        deadline = math.inf if timeout is None else now + timeout
        index = start
        try:
            for index in range(start, plan.size):
                record = records[index]
                if self.prepare(record, holder, site):
                    continue
                waited = 0.0
                if not record.try_local():
                    waited = yield from self._wait_local(
                        record, holder, deadline, timeout, blocking, site
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
            self._check_learned(plan)

    def _wait_local(
        self, record: RecordT, holder: Holder, deadline: float,
        timeout: float | None, blocking: bool, site: Site,
    ) -> Steps[float]:  # fmt: skip
        """Wait for ``record``'s local lock until the deadline; return the wait."""
        if not blocking:
            raise self.unavailable(record, timeout, blocking=False)
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
            if self.detect and site is not None and record._owner is not None:
                path = wait_cycle(holder, record)
                if path is not None:
                    raise self._deadlock_error(holder, path, site)
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

        :raises RuntimeError: after releasing the others, for each record
            ``holder`` does not hold (left untouched), naming its holder
        """
        foreign = release_levels(records, holder, monotonic())
        if foreign:
            raise foreign_release_error(foreign, holder.describe())

    def release_shared(
        self, records: Sequence[RecordT], holder: Holder, rolling_back: bool = False
    ) -> Steps[None]:
        """Release one level of each of ``records``, leases included.

        :raises LockLostError: after releasing everything, if a lease was lost
            (not while ``rolling_back``: the first error wins)
        :raises RuntimeError: for a record ``holder`` does not hold
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
            raise foreign_release_error(foreign, holder.describe())
        if lost and not rolling_back:
            raise lost_error(lost)

    def roll_back(self, records: Sequence[RecordT], holder: Holder) -> Steps[None]:
        """Release what a failed acquisition took (``records`` in release order)."""
        if self.session is None:
            self.release(records, holder)
        else:
            yield from self.release_shared(records, holder, rolling_back=True)

    # -- errors -------------------------------------------------------------------

    def _deadlock_error(
        self, holder: Holder, path: list[tuple[Any, Holder]], site: Site
    ) -> DeadlockError:
        text = describe_cycle(holder, path)
        message = (
            f"deadlock: {text}. {holder.describe()} asked at {format_site(site)}; "
            "waiting would never end, so it does not wait"
        )
        names = tuple(lock.name for lock, _ in path)
        self.report(("deadlock", *sorted(names)), f"deadlock averted: {text}")
        return DeadlockError(
            message,
            (*names, names[0]),
            tuple(owner.describe() for _, owner in path),
        )

    def unavailable(
        self, record: RecordT, timeout: float | None, blocking: bool
    ) -> LockTimeoutError:
        """Return the timeout error for ``record``'s local lock, naming its holder."""
        owner = record._owner
        statistics = getattr(record._raw, "statistics", None)  # cc.primitives.Lock
        handed_to = (
            None if owner is not None or statistics is None else statistics().owner
        )
        if handed_to is not None:
            # Released and handed straight to a waiting task that has not
            # run yet: that task is the holder.
            holder: str | None = f"task {handed_to!r}"
            held = f"by {holder}, to which it was just handed"
        elif owner is None:
            holder = None
            held = (
                "by no holder the manager knows of (it may be used outside "
                "the manager, or was released just now)"
            )
        else:
            holder = owner.describe()
            held = (
                f"by {holder} for {monotonic() - record._acquired_at:.3f} s, "
                f"acquired at {format_site(record._site)}"
            )
        return self.timeout_error(record, timeout, blocking, holder, held)

    def remote_unavailable(
        self, record: RecordT, holder: RemoteHolder | None, queued: bool,
        timeout: float | None, blocking: bool,
    ) -> LockTimeoutError:  # fmt: skip
        """Return the timeout error for a lock another process holds (or is due)."""
        name, held = remote_held(holder, queued)
        return self.timeout_error(record, timeout, blocking, name, held)

    def timeout_error(
        self, record: RecordT, timeout: float | None, blocking: bool,
        holder: str | None, held: str,
    ) -> LockTimeoutError:  # fmt: skip
        """Count a timeout of ``record`` and return its error."""
        if blocking:
            message = (
                f"could not acquire {record.describe()} within {timeout} s: "
                f"it is held {held}"
            )
        else:
            message = (
                f"{record.describe()} is not available and blocking=False: "
                f"it is held {held}"
            )
        with self.meta:
            record.timed_out()
        return LockTimeoutError(message, record.name, holder)


def wait_cycle(holder: Holder, wanted: LockRecord[Any]) -> list[Any] | None:
    """Return the wait-for cycle that ``holder`` waiting for ``wanted`` closes."""
    owner = wanted._owner
    assert owner is not None
    return cycle_from(holder, (wanted, owner), wait_step)
