"""What the managers know about each lock and each thread or task using them.

Only this module changes a record's state: the record's methods, and
:func:`take_free` / :func:`release_levels` for a whole set on the hot path.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import CodeType
from typing import Any, Generic, TypeVar

from anyio import WouldBlock

from cc.primitives import task_name

__all__ = [
    "Holder", "LockRecord", "LockUsageStatistics", "Plan", "Site", "caller_site",
    "foreign_release_error", "format_site", "release_levels", "take_free",
]  # fmt: skip

logger = logging.getLogger("cc.locks")

# Where a lock was acquired: code object and instruction offset (the line is
# worked out only when a report needs it).
Site = tuple[CodeType, int]


def caller_site(depth: int) -> Site:
    """Return the :data:`Site` of the frame ``depth`` levels above the caller."""
    frame = sys._getframe(depth + 1)
    return (frame.f_code, frame.f_lasti)


def format_site(site: Site | str | None) -> str:
    """Render a :data:`Site` as ``file:line in function`` (a str is one already)."""
    if site is None:
        return "an unknown place"
    if isinstance(site, str):
        return site
    code, offset = site
    line = next(
        (n for start, end, n in code.co_lines() if start <= offset < end and n),
        code.co_firstlineno,
    )
    return f"{code.co_filename}:{line} in {code.co_name}"


@dataclass(frozen=True)
class LockUsageStatistics:
    """Contention figures of one managed lock since it was registered.

    Times are in seconds. A *contended* acquisition is one that had to wait.

    :ivar acquisitions: successful first-level acquisitions (not re-entries)
    :ivar contended_acquisitions: those of them that had to wait
    :ivar timeouts: waits that ended at the deadline, or were refused at once
        with ``blocking=False``
    :ivar total_wait_time: time spent waiting by contended acquisitions
    :ivar max_wait_time: the longest of those waits
    :ivar max_hold_time: the longest hold (first acquisition to last release)
    """

    acquisitions: int
    contended_acquisitions: int
    timeouts: int
    total_wait_time: float
    max_wait_time: float
    max_hold_time: float


class Holder:
    """A thread or task as the managers see it: what it holds and awaits.

    ``stack``: the locks held, in the order taken; ``key``: ``None`` while a
    task's holder is spare.
    """

    __slots__ = ("key", "stack", "thread", "waiting_for")

    def __init__(self, key: object, thread: bool) -> None:
        self.key, self.thread = key, thread
        self.stack: list[LockRecord[Any]] = []
        self.waiting_for: LockRecord[Any] | None = None

    def describe(self) -> str:
        """Return e.g. ``thread 'worker-1'`` or ``task 'fetch'``."""
        if self.thread:
            thread: Any = self.key
            return f"thread {thread.name!r}{'' if thread.is_alive() else ' (ended)'}"
        return f"task {task_name(self.key)!r}"

    def ceiling(self) -> float:
        """Return the highest declared order held, or ``-inf``."""
        highest = -math.inf  # a plain loop: no list, no extra frame
        for record in self.stack:
            order = record._order
            if order is not None and order > highest:
                highest = order
        return highest


def thread_holder() -> Holder:
    """Return a new holder for the calling thread."""
    return Holder(threading.current_thread(), thread=True)


class _Retired:
    """Stands in for the local lock of a retired record: never free."""

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return False

    def acquire_nowait(self) -> bool:
        return False


_RETIRED = _Retired()


LockT = TypeVar("LockT")


class LockRecord(Generic[LockT]):
    """A registered lock: registration, local lock, live state, statistics.

    Everything public is read-only and may be read from any thread (a
    snapshot that may be a moment old).
    """

    _threaded: bool  # a thread's local lock (acquire(False)) or a task's

    __slots__ = (
        "__weakref__", "_acquired_at", "_acquisitions", "_contended",
        "_description", "_handle", "_hold_floor", "_hold_max", "_long_hold",
        "_name", "_order", "_owner", "_raw", "_reentries",
        "_retired", "_site", "_timeouts", "_wait_max",
        "_wait_total", "_waiting",
    )  # fmt: skip

    def __init__(
        self, name: str, order: int | None, description: str, raw: Any,
        long_hold: float,
    ) -> None:  # fmt: skip
        self._name, self._order, self._description = name, order, description
        self._raw = raw  # the local lock
        self._handle: LockT  # set by set_handle()
        self._retired = False
        self._long_hold = long_hold
        self._owner: Holder | None = None
        self._reentries = 0  # depth - 1 while held
        self._acquired_at = 0.0  # monotonic() of the first-level acquisition
        self._site: Site | None = None
        self._waiting: list[Holder] | tuple[()] = ()  # a list once someone waits
        self._acquisitions = self._contended = self._timeouts = 0
        self._wait_total = self._wait_max = self._hold_max = 0.0
        # min(_hold_max, _long_hold): a shorter hold has nothing to record.
        self._hold_floor = 0.0

    def set_handle(self, handle: LockT) -> None:
        """Attach the managed lock that stands for this record."""
        self._handle = handle

    def try_local(self) -> bool:
        """Take the local lock if it is free (or the caller's); say whether."""
        if self._threaded:
            return bool(self._raw.acquire(False))
        try:
            return self._raw.acquire_nowait() is not False
        except WouldBlock:  # how anyio's locks say "not free"
            return False

    def release_local(self) -> None:
        """Let the local lock go (after a release, or a failed take)."""
        self._raw.release()

    def take(self, holder: Holder, now: float, site: Site) -> None:
        """Record that ``holder`` now holds the lock (its local lock is taken)."""
        self._owner, self._acquired_at, self._site = holder, now, site
        self._acquisitions += 1
        holder.stack.append(self)

    def reenter(self) -> None:
        """Record one more level of the holder's hold."""
        self._reentries += 1

    def _note_hold(self, held: float) -> None:
        self._hold_max = max(self._hold_max, held)
        if held > self._long_hold:
            logger.warning(
                "lock %r was held for %.3f s (threshold %.3f s) by %s; acquired at %s",
                self._name, held, self._long_hold, self.owner, format_site(self._site),
            )  # fmt: skip
        self._hold_floor = min(self._hold_max, self._long_hold)

    def waited(self, seconds: float) -> None:
        """Count a contended acquisition that waited ``seconds``."""
        self._contended += 1
        self._wait_total += seconds
        self._wait_max = max(self._wait_max, seconds)

    def timed_out(self) -> None:
        """Count a wait that ended at the deadline (or was refused at once)."""
        self._timeouts += 1

    def add_waiter(self, holder: Holder) -> None:
        """Note that ``holder`` waits for this lock."""
        if isinstance(self._waiting, tuple):
            self._waiting = []
        self._waiting.append(holder)

    def remove_waiter(self, holder: Holder) -> None:
        """Note that ``holder`` no longer waits for this lock."""
        self._waiting.remove(holder)  # type: ignore[union-attr]

    def retire(self) -> None:
        """Refuse every later use (the manager was reset)."""
        self._retired = True
        # Handles and contexts made before may still be used: a lock that is
        # never free sends them off the fast path, to the check that refuses.
        self._raw = _RETIRED

    @property
    def name(self) -> str:
        """The lock's unique name."""
        return self._name

    @property
    def order(self) -> int | None:
        """The declared order, or ``None`` for a lock whose order is learned."""
        return self._order

    @property
    def description(self) -> str:
        """The human-readable description given at registration."""
        return self._description

    @property
    def lock(self) -> LockT:
        """The managed lock (the object :meth:`get_lock` returns)."""
        return self._handle

    @property
    def is_locked(self) -> bool:
        """Whether a thread or task holds the lock through the manager."""
        return self._owner is not None

    @property
    def owner(self) -> str | None:
        """A description of the holder (``"thread 'x'"``), or ``None``."""
        owner = self._owner
        return None if owner is None else owner.describe()

    @property
    def depth(self) -> int:
        """How many times the holder has acquired the lock (0 when free)."""
        return self._reentries + 1 if self._owner is not None else 0

    @property
    def acquired_at(self) -> float | None:
        """When the holder acquired it, as a :func:`time.time` timestamp."""
        if self._owner is None:
            return None
        return time.time() - (time.monotonic() - self._acquired_at)

    @property
    def hold_time(self) -> float | None:
        """For how many seconds the current holder has held it, or ``None``."""
        return None if self._owner is None else time.monotonic() - self._acquired_at

    @property
    def acquisition_site(self) -> str | None:
        """Where the current holder acquired it (``file:line in function``)."""
        return None if self._owner is None else format_site(self._site)

    @property
    def waiters(self) -> int:
        """How many threads or tasks are waiting to acquire it."""
        return len(self._waiting)

    def statistics(self) -> LockUsageStatistics:
        """Return a frozen snapshot of the lock's contention statistics."""
        return LockUsageStatistics(
            self._acquisitions, self._contended, self._timeouts,
            self._wait_total, self._wait_max, self._hold_max,
        )  # fmt: skip

    def sort_key(self) -> tuple[int, int, str]:
        """Where the lock comes in a plan: declared orders first, then by name."""
        if self._order is None:
            return (1, 0, self._name)
        return (0, self._order, "")

    def describe(self) -> str:
        """Return ``'name'`` with its order, for messages."""
        if self._order is None:
            return f"{self._name!r} (learned order)"
        return f"{self._name!r} (order {self._order})"

    def __repr__(self) -> str:
        state = "unlocked" if self._owner is None else f"held by {self.owner}"
        return f"<{type(self).__name__} {self._name!r} order={self._order!r} {state}>"


RecordT = TypeVar("RecordT", bound=LockRecord[Any])


class Plan(Generic[RecordT]):
    """The records one ``acquire(*names)`` takes, in the order to take them.

    ``learned``: taking it from an empty hand needs no order check (its
    records ascend, and each pair is declared, learned, or nothing is checked).
    ``checked``: whether its manager checks orders at all (policy not "off").
    """

    __slots__ = ("__weakref__", "checked", "learned", "records", "release_order",
                 "size")  # fmt: skip

    def __init__(
        self, records: tuple[RecordT, ...], *, learned: bool, checked: bool
    ) -> None:
        self.records, self.checked = records, checked
        self.release_order = records[::-1] if len(records) > 1 else records
        self.size, self.learned = len(records), learned


def take_free(plan: Plan[Any], holder: Holder, now: float, site: Site) -> int:
    """Take a learned plan while its locks are free, if it needs no check.

    The common case, kept lean: an empty hand (see :class:`Plan`), or a hand
    whose top and ceiling are declared orders below the plan's first (or no
    checks), holding none of them. At a busy lock the checked path goes on.

    :return: how many records it took (0 if the case does not apply)
    """
    stack = holder.stack
    if not plan.learned:
        return 0
    held = len(stack)
    if held:
        if plan.checked:
            first = plan.records[0]._order
            if first is None or stack[-1]._order is None or first < holder.ceiling():
                return 0
        for record in plan.records:
            if record._owner is holder:
                return 0
    threaded = holder.thread
    for record in plan.records:
        if threaded:
            if not record._raw.acquire(False):
                break
        else:
            try:
                if record._raw.acquire_nowait() is False:
                    break
            except WouldBlock:  # how anyio's locks say "not free"
                break
        record._owner = holder
        record._acquired_at = now
        record._site = site
        record._acquisitions += 1
        stack.append(record)
    return len(stack) - held


def release_levels(
    records: Sequence[Any],
    holder: Holder,
    now: float,
    released: list[Any] | None = None,
) -> list[Any] | None:
    """Release one level of each of ``records`` that ``holder`` holds, in order.

    The one release path of every record. A record released to its last
    level has its local lock released, or, with ``released``, is appended
    there for the caller to release after its lease.

    :return: the records ``holder`` does not hold (left alone), or ``None``
    """
    foreign = None
    stack = holder.stack
    for record in records:
        if record._owner is not holder:
            foreign = [record] if foreign is None else [*foreign, record]
            continue
        if record._reentries:
            record._reentries -= 1
            continue
        held = now - record._acquired_at
        if held > record._hold_floor:
            record._note_hold(held)
        record._owner = None
        top = stack.pop()
        if top is not record:  # released out of order
            stack.append(top)
            stack.remove(record)
        if released is None:
            record._raw.release()
        else:
            released.append(record)
    return foreign


def foreign_release_error(
    records: Sequence[LockRecord[Any]], caller: str
) -> RuntimeError:
    """Return the error for releasing ``records`` that ``caller`` does not hold."""
    return RuntimeError(
        "; ".join(
            f"cannot release lock {r.name!r} from {caller}: "
            + (f"it is held by {r.owner}" if r.owner else "it is not held")
            for r in records
        )
    )
