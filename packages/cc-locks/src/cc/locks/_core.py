"""What the thread and the task lock managers share.

Registration and its validation, the declared and learned order checks, the
wait-for graph search, the reports and the status views do not depend on
whether the holders are threads or tasks; only taking and waiting for a lock
does, and that lives in :mod:`cc.locks._thread` and :mod:`cc.locks._async`.

The learned order graph follows the Linux kernel's lockdep: whenever a lock
is taken while another is held, the edge "held -> taken" is recorded with the
place it happened, and a new edge that closes a cycle is a potential deadlock
even if no thread ever blocked. Only the most recently taken lock of the
holder is linked to the new one; the chain of such edges makes every other
held lock reach it too.
"""

from __future__ import annotations

import logging
import math
import numbers
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from time import monotonic
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, Union

from anyio import WouldBlock

from cc.locks._errors import DeadlockError, LockOrderError, LockTimeoutError
from cc.locks._records import (
    Edge,
    Holder,
    LockRecord,
    LockUsageStatistics,
    Plan,
    Site,
    format_site,
)

if TYPE_CHECKING:
    from cc.locks._redis import RemoteHolder

__all__ = [
    "LockHierarchy",
    "ManagerCore",
    "Policy",
    "check_blocking",
    "check_name",
    "check_timeout",
]

logger = logging.getLogger("cc.locks")

#: What a manager does about an acquisition order that can deadlock.
Policy = Literal["raise", "warn", "off"]
_POLICIES: tuple[str, ...] = ("raise", "warn", "off")

#: A declared lock hierarchy, as :meth:`register_locks` accepts it.
LockHierarchy = Union[Mapping[str, Any], Iterable[Any]]  # noqa: UP007 (runtime alias on 3.10)

# Reports kept for detect_potential_deadlocks(); older ones are dropped.
_MAX_REPORTS = 256
# acquire() caches the sorted plan of each distinct tuple of names.
_MAX_PLANS = 4096

RecordT = TypeVar("RecordT", bound=LockRecord[Any])


class _RetiredLock:
    """Stands in for the lock of a record that :meth:`reset` retired."""

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return False

    def acquire_nowait(self) -> None:
        raise WouldBlock  # as a cc.primitives.Lock that is taken


_RETIRED_LOCK = _RetiredLock()


def retired_error(record: LockRecord[Any]) -> RuntimeError:
    """Return the error for using a lock after its manager was reset."""
    return RuntimeError(
        f"lock {record._name!r} is no longer registered (its manager was reset)"
    )


Entry = tuple[str, Union[int, None], str, Any]  # noqa: UP007


def check_timeout(timeout: Any, forever: str = "None") -> float:
    """Return ``timeout`` as a float number of seconds >= 0; raise otherwise.

    The caller handles its own "wait as long as it takes" value (``forever``,
    named in the messages) before calling this. A number too large for a
    float (``10**400``) is ``math.inf``: it also means as long as it takes.

    :raises TypeError: for anything but a real number (a bool is not one)
    :raises ValueError: for a negative number or NaN
    """
    return check_seconds(timeout, "timeout", forever)


def check_seconds(value: Any, name: str, forever: str = "None") -> float:
    """Return ``value`` (a number of seconds >= 0) as a float; inf if huge.

    :raises TypeError: for anything but a real number (a bool is not one)
    :raises ValueError: for a negative number or NaN
    """
    if value.__class__ is not float and (
        isinstance(value, bool) or not isinstance(value, numbers.Real)
    ):
        raise TypeError(
            f"{name} must be a number of seconds or {forever}, "
            f"not {type(value).__name__} ({value!r})"
        )
    if value < 0 or value != value:  # negative, or NaN
        raise ValueError(
            f"{name} must be a number of seconds >= 0 or {forever}, not {value!r}"
        )
    try:
        return float(value)
    except OverflowError:  # an int (or Fraction) beyond any float: forever
        return math.inf


def check_blocking(blocking: object) -> None:
    """Raise :class:`TypeError` unless ``blocking`` is ``True`` or ``False``."""
    if blocking is not True and blocking is not False:
        raise TypeError(
            f"blocking must be a bool, not {type(blocking).__name__} ({blocking!r})"
        )


def check_name(name: object) -> None:
    """Raise :class:`TypeError` unless ``name`` can be a lock's name (a str)."""
    if not isinstance(name, str):
        raise TypeError(
            f"a lock name must be a str, not {type(name).__name__} ({name!r})"
        )


def _validate_entry(name: object, order: object, description: object) -> None:
    if not isinstance(name, str):
        raise TypeError(f"a lock name must be a str, not {type(name).__name__}")
    if not name:
        raise ValueError("a lock name must not be empty")
    if order is not None and (isinstance(order, bool) or not isinstance(order, int)):
        raise TypeError(
            f"the order of lock {name!r} must be an int or None, "
            f"not {type(order).__name__}"
        )
    if not isinstance(description, str):
        raise TypeError(
            f"the description of lock {name!r} must be a str, "
            f"not {type(description).__name__}"
        )


def _entry_from_value(name: object, value: object) -> Entry:
    """One entry of a mapping hierarchy: ``name: order``, ``(order, desc)``..."""
    if value is None or isinstance(value, int):
        order, description = value, ""
    elif isinstance(value, tuple) and 1 <= len(value) <= 2:
        order = value[0]
        description = value[1] if len(value) == 2 else ""
    elif isinstance(value, Mapping):
        unknown = set(value) - {"order", "description"}
        if unknown or "order" not in value:
            raise ValueError(
                f"the entry of lock {name!r} must have the key 'order' and "
                f"optionally 'description'; got keys {sorted(map(str, value))}"
            )
        order, description = value["order"], value.get("description", "")
    else:
        raise TypeError(
            f"the entry of lock {name!r} must be an order (int or None), an "
            f"(order, description) tuple or a mapping, not {type(value).__name__}"
        )
    _validate_entry(name, order, description)
    return (name, order, description, None)  # type: ignore[return-value]


def _entry_from_item(item: object) -> Entry:
    """One entry of a sequence hierarchy: ``(name, order[, desc])`` or a dict."""
    if isinstance(item, tuple) and 2 <= len(item) <= 3:
        name, order = item[0], item[1]
        description = item[2] if len(item) == 3 else ""
    elif isinstance(item, Mapping):
        unknown = set(item) - {"name", "order", "description"}
        if unknown or "name" not in item or "order" not in item:
            raise ValueError(
                "each lock of a hierarchy list must have the keys 'name' and "
                f"'order' and optionally 'description'; got keys "
                f"{sorted(map(str, item))}"
            )
        name, order = item["name"], item["order"]
        description = item.get("description", "")
    else:
        raise TypeError(
            "each lock of a hierarchy list must be a (name, order) or "
            "(name, order, description) tuple or a mapping, "
            f"not {type(item).__name__}"
        )
    _validate_entry(name, order, description)
    return (name, order, description, None)


def parse_hierarchy(hierarchy: LockHierarchy) -> list[Entry]:
    """Turn any accepted hierarchy form into ``(name, order, desc, None)``."""
    if isinstance(hierarchy, Mapping):
        return [_entry_from_value(name, value) for name, value in hierarchy.items()]
    if isinstance(hierarchy, (str, bytes)) or not isinstance(hierarchy, Iterable):
        raise TypeError(
            "a lock hierarchy must be a mapping of names to orders or a list "
            f"of (name, order[, description]) entries, not {type(hierarchy).__name__}"
        )
    return [_entry_from_item(item) for item in hierarchy]


def find_wait_cycle(
    start: Holder, wanted: LockRecord[Any]
) -> list[tuple[LockRecord[Any], Holder]] | None:
    """Follow "waits for lock held by" from ``start`` asking for ``wanted``.

    :return: the ``(lock, holder)`` steps of a cycle that comes back to
        ``start``, or ``None`` if the chain ends or loops elsewhere
    """
    path: list[tuple[LockRecord[Any], Holder]] = []
    seen: set[Holder] = set()
    lock: LockRecord[Any] | None = wanted
    while lock is not None:
        owner = lock._owner
        if owner is None:
            return None
        path.append((lock, owner))
        if owner is start:
            return path
        if owner in seen:
            return None
        seen.add(owner)
        lock = owner.waiting_for
    return None


def foreign_release_error(
    records: Sequence[LockRecord[Any]], caller: str
) -> RuntimeError:
    """Return the error for releasing ``records`` that ``caller`` does not hold."""
    parts = []
    for record in records:
        owner = record.owner
        held = f"it is held by {owner}" if owner else "it is not held"
        parts.append(f"cannot release lock {record._name!r} from {caller}: {held}")
    return RuntimeError("; ".join(parts))


def _describe_cycle(start: Holder, path: list[tuple[LockRecord[Any], Holder]]) -> str:
    parts = [f"{start.describe()} waits for {path[0][0]._name!r}"]
    for index, (lock, owner) in enumerate(path):
        held = f"held by {owner.describe()} (acquired at {format_site(lock._site)})"
        if index + 1 < len(path):
            parts.append(f"{held}, which waits for {path[index + 1][0]._name!r}")
        else:
            parts.append(held)
    return ", ".join(parts)


class ManagedLockBase(Generic[RecordT]):
    """What the thread and task flavours of a managed lock share.

    A managed lock is a handle on one registered lock that goes through its
    manager's checks; the subclasses add the acquire and release methods of
    their world (threads or tasks).
    """

    __slots__ = ("_manager", "_plan", "_record")

    def __init__(self, manager: Any, record: RecordT) -> None:
        self._manager = manager
        self._record = record
        self._plan: Plan[RecordT] = Plan((record,), checking=False)

    @property
    def name(self) -> str:
        """The name the lock is registered under."""
        return self._record._name

    @property
    def info(self) -> RecordT:
        """The lock's registration record (a ``LockInfo`` or ``AsyncLockInfo``)."""
        return self._record

    def __repr__(self) -> str:
        record = self._record
        state = "unlocked" if record._owner is None else f"held by {record.owner}"
        return f"<{type(self).__name__} {record._name!r} {state}>"

    def _check_registered(self) -> None:
        if self._record._retired:
            raise retired_error(self._record)


class ManagerCore(Generic[RecordT]):
    """Registration, checks and reports shared by both lock managers."""

    _kind = "thread"  # "thread" or "task", for messages

    def __init__(
        self,
        *,
        policy: Policy,
        detect_deadlocks: bool,
        long_hold_threshold: float | None,
    ) -> None:
        if policy not in _POLICIES:
            raise ValueError(
                f"policy must be one of {', '.join(map(repr, _POLICIES))}, "
                f"not {policy!r}"
            )
        long_hold = math.inf
        if long_hold_threshold is not None:
            try:
                long_hold = check_seconds(long_hold_threshold, "long_hold_threshold")
            except TypeError as exc:
                raise ValueError(str(exc)) from None
        self._policy: Policy = policy
        self._checking = policy != "off"
        self._detect = bool(detect_deadlocks)
        self._long_hold = long_hold
        # Guards registration, the learned graph, the wait-for graph and the
        # reports. Never held while blocking on a managed lock.
        self._meta = threading.RLock()
        self._records: dict[str, RecordT] = {}
        self._orders: dict[int, RecordT] = {}
        self._plans: dict[tuple[str, ...], Plan[RecordT]] = {}
        self._reports: dict[tuple[str, ...], str] = {}

    # -- configuration -----------------------------------------------------

    @property
    def policy(self) -> Policy:
        """What happens on an order violation: ``"raise"``, ``"warn"``, ``"off"``."""
        return self._policy

    @property
    def detect_deadlocks(self) -> bool:
        """Whether a wait that would close a wait-for cycle raises instead."""
        return self._detect

    @property
    def long_hold_threshold(self) -> float | None:
        """Hold time in seconds past which a release logs a warning."""
        return None if self._long_hold == math.inf else self._long_hold

    # -- registration ------------------------------------------------------

    def _new_record(
        self, name: str, order: int | None, description: str, lock: Any
    ) -> RecordT:
        raise NotImplementedError

    def _check_lock_argument(self, name: str, lock: Any) -> None:
        raise NotImplementedError

    def _register_entries(self, entries: list[Entry]) -> list[RecordT]:
        """Validate every entry, then register them all or none."""
        for name, order, description, lock in entries:
            _validate_entry(name, order, description)
            if lock is not None:
                self._check_lock_argument(name, lock)
        with self._meta:
            names: dict[str, int | None] = {}
            orders: dict[int, str] = {}
            for name, order, _, _ in entries:
                if name in self._records or name in names:
                    raise ValueError(f"a lock named {name!r} is already registered")
                names[name] = order
                if order is None:
                    continue
                clash = self._orders.get(order)
                clash_name = clash._name if clash is not None else orders.get(order)
                if clash_name is not None:
                    raise ValueError(
                        f"order {order} of lock {name!r} is already used by lock "
                        f"{clash_name!r}; every declared order must be unique"
                    )
                orders[order] = name
            records = [self._new_record(*entry) for entry in entries]
            for record in records:
                self._records[record._name] = record
                if record._order is not None:
                    self._orders[record._order] = record
        return records

    def _lookup(self, name: str) -> RecordT:
        check_name(name)
        try:
            return self._records[name]
        except KeyError:
            known = ", ".join(map(repr, self._records)) or "none"
            raise KeyError(
                f"no lock named {name!r} is registered (registered: {known})"
            ) from None

    def _plan(self, names: tuple[str, ...]) -> Plan[RecordT]:
        """Build (and cache) the records to take for ``names``, in order."""
        if not names:
            raise ValueError("acquire() needs the name of at least one lock")
        records = {name: self._lookup(name) for name in names}
        plan = Plan(
            tuple(sorted(records.values(), key=lambda r: r._sort_key)),
            checking=self._checking,
        )
        if len(self._plans) >= _MAX_PLANS:
            self._plans.clear()
        self._plans[names] = plan
        return plan

    def _retire_all(self) -> None:
        with self._meta:
            busy = [
                r._name
                for r in self._records.values()
                if r._owner is not None or r._waiting
            ]
            if busy:
                raise RuntimeError(
                    "cannot reset the manager while locks are held or awaited: "
                    + ", ".join(map(repr, busy))
                )
            for record in self._records.values():
                record._retired = True
                # Context managers made before the reset may still be used:
                # a lock that can never be taken sends them off the fast
                # path, to the check that refuses retired records.
                record._raw = _RETIRED_LOCK
            self._records.clear()
            self._orders.clear()
            self._plans.clear()
            self._reports.clear()

    # -- order checks --------------------------------------------------------

    def _report(self, key: tuple[str, ...], message: str) -> bool:
        """Keep ``message`` for detect_potential_deadlocks(); True if new."""
        with self._meta:
            if key in self._reports:
                return False
            if len(self._reports) >= _MAX_REPORTS:
                del self._reports[next(iter(self._reports))]
            self._reports[key] = message
            return True

    def _declared_violation(self, wanted: RecordT, holder: Holder, site: Site) -> None:
        """``holder`` holds a lock of a higher declared order than ``wanted``."""
        highest = max(
            (r for r in holder.stack if r._order is not None),
            key=lambda r: r._order,  # type: ignore[arg-type, return-value]
        )
        message = (
            f"lock order violation: {holder.describe()} asks for "
            f"{wanted.describe()} at {format_site(site)} while holding "
            f"{highest.describe()}, acquired at {format_site(highest._site)}; "
            "locks must be taken in ascending order"
        )
        self._on_inversion(
            ("order", highest._name, wanted._name),
            message,
            (highest._name, wanted._name, highest._name),
        )

    def _learn(
        self, before: LockRecord[Any], after: RecordT, holder: Holder, site: Site
    ) -> None:
        """Record "``after`` taken while holding ``before``"; check for a cycle."""
        with self._meta:
            path = self._order_path(after, before)
            edge = Edge(holder.describe(), before._site, site)
            if path is None or self._policy == "warn":
                before._after[after] = edge
            if path is None:
                return
        steps = [
            f"{seen.holder} took {b._name!r} at {format_site(seen.after_site)} "
            f"while holding {a._name!r} (taken at {format_site(seen.before_site)})"
            for a, b, seen in path
        ]
        message = (
            f"potential deadlock: {holder.describe()} takes {after._name!r} at "
            f"{format_site(site)} while holding {before._name!r} (taken at "
            f"{format_site(before._site)}), but the opposite order was seen "
            f"before: {'; then '.join(steps)}. Two {self._kind}s doing both at "
            "the same time would deadlock"
        )
        cycle = (before._name, after._name, *(b._name for _, b, _ in path))
        self._on_inversion(("learned", *sorted(cycle[:-1])), message, cycle)

    @staticmethod
    def _order_path(
        source: LockRecord[Any], target: LockRecord[Any]
    ) -> list[tuple[LockRecord[Any], LockRecord[Any], Edge]] | None:
        """Return the shortest chain of learned edges from ``source`` to ``target``."""
        came_from: dict[LockRecord[Any], tuple[LockRecord[Any], Edge] | None] = {
            source: None
        }
        queue = deque([source])
        while queue:
            node = queue.popleft()
            for nxt, edge in node._after.items():
                if nxt in came_from:
                    continue
                came_from[nxt] = (node, edge)
                if nxt is target:
                    path = []
                    step: LockRecord[Any] = nxt
                    while (link := came_from[step]) is not None:
                        path.append((link[0], step, link[1]))
                        step = link[0]
                    path.reverse()
                    return path
                queue.append(nxt)
        return None

    def _on_inversion(
        self, key: tuple[str, ...], message: str, cycle: tuple[str, ...]
    ) -> None:
        first = self._report(key, message)
        if self._policy == "raise":
            raise LockOrderError(message, cycle)
        if first:
            logger.warning("%s", message)

    # -- waiting ---------------------------------------------------------------

    def _deadlock_error(
        self,
        holder: Holder,
        path: list[tuple[LockRecord[Any], Holder]],
        site: Site,
    ) -> DeadlockError:
        text = _describe_cycle(holder, path)
        message = (
            f"deadlock: {text}. {holder.describe()} asked at {format_site(site)}; "
            "waiting would never end, so it does not wait"
        )
        names = tuple(lock._name for lock, _ in path)
        self._report(
            ("deadlock", *sorted(names)),
            f"deadlock averted: {text}",
        )
        return DeadlockError(
            message,
            (*names, names[0]),
            tuple(owner.describe() for _, owner in path),
        )

    def _unavailable(
        self, record: RecordT, timeout: float | None, blocking: bool
    ) -> LockTimeoutError:
        owner = record._owner
        handed_to = None if owner is not None else self._handed_to(record)
        if handed_to is not None:
            # Released and handed straight to a waiting task that has not
            # run yet: that task is the holder.
            holder = handed_to
            held = f"by {holder}, to which it was just handed"
        elif owner is None:
            holder = None
            held = (
                "by no holder the manager knows of (it may be used outside "
                "the manager, or was released just now)"
            )
        else:
            holder = owner.describe()
            since = monotonic() - record._acquired_at
            held = (
                f"by {holder} for {since:.3f} s, acquired at "
                f"{format_site(record._site)}"
            )
        return self._timeout_error(record, timeout, blocking, holder, held)

    def _handed_to(self, record: RecordT) -> str | None:
        """Name the task a released lock was handed to, if it has not run yet."""
        statistics = getattr(record._raw, "statistics", None)
        if statistics is None:
            return None  # a threading lock: no hand-off
        owner = statistics().owner  # an anyio.TaskInfo
        return None if owner is None else f"task {owner.name!r}"

    def _remote_unavailable(
        self,
        record: RecordT,
        remote: RemoteHolder | None,
        timeout: float | None,
        blocking: bool,
        queued: bool = False,
    ) -> LockTimeoutError:
        """Return the error for a lock that another process holds on the backend.

        ``queued``: the lock is free, but a process that queued for it
        earlier is due to take it.
        """
        if remote is None:
            holder = None
            held = (
                "for a process that queued for it earlier"
                if queued
                else "by another process (whose lease ended just now)"
            )
        else:
            holder = remote.describe()
            held = f"by {holder}"
            if remote.since is not None:
                held += f" for {max(0.0, time.time() - remote.since):.3f} s"
            if remote.site is not None:
                held += f", acquired at {remote.site}"
        return self._timeout_error(record, timeout, blocking, holder, held)

    def _timeout_error(
        self,
        record: RecordT,
        timeout: float | None,
        blocking: bool,
        holder: str | None,
        held: str,
    ) -> LockTimeoutError:
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
        with self._meta:
            record._timeouts += 1
        return LockTimeoutError(message, record._name, holder)

    # -- releasing -----------------------------------------------------------

    def _release_levels(self, records: Sequence[RecordT], holder: Holder) -> None:
        """Release one level of each of ``records`` that ``holder`` holds, last first.

        :raises RuntimeError: after releasing the others, naming the holder
            of each record that ``holder`` does not hold (left untouched)
        """
        now = monotonic()
        stack = holder.stack
        foreign: list[RecordT] = []
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
            record._raw.release()
        if foreign:
            raise foreign_release_error(foreign, holder.describe())

    def _note_hold(self, record: RecordT, held: float) -> None:
        """Record a new longest hold and warn about a long one."""
        if held > record._hold_max:
            record._hold_max = held
        if held > self._long_hold:
            self._warn_long_hold(record, held)
        record._hold_floor = min(record._hold_max, self._long_hold)

    def _warn_long_hold(self, record: RecordT, held: float) -> None:
        logger.warning(
            "lock %r was held for %.3f s (threshold %.3f s) by %s; acquired at %s",
            record._name,
            held,
            self._long_hold,
            record.owner,
            format_site(record._site),
        )

    # -- views -----------------------------------------------------------------

    def _status(self) -> dict[str, dict[str, Any]]:
        with self._meta:
            records = list(self._records.values())
            waiting = {r._name: [h.describe() for h in r._waiting] for r in records}
        status: dict[str, dict[str, Any]] = {}
        for record in records:
            status[record._name] = {
                "order": record._order,
                "description": record._description,
                "owner": record.owner,
                "acquired_at": record.acquired_at,
                "is_locked": record.is_locked,
                "depth": record.depth,
                "waiters": len(waiting[record._name]),
                "waiting": waiting[record._name],
                "hold_time": record.hold_time,
                "acquisition_site": record.acquisition_site,
            }
        return status

    @staticmethod
    def _merge_remote(
        status: dict[str, dict[str, Any]], holders: list[RemoteHolder | None]
    ) -> None:
        """Add what the backend knows to each entry of :meth:`_status`."""
        for entry, remote in zip(status.values(), holders, strict=True):
            held_here = entry["is_locked"]
            entry["held_here"] = held_here
            if remote is None:
                entry.update(
                    host=None, pid=None, fencing_token=None, lease_expires_in=None
                )
                continue
            entry.update(
                is_locked=True,
                owner=remote.describe(),
                acquired_at=remote.since,
                host=remote.host,
                pid=remote.pid,
                fencing_token=remote.fencing_token,
                lease_expires_in=remote.expires_in,
            )
            if not held_here:
                entry.update(
                    depth=None,
                    hold_time=(
                        None
                        if remote.since is None
                        else max(0.0, time.time() - remote.since)
                    ),
                    acquisition_site=remote.site,
                )

    def _statistics(self) -> dict[str, LockUsageStatistics]:
        return {name: r.statistics() for name, r in list(self._records.items())}

    def _potential_deadlocks(self) -> list[str]:
        found: list[str] = []
        now = monotonic()
        with self._meta:
            records = list(self._records.values())
            for record in records:
                owner = record._owner
                held = now - record._acquired_at
                if owner is not None and held > self._long_hold:
                    found.append(
                        f"long hold: {record.describe()} has been held by "
                        f"{owner.describe()} for {held:.3f} s (threshold "
                        f"{self._long_hold:g} s), acquired at "
                        f"{format_site(record._site)}"
                    )
            cycles: set[frozenset[int]] = set()
            for record in records:
                for waiter in record._waiting:
                    path = find_wait_cycle(waiter, record)
                    if path is None:
                        continue
                    members = frozenset(id(owner) for _, owner in path)
                    if members not in cycles:
                        cycles.add(members)
                        found.append(f"live deadlock: {_describe_cycle(waiter, path)}")
            found.extend(self._reports.values())
        return found
