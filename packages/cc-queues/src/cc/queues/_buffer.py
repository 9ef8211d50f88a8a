"""The items of a queue, who waits for them, and what each waiter was promised.

How waiting works (and why it is cheap):

* Items live in one ``deque``. Producers that find the queue full, and
  consumers that find it empty, park in FIFO lots
  (:class:`cc.primitives.lowlevel.ParkingLot`, the toolkit's one waiting
  primitive): ``_putters`` for producers, ``_getters`` for ``get()``
  callers and ``_idle`` for idle workers. An operation that does not have
  to wait allocates nothing: no event, no cancel scope, no timeout.
* When an item arrives, the oldest waiting consumer (a ``get()`` caller
  before an idle worker) is woken with a *reservation* on that item
  (``_woken_getters`` counts them); when an item leaves, the oldest waiting
  producer is woken with a reservation on the free slot
  (``_woken_putters``). The fast paths only use what is not reserved, so a
  newcomer cannot barge in front of a task that was already woken. Tasks
  woken in the same scheduling round may resume in any order (trio
  randomizes it), so among *those*, which consumer takes which item, or
  whose item lands first, is the backend's choice; everything else is first
  in, first out.
* Reservations are never lost: a woken task that is cancelled before it
  resumes hands its reservation on (the lot calls ``hand_back``), and one
  that finds the queue stopped when it resumes passes it on too. Items stay
  in the ``deque`` until a task takes them, so a cancellation can never drop
  one. A stop wakes every waiter with :data:`STOP`, an idle worker told to
  retire gets :data:`RETIRE`: neither carries a reservation.
* Workers that may start on demand count as consumers too: an item that
  arrives when no consumer waits starts one (``_spare`` says how many more
  may start, ``_starting`` how many were started and have not taken an item
  yet), so items never wait for a worker that could run.

The counters are the queue's ledger. Each accepted item ends exactly once as
processed, failed (``errors``) or handed back, so the number of unfinished
items is derived from them rather than kept.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Generic, TypeVar

import anyio

from cc.primitives.lowlevel import ParkingLot, checkpoint_rule, take_checkpoint
from cc.queues._status import QueueStateError, QueueStatus

__all__ = ["CLOSED", "NO_HOST", "RETIRE", "STOP", "Buffer"]

T = TypeVar("T")


class _StandIn:
    """Looks like a coroutine: one that has ended (``cr_frame`` ``None``) or not."""

    __slots__ = ("cr_frame",)

    def __init__(self, cr_frame: object) -> None:
        self.cr_frame = cr_frame


CLOSED: Any = _StandIn(None)
"""A closed gate."""
NO_HOST: Any = _StandIn(True)
"""Stands in for the host's coroutine when it cannot be watched."""

# What a waiter is woken with: a reservation (an item for a consumer, a slot
# for a producer), or news that carries none.
_RESERVED: Any = object()
STOP: Any = None
"""The queue stopped: no reservation (no value, which a lot wakes cheapest)."""
RETIRE: Any = object()
"""An idle worker may exit: no reservation."""
_TIMED_OUT: Any = object()


class Buffer(Generic[T]):
    """Items, waiters and reservations; the ledger of what became of each item.

    The lifecycle (subclasses) decides when items are accepted and handed
    out, through two *gates*: ``_accepting`` (for producers) and ``_serving``
    (for consumers) are the coroutine of the task that started the queue
    while it does, and :data:`CLOSED` when it does not. A gate is open while
    its ``cr_frame`` is not ``None``, so one attribute read tells both
    whether the queue runs and whether the task that started it is still
    alive (a coroutine's ``cr_frame`` becomes ``None`` when it ends): the
    fast paths pay for one check, not two. This class only keeps the
    promises made to the tasks that wait.
    """

    __slots__ = (
        "_accepting",
        "_all_done",
        "_backpressure_events",
        "_draining",
        "_due",
        "_enqueued",
        "_errors",
        "_getters",
        "_handed_back",
        "_idle",
        "_idle_low",
        "_items",
        "_maxsize",
        "_processed",
        "_putters",
        "_refused_puts",
        "_run",
        "_serving",
        "_spare",
        "_starting",
        "_status",
        "_taken",
        "_woken_getters",
        "_woken_putters",
    )

    def __init__(self, maxsize: int) -> None:
        self._maxsize = maxsize
        self._status = QueueStatus.IDLE
        # cc's checkpoint rule, bound once (cheaper per call than
        # checkpoint_due()); every async operation of the queue spends from it.
        self._due = checkpoint_rule(None)
        # Whether a stopping queue still hands out its items (drain).
        self._draining = False
        self._accepting: Any = CLOSED
        self._serving: Any = CLOSED
        # Bumped on every start: a waiter from an earlier run never resumes
        # into the next one.
        self._run = 0
        self._items: deque[T] = deque()
        self._getters = ParkingLot()
        self._idle = ParkingLot()
        self._putters = ParkingLot()
        self._woken_getters = 0
        self._woken_putters = 0
        # The fewest idle workers seen since the supervisor last looked.
        self._idle_low = 0
        self._spare = 0
        self._starting = 0
        self._taken = 0
        self._all_done: anyio.Event | None = None
        self._enqueued = 0
        self._processed = 0
        self._errors = 0
        self._backpressure_events = 0
        self._refused_puts = 0
        self._handed_back = 0

    # -- what can be seen --------------------------------------------------

    @property
    def size(self) -> int:
        """The number of items waiting in the queue."""
        return len(self._items)

    @property
    def maxsize(self) -> int:
        """The most items the queue holds."""
        return self._maxsize

    @property
    def is_full(self) -> bool:
        """Whether the queue holds ``maxsize`` items."""
        return len(self._items) >= self._maxsize

    @property
    def is_empty(self) -> bool:
        """Whether the queue holds no item."""
        return not self._items

    def _ledger(self) -> dict[str, int]:
        return {
            "enqueued": self._enqueued,
            "processed": self._processed,
            "errors": self._errors,
            "backpressure_events": self._backpressure_events,
            "refused_puts": self._refused_puts,
            "handed_back": self._handed_back,
        }

    def _unfinished(self) -> int:
        """Count the accepted items not processed, failed or handed back yet."""
        return self._enqueued - self._processed - self._errors - self._handed_back

    # -- producers ---------------------------------------------------------

    def _has_room(self) -> bool:
        return len(self._items) + self._woken_putters < self._maxsize

    def _admit(self, item: T) -> None:
        """Add an accepted item; promise it to a waiting or new consumer."""
        items = self._items
        items.append(item)
        self._enqueued += 1
        if self._getters.parked:
            if len(items) > self._woken_getters:
                self._woken_getters += 1
                self._getters.unpark(_RESERVED)
        elif self._idle.parked or self._spare:
            self._offer_to_worker()

    def _offer_to_worker(self) -> None:
        """Wake an idle worker for an unreserved item, or start one."""
        waiting = len(self._items) - self._woken_getters
        if waiting <= 0:
            return
        if self._idle.parked:
            self._wake_idle_worker()
        elif self._spare and waiting > self._starting:
            self._start_worker()

    def _start_worker(self) -> None:
        """Start one more worker (the worker pool defines how)."""
        raise NotImplementedError

    async def _wait_for_room(self, wait: float) -> bool:
        """Wait for a free slot: ``True`` once reserved, ``False`` on timeout."""
        run = self._run
        next(filter(None, self._due))  # a wait ends the budget: see _wait_for_item
        if wait == math.inf:
            woken = await self._putters.park(hand_back=self._pass_slot_on)
        else:
            woken = _TIMED_OUT
            with anyio.move_on_after(wait):
                woken = await self._putters.park(hand_back=self._pass_slot_on)
        if woken is _TIMED_OUT:  # (a slot given meanwhile was passed on)
            return False
        if woken is _RESERVED:
            self._woken_putters -= 1
            if self._accepting.cr_frame is not None and self._run == run:
                return True
            self._wake_putter()
        raise QueueStateError("the queue stopped while put() was waiting", self._status)

    def _pass_slot_on(self, woken: object) -> None:
        """Hand a slot reserved for a cancelled producer to the next one."""
        if woken is _RESERVED:
            self._woken_putters -= 1
            self._wake_putter()

    def _wake_putter(self) -> None:
        """Wake the oldest waiting producer if a slot is free for it."""
        if self._putters.parked and self._has_room():
            self._woken_putters += 1
            self._putters.unpark(_RESERVED)

    # -- consumers ---------------------------------------------------------

    def _take(self) -> T:
        """Pop the front item and wake a producer waiting for its slot."""
        item = self._items.popleft()
        if self._putters.parked:
            self._wake_putter()
        return item

    async def _wait_for_item(self, lot: ParkingLot) -> bool:
        """Park in ``lot`` until an item is reserved for us.

        :return: ``True`` with an item reserved, ``False`` if the queue
            stopped handing items out (or, for an idle worker, if it was
            told to retire)
        """
        run = self._run
        # Parking yields as a checkpoint does, so it spends the rest of the
        # thread's budget (checkpoints only come sooner): the task that runs
        # next starts a whole one. A producer and a consumer then take turns
        # of a whole budget each, wherever the budget stood when they began;
        # a wait in mid-budget split every turn in two, with a park and a
        # wake-up more per turn (measured: 1.5 times the cost of a hand-off).
        # (A queue's rule is always the thread's budget, which has an end.)
        next(filter(None, self._due))
        woken = await lot.park(hand_back=self._pass_item_on)
        if woken is not _RESERVED:
            return False
        self._woken_getters -= 1
        if self._run == run and self._serving.cr_frame is not None:
            return True
        self._wake_getter()
        return False

    def _pass_item_on(self, woken: object) -> None:
        """Hand an item reserved for a cancelled consumer to the next one."""
        if woken is _RESERVED:
            self._woken_getters -= 1
            self._wake_getter()

    def _wake_getter(self) -> None:
        """Wake the oldest waiting consumer if an unreserved item is there."""
        if len(self._items) > self._woken_getters:
            if self._getters.parked:
                self._woken_getters += 1
                self._getters.unpark(_RESERVED)
            elif self._idle.parked:
                self._wake_idle_worker()

    def _wake_idle_worker(self) -> None:
        idle = self._idle
        self._woken_getters += 1
        idle.unpark(_RESERVED)
        if idle.parked < self._idle_low:
            self._idle_low = idle.parked

    def _retire_idle_workers(self, count: int) -> None:
        """Tell ``count`` idle workers (the longest idle) to exit."""
        self._idle.unpark_n(count, RETIRE)
        self._idle_low = self._idle.parked

    def _release_waiters(self, *, putters: bool = True, getters: bool = True) -> None:
        """Wake waiting producers and consumers; they see the queue stop."""
        if getters:
            self._idle_low = 0
            for lot in (self._getters, self._idle):
                if lot.parked:  # (an empty lot needs no call)
                    lot.unpark_all(STOP)
        if putters and self._putters.parked:
            self._putters.unpark_all(STOP)

    # -- the ledger ----------------------------------------------------------

    def _finish(self) -> None:
        """Wake the joiners if that was the last unfinished item."""
        if self._all_done is not None and not self._unfinished():
            self._all_done.set()
            self._all_done = None

    def _count_hand_back(self, count: int) -> None:
        self._handed_back += count
        self._finish()

    async def _join(self) -> None:
        if not self._unfinished():
            if next(self._due):  # the toolkit's one checkpoint rule
                self._due = await take_checkpoint(self._due)
            return
        all_done = self._all_done
        if all_done is None:
            all_done = self._all_done = anyio.Event()
        await all_done.wait()
