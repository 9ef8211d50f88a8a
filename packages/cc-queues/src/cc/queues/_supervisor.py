"""Stopping a queue, whoever asks: one stop procedure, and what it hands back.

Every stop of a running queue follows the same steps: stop accepting items;
let the workers finish what the request allows (the item in hand, or with a
drain everything queued) until the request's deadline, when the workers
still busy are cancelled (each worker runs in a cancel scope of its own, so
the host never is); then hand back every item not processed. The host's
:meth:`~QueueBase.stop` carries these steps out itself, in its own task, and
closes the queue's task group; a stop asked for from anywhere else
(:meth:`~Supervisor.request_stop`, or the queue noticing that its host has
ended) is carried out by the queue's *supervisor*, a task in that task group.
Until a stop is asked for, the supervisor retires workers that stayed idle,
and checks now and then that the host is alive.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

import anyio

from cc.primitives.lowlevel import checkpoint
from cc.queues._buffer import CLOSED
from cc.queues._pool import Pool
from cc.queues._status import QueueStatus
from cc.queues._validation import check_bool, check_timeout

__all__ = ["HandBack", "Supervisor"]

T = TypeVar("T")

_PROCESSING = QueueStatus.PROCESSING
_STOPPING = QueueStatus.STOPPING
_STOPPED = QueueStatus.STOPPED

# How often, at most, the supervisor looks at the host and the idle workers.
_WATCH_PERIOD = 1.0


@dataclass(slots=True, eq=False)
class HandBack(Generic[T]):
    """Items a queue handed back, and whether the application took them.

    Reading :attr:`~QueueBase.unprocessed` or keeping what
    :meth:`~QueueBase.stop` returns collects them. Items dropped without
    being collected (when the queue starts again, or is garbage collected)
    are reported then with a warning, the way :mod:`asyncio` reports a task
    exception that was never retrieved.
    """

    items: list[T]
    logger: logging.Logger
    source: str
    collected: bool = False

    def collect(self) -> list[T]:
        """Return a copy of the items, which now count as collected."""
        self.collected = True
        return list(self.items)

    def __del__(self) -> None:
        if self.items and not self.collected:
            # Logging may be torn down already at interpreter exit.
            with contextlib.suppress(Exception):
                self.logger.warning(
                    "%s handed back %d unprocessed item(s) that were never "
                    "collected (read .unprocessed, or keep what stop() returns)",
                    self.source,
                    len(self.items),
                )


class Supervisor(Pool[T]):
    """The stopping half of a queue's lifecycle (see the module documentation)."""

    __slots__ = (
        "_drain_scope",
        "_hand_back",
        "_host_stops",
        "_orphaned",
        "_queued_back",
        "_stop_deadline",
        "_stop_signal",
        "_stopped",
        "_ticks",
        "_watch_period",
    )

    def __init__(self, maxsize: int, logger: logging.Logger, idle: float) -> None:
        super().__init__(maxsize, logger)
        self._watch_period = min(idle, _WATCH_PERIOD)
        # Idle workers retire after this many watch periods (0: never).
        self._ticks = 0 if idle == math.inf else math.ceil(idle / self._watch_period)
        self._orphaned = False
        # Whether the host's stop() carries out the stop (else: the supervisor).
        self._host_stops = False
        # Items still queued when a stop ended serving: handed back after
        # the interrupted ones.
        self._queued_back: list[T] = []
        self._stop_deadline: float | None = None
        self._stop_signal: anyio.Event | None = None
        self._stopped: anyio.Event | None = None
        self._drain_scope: anyio.CancelScope | None = None
        self._hand_back: HandBack[T] = HandBack([], self._logger, self._name)

    def request_stop(
        self, timeout: float | None = None, *, drain: bool = False
    ) -> None:
        """Ask the queue to stop, from any task; :meth:`wait_stopped` waits for it.

        The stop is carried out by the queue's supervisor as :meth:`stop`
        would do it, with the same ``timeout`` and ``drain``, so any task
        may ask, not only the one that started the queue (whose own
        :meth:`stop` is still the one that closes the queue's task group,
        when it leaves ``async with``). Asking again can only make the stop
        more urgent: the earliest deadline wins, and a request without
        ``drain`` ends a drain. It does nothing on a queue that is not
        running. This method does not block; from another thread, call it
        through the event loop, as anyio's portals do::

            anyio.from_thread.run_sync(queue.request_stop)   # in a worker thread
            portal.call(queue.request_stop, 5.0)              # with a BlockingPortal

        :param timeout: seconds to let the workers finish, as for :meth:`stop`
        :param drain: whether to process the items already queued first
        :raises ValueError: for a negative or NaN ``timeout``
        :raises TypeError: for a ``drain`` that is not a bool
        :raises RuntimeError: if called outside the queue's event loop (from
            a thread, without a portal)
        """
        wait = None if timeout is None else check_timeout("timeout", timeout)
        check_bool("drain", drain)
        try:
            now = anyio.current_time()
        except Exception:
            raise RuntimeError(
                "request_stop() must run in the queue's event loop; from another "
                "thread, call anyio.from_thread.run_sync(queue.request_stop) or "
                "use a BlockingPortal"
            ) from None
        deadline = math.inf if wait is None else now + wait
        self._request_stop(deadline, drain)

    async def wait_stopped(self) -> list[T]:
        """Wait until the queue has stopped, however it was asked to.

        From another thread: ``anyio.from_thread.run(queue.wait_stopped)``.

        :return: the items the stop handed back (as :attr:`unprocessed`,
            which they also stay in); at once, for a queue that is not
            running
        """
        if self._status is _PROCESSING and self._host_coro.cr_frame is None:
            self._orphan()
        stopped = self._stopped
        if stopped is None:
            await checkpoint()
            return []
        await stopped.wait()
        return self._hand_back.collect()

    def _request_stop(
        self, deadline: float, drain: bool, *, by_host: bool = False
    ) -> None:
        """Stop accepting now, and finish by ``deadline``.

        :param by_host: the host's :meth:`stop` carries the stop out, unless
            the supervisor is already doing it
        """
        status = self._status
        if status is _PROCESSING or (
            status is _STOPPING and self._stop_deadline is None
        ):
            self._status = _STOPPING
            self._stop_deadline = deadline
            self._draining = drain
            self._accepting = CLOSED
            if not drain:
                self._serving = CLOSED
            self._release_waiters(getters=not drain)
            self._host_stops = by_host
            signal = self._stop_signal
            if signal is not None:
                signal.set()
        elif status is _STOPPING:
            assert self._stop_deadline is not None
            self._stop_deadline = min(self._stop_deadline, deadline)
            if self._draining and not drain:
                self._draining = False
                self._serving = CLOSED
                self._release_waiters()
                if self._drain_scope is not None:
                    self._drain_scope.cancel()
        else:
            return
        self._cancel_workers_at(deadline)

    def _orphan(self) -> None:
        """Stop the queue now that its host has ended without stopping it; say so."""
        if not self._orphaned:
            self._orphaned = True
            self._logger.warning(
                "%s: the task that started it has ended without stopping it; it "
                "stops and hands back what it did not process (see .unprocessed)",
                self._name,
            )
        if self._status is _PROCESSING:
            self._request_stop(-math.inf, drain=False)

    # -- the supervisor ------------------------------------------------------

    async def _supervise(self) -> None:
        """Watch the queue while it runs; carry out a stop asked by a non-host."""
        try:
            await self._watch()
            if self._host_stops:
                return  # the host's stop() does it, in the host
            await self._drain()
            self._end_serving()
            await self._workers_exited()
            self._end_run()
        finally:
            if self._status is not _STOPPED and not self._host_stops:
                # Cancelled with the whole task group (a crash, or a host
                # gone): once the cancelled workers have handed their items
                # back, hand everything back.
                self._end_serving()
                with anyio.CancelScope(shield=True):
                    await self._workers_exited(starting=False)
                self._end_run()

    async def _drain(self) -> None:
        """With a drain asked for, wait until every accepted item is finished.

        Ends early at the stop's deadline (the workers' scopes cancel them
        then) or when a later request drops the drain.
        """
        if not self._draining:
            return
        deadline = self._stop_deadline
        assert deadline is not None
        with anyio.CancelScope(deadline=deadline) as scope:
            self._drain_scope = scope
            try:
                await self._join()
            finally:
                self._drain_scope = None

    async def _watch(self) -> None:
        """Until a stop is asked for, retire idle workers and watch the host."""
        signal = self._stop_signal
        assert signal is not None
        lows: deque[int] = deque(maxlen=self._ticks or 1)
        while not signal.is_set():
            with anyio.move_on_after(self._watch_period):
                await signal.wait()
            if signal.is_set():
                return
            if self._host_coro.cr_frame is None:
                self._orphan()
                return
            if self._ticks:
                # The fewest workers idle during each of the last periods: that
                # many were idle all along, and may go.
                lows.append(self._idle_low)
                self._idle_low = self._idle.parked
                if len(lows) == lows.maxlen and min(lows):
                    self._retire_idle_workers(min(lows))
                    lows.clear()

    def _end_serving(self) -> None:
        """Hand nothing out any more; set the items still queued aside."""
        self._draining = False
        self._accepting = self._serving = CLOSED
        self._retire_crews()
        self._queued_back.extend(self._items)
        self._items.clear()
        self._release_waiters()

    def _end_run(self) -> None:
        """Hand back what was not processed; the run is over."""
        if self._status is _STOPPED:
            return  # ended already (by the host, or by the supervisor)
        self._crews.clear()
        self._starting = 0
        self._worker_deadline = math.inf
        leftovers = self._interrupted + self._queued_back
        self._interrupted = []
        self._queued_back = []
        self._status = _STOPPED
        self._hand_back = HandBack(leftovers, self._logger, self._name)
        self._count_hand_back(len(leftovers))
        if leftovers:
            self._logger.debug("%r handed back %d item(s)", self, len(leftovers))
        if self._stopped is not None:
            self._stopped.set()
