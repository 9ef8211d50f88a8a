"""What the managers know about each lock and each thread or task using them.

A lock's record carries its registration (name, order, description), its live
state (owner, depth, when and where it was acquired, who waits for it), its
usage statistics and its outgoing edges in the learned order graph. The
managers update these fields directly on their fast paths; the public
surface is the read-only view that :class:`LockInfo` and
:class:`AsyncLockInfo` give.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from dataclasses import dataclass
from types import CodeType
from typing import Any, Generic, TypeVar

from cc.locks._tasks import describe_task

__all__ = [
    "Holder",
    "LockRecord",
    "LockUsageStatistics",
    "Site",
    "caller_site",
    "format_site",
]

# Where a lock was acquired: the code object and the offset of the calling
# instruction in it. Capturing these is several times cheaper than asking the
# frame for its line number, which is worked out only when a report needs it.
Site = tuple[CodeType, int]

NO_CEILING = -math.inf


def caller_site(depth: int) -> Site:
    """Return the :data:`Site` of the frame ``depth`` levels above the caller."""
    frame = sys._getframe(depth + 1)
    return (frame.f_code, frame.f_lasti)


def format_site(site: Site | None) -> str:
    """Render a :data:`Site` as ``file:line in function``."""
    if site is None:
        return "an unknown place"
    code, offset = site
    line = next(
        (n for start, end, n in code.co_lines() if start <= offset < end and n),
        code.co_firstlineno,
    )
    return f"{code.co_filename}:{line} in {code.co_name}"


@dataclass(frozen=True)
class LockUsageStatistics:
    """Contention figures of one managed lock since it was registered.

    Times are in seconds. A *contended* acquisition is one that had to wait;
    waits that ended in a timeout or an error count in ``timeouts`` or not at
    all, never in the wait times.

    :ivar acquisitions: successful first-level acquisitions (re-entries by
        the holder are not counted)
    :ivar contended_acquisitions: those of them that had to wait
    :ivar timeouts: waits that ended because the deadline passed, or that
        were refused at once with ``blocking=False``
    :ivar total_wait_time: time spent waiting by contended acquisitions
    :ivar max_wait_time: the longest of those waits
    :ivar max_hold_time: the longest single hold (from first acquisition to
        last release)
    """

    acquisitions: int
    contended_acquisitions: int
    timeouts: int
    total_wait_time: float
    max_wait_time: float
    max_hold_time: float


class Holder:
    """A thread or task as the managers see it: what it holds and awaits."""

    __slots__ = ("stack", "waiting_for")

    # Locks held (at any depth) in the order they were first taken, and the
    # lock being waited for, if any.
    stack: list[LockRecord[Any]]
    waiting_for: LockRecord[Any] | None

    def describe(self) -> str:
        """Return e.g. ``thread 'worker-1'`` or ``task 'fetch'``."""
        raise NotImplementedError

    def ceiling(self) -> float:
        """Return the highest declared order held, or ``-inf``."""
        ceiling = NO_CEILING
        for record in self.stack:
            order = record._order
            if order is not None and order > ceiling:
                ceiling = order
        return ceiling


class ThreadHolder(Holder):
    """The managers' view of one thread."""

    __slots__ = ("thread",)

    def __init__(self, thread: threading.Thread) -> None:
        self.stack = []
        self.waiting_for = None
        self.thread = thread

    def describe(self) -> str:
        """Return ``thread '<name>'``, noting a thread that has ended."""
        gone = "" if self.thread.is_alive() else " (ended)"
        return f"thread {self.thread.name!r}{gone}"


class TaskHolder(Holder):
    """The managers' view of one async task."""

    __slots__ = ("task",)

    def __init__(self, task: object) -> None:
        self.stack = []
        self.waiting_for = None
        self.task = task

    def describe(self) -> str:
        """Return ``task '<name>'``."""
        return f"task {describe_task(self.task)!r}"


@dataclass(frozen=True)
class Edge:
    """Where the learned order ``before -> after`` was first seen."""

    holder: str
    before_site: Site | None
    after_site: Site | None


LockT = TypeVar("LockT")


class LockRecord(Generic[LockT]):
    """A registered lock: registration, live state, statistics, graph edges.

    Managers write the underscore fields directly; everything public is
    read-only and safe to call from any thread (values are a snapshot that
    may be a moment old).
    """

    __slots__ = (
        "__weakref__",
        "_acquired_at",
        "_acquisitions",
        "_after",
        "_contended",
        "_description",
        "_handle",
        "_hold_floor",
        "_hold_max",
        "_name",
        "_order",
        "_owner",
        "_raw",
        "_reentries",
        "_retired",
        "_site",
        "_sort_key",
        "_timeouts",
        "_wait_max",
        "_wait_total",
        "_waiting",
    )

    def __init__(
        self, name: str, order: int | None, description: str, raw: object
    ) -> None:
        self._name = name
        self._order = order
        self._description = description
        self._raw: Any = raw
        self._handle: LockT  # set by the manager right after creation
        self._sort_key = (0, order, "") if order is not None else (1, 0, name)
        self._retired = False
        # live state
        self._owner: Holder | None = None
        self._reentries = 0  # depth - 1 while held
        self._acquired_at = 0.0  # time.monotonic() of the first-level acquire
        self._site: Site | None = None
        self._waiting: list[Holder] = []
        # learned order graph: locks taken while this one was held
        self._after: dict[LockRecord[LockT], Edge] = {}
        # statistics
        self._acquisitions = 0
        self._contended = 0
        self._timeouts = 0
        self._wait_total = 0.0
        self._wait_max = 0.0
        self._hold_max = 0.0
        # min(_hold_max, the manager's long-hold threshold): a release whose
        # hold time is below it has nothing to record, with one comparison.
        self._hold_floor = 0.0

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
        if self._owner is None:
            return None
        return time.monotonic() - self._acquired_at

    @property
    def acquisition_site(self) -> str | None:
        """Where the current holder acquired it (``file:line in function``)."""
        if self._owner is None:
            return None
        return format_site(self._site)

    @property
    def waiters(self) -> int:
        """How many threads or tasks are waiting to acquire it."""
        return len(self._waiting)

    def statistics(self) -> LockUsageStatistics:
        """Return the lock's contention statistics.

        :return: a frozen snapshot of the counters
        """
        return LockUsageStatistics(
            acquisitions=self._acquisitions,
            contended_acquisitions=self._contended,
            timeouts=self._timeouts,
            total_wait_time=self._wait_total,
            max_wait_time=self._wait_max,
            max_hold_time=self._hold_max,
        )

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

    ``learned`` turns true once every consecutive pair is a known edge of the
    learned order graph (or from the start, if the manager checks nothing):
    from then on, a holder that holds nothing can take the whole plan without
    any order check, since the plan is ascending by construction and its
    edges have already been checked.
    """

    __slots__ = ("contexts", "learned", "records", "release_order")

    def __init__(self, records: tuple[RecordT, ...], *, checking: bool) -> None:
        self.records = records
        self.release_order = records[::-1]
        self.learned = len(records) < 2 or not checking
        # Context managers for this plan, by (timeout, blocking); the thread
        # manager's are stateless and therefore shared.
        self.contexts: dict[tuple[float | None, bool], Any] = {}

    def check_learned(self) -> None:
        """Set :attr:`learned` if every consecutive edge is now known."""
        records = self.records
        self.learned = all(
            records[i] in records[i - 1]._after for i in range(1, len(records))
        )
