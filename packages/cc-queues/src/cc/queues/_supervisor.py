"""Stopping a queue, whoever asks: the supervisor task and what it hands back.

Every stop of a running queue is carried out by its supervisor, a task in
the queue's own task group that owns the workers' task group (the *pool*),
whoever asked for it: the host's :meth:`~QueueBase.stop`,
:meth:`~Supervisor.request_stop` from any task, or the queue noticing that
its host has ended. The supervisor stops accepting items, lets the workers
finish what the request allows (the item in hand, or with a drain
everything queued) until the request's deadline, cancels those still busy,
and hands back every item not processed. Only closing the host's task
group is left to the host, as anyio requires. Until a stop is asked for, the
supervisor retires workers that stayed idle, and checks now and then that
the host is alive.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections import deque
from typing import Generic, TypeVar

import anyio
from anyio.abc import TaskStatus

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


class HandBack(Generic[T]):
    """Items a queue handed back, and whether the application took them.

    Reading :attr:`~QueueBase.unprocessed` or keeping what
    :meth:`~QueueBase.stop` returns collects them. Items dropped without
    being collected (when the queue starts again, or is garbage collected)
    are reported then with a warning, the way :mod:`asyncio` reports a task
    exception that was never retrieved.
    """

    __slots__ = ("collected", "items", "logger", "source")

    def __init__(self, items: list[T], logger: logging.Logger, source: str) -> None:
        self.items = items
        self.logger = logger
        self.source = source
        self.collected = False

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
        "_orphaned",
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

    def _request_stop(self, deadline: float, drain: bool) -> None:
        """Stop accepting now; have the supervisor finish by ``deadline``."""
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
        pool = self._pool
        if pool is not None and deadline < pool.cancel_scope.deadline:
            pool.cancel_scope.deadline = deadline

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

    async def _supervise(self, *, task_status: TaskStatus[None]) -> None:
        """Own the workers' task group for one run, and carry out its stop."""
        queued: list[T] = []
        try:
            async with anyio.create_task_group() as pool:
                self._pool = pool
                task_status.started()
                await self._watch()
                if self._draining:
                    with anyio.CancelScope() as scope:
                        self._drain_scope = scope
                        await self._join()
                queued = self._end_serving()
        finally:
            self._drain_scope = None
            queued += self._end_serving()
            self._end_run(queued)

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
                self._idle_low = len(self._idle)
                if len(lows) == lows.maxlen and min(lows):
                    self._retire_idle_workers(min(lows))
                    lows.clear()

    def _end_serving(self) -> list[T]:
        """Hand nothing out any more; return the items still queued."""
        self._draining = False
        self._accepting = self._serving = CLOSED
        self._retire_crews()
        queued = list(self._items)
        self._items.clear()
        self._release_waiters()
        return queued

    def _end_run(self, queued: list[T]) -> None:
        self._pool = None
        leftovers = self._interrupted + queued
        self._interrupted = []
        self._status = _STOPPED
        self._hand_back = HandBack(leftovers, self._logger, self._name)
        self._count_hand_back(len(leftovers))
        if leftovers:
            self._logger.debug("%r handed back %d item(s)", self, len(leftovers))
        if self._stopped is not None:
            self._stopped.set()
