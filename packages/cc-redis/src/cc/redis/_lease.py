"""Leases on shared locks: the Redis half of a lock manager, once for threads and tasks.

The manager takes a lock's local lock first (so one of its threads or tasks
at a time asks Redis), then :class:`LeaseSession` takes, renews and releases
its key. Each try of a waiter publishes its wait and follows the chain of
waits and holders in the same script, so a cycle is found by the try that
closes it and by every other member within ``recheck_interval``.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import socket
import threading
from collections.abc import Callable, Sequence
from time import monotonic
from typing import Any

from cc.locks import Lease, LockBackendError
from cc.locks.lowlevel import (
    Pause,
    RemoteHolder,
    RemoteWait,
    Reporter,
    SharedOrder,
    Shielded,
    Steps,
    format_site,
)
from cc.redis._client import Protected, RedisLink, Taken

__all__ = ["LeaseSession"]

logger = logging.getLogger(__name__.rpartition(".")[0])  # "cc.redis"

# How long a listener waits for a message before looking again; it also
# bounds how long closing a threaded listener can take if Redis is gone.
LISTEN_SLICE = 1.0
_BACKOFF_FIRST, _BACKOFF_MAX = 0.05, 1.0  # the listener's reconnections
_MAX_SITES = 1024  # formatted acquisition sites kept
# A waiter keeps its place in a lock's queue for recheck_interval plus this
# (capped by recheck_interval itself) after each try: time enough to try
# again while it lives; once it stops, it holds the others up no longer.
_QUEUE_SLACK = 0.5
# Board keys of the background work (and of a back-off after losing Redis).
RENEWER, SHARER, BACKOFF = "\x00renewer", "\x00sharer", "\x00backoff"
# Orders kept to share (as many as a manager's own graph), read in one trip.
_MAX_SHARED_ORDERS, _ORDER_BATCH = 16_384, 1024
_CLOSED = "its manager was closed while it was held"


def _release_reason(result: int) -> str:
    if result == 0:
        return "its lease had expired (the lock was free when released)"
    return "its lease had expired and another holder had taken the lock"


class LeaseSession:
    """A :class:`~cc.locks.lowlevel.SharingSession` on Redis.

    ``board``: where to sleep until woken (``prepare(key)`` gives a token for
    a :class:`~cc.locks.lowlevel.Pause`, ``wake(key)`` wakes it).
    """

    def __init__(
        self, reporter: Reporter, link: RedisLink, board: Any, session_id: str, *,
        lease: float, renew_interval: float, recheck_interval: float,
        on_lost: Callable[[Lease], None],
    ) -> None:  # fmt: skip
        self._engine = reporter
        self._link = link
        self._board = board
        self._lost_callback = on_lost
        self._lease_s = lease
        self._lease_ms = max(1, round(lease * 1000))
        self._interval = renew_interval
        self._recheck = recheck_interval
        self._queue_ms = max(
            1, round((self._recheck + min(self._recheck, _QUEUE_SLACK)) * 1000)
        )
        self._host = socket.gethostname()
        self._pid = os.getpid()
        self.identity = f"pid {self._pid} on {self._host}"
        self._id = session_id
        # A published wait lasts as long as a lease: a dead process's waits
        # vanish with its locks.
        self._wait_ms = max(self._lease_ms, self._queue_ms)
        self._orders: list[SharedOrder] = []  # learned here, not yet shared
        self._orders_read = "0-0"  # the last entry of the order stream read
        self._counter = itertools.count(1)
        # Sent on the session's own channel to stop its listener at once.
        self._stop_message = f"\x00stop {self._id}"
        self._held: dict[str, Lease] = {}
        self._gone: set[str] = set()  # tokens Redis no longer holds
        self._sites: dict[Any, str] = {}
        # Guards _held and closed (threads share the session).
        self._state = threading.Lock()
        # When the renewal loop wakes next (monotonic): a new lease wakes it
        # only if it is due earlier, so a burst of short holds costs no wake.
        self._renewer_due = math.inf
        self.closed = False

    def lease(self, name: str) -> Lease | None:
        """Return the lease this session holds on ``name``, if any."""
        return self._held.get(name)

    def open(self) -> Steps[None]:
        """Start hearing the wake channel; learn the orders shared so far."""
        yield from self._link.subscribe()
        if self._engine.policy != "off":
            yield from self._sync_orders()

    def background(self) -> list[tuple[str, Steps[None]]]:
        """Return the listener, the renewal and order sharing, to run until closed."""
        work = [
            ("cc.redis lease listener", self.listen()),
            ("cc.redis lease renewal", self.renewals()),
        ]
        if self._engine.policy != "off":
            work.append(("cc.redis order sharing", self.order_sharing()))
        return work

    def inspect(self, names: Sequence[str]) -> Steps[list[RemoteHolder | None]]:
        """Return the holder of each lock, wherever it is (``None`` if free)."""
        return (yield from self._link.inspect(names))

    # -- taking and releasing -------------------------------------------------

    def take(
        self, record: Any, holder: Any, site: Any, deadline: float,
        limit: float | None, blocking: bool,
    ) -> Steps[float]:  # fmt: skip
        """Take ``record``'s lock in the store, waiting within ``deadline``.

        :return: the seconds spent waiting for another process (0 if none)
        :raises LockTimeoutError: if another process held it past the
            deadline, or at once with ``blocking=False``
        :raises LockBackendError: if the store cannot be reached
        """
        if self.closed:
            raise RuntimeError("the lock manager was closed; open it again")
        name = record.name
        text = self._sites.get(site)
        if text is None:
            if len(self._sites) >= _MAX_SITES:
                self._sites.clear()
            text = self._sites[site] = format_site(site)
        token = f"{self._id}:{next(self._counter)}"
        queue_ms = self._queue_ms if blocking else 0
        board = self._board
        engine = self._engine
        node = f"{self._id}.{id(holder):x}"
        detect = 1 if blocking and engine.detect and engine.policy != "off" else 0
        waiting_since = 0.0
        # Whether the store may know this token (as a holder or queued)
        # while we are not going to hold the lock: forget it on the way out.
        known = False
        try:
            while True:
                wake = board.prepare(name)
                sent = monotonic()
                known = True
                taken: Taken = yield from self._link.take(
                    name, token, self._lease_ms, holder.describe(), self._host,
                    self._pid, text, queue_ms, node,
                    detect * 2 if waiting_since else detect, self._wait_ms,
                )  # fmt: skip
                if taken.ok:
                    known = False
                    lease = Lease(name, token, taken.fencing_token, taken.since,
                                  sent + self._lease_s)  # fmt: skip
                    with self._state:
                        self._held[name] = lease
                        early = sent + self._interval < self._renewer_due
                    if early:
                        board.wake(RENEWER)
                    return monotonic() - waiting_since if waiting_since else 0.0
                known = blocking
                now = monotonic()
                if not waiting_since and blocking:
                    waiting_since = now
                    engine.wait_begins(holder, record)
                if taken.home is not None:
                    self._cycle_through_here(holder, site, taken.home, taken)
                elif taken.cycle:  # a deadlock, even at the deadline
                    engine.remote_cycle(holder, site, taken.cycle)
                if not blocking or now >= deadline:
                    raise engine.remote_unavailable(
                        record, taken.holder, taken.queued, limit, blocking
                    )
                pause = min(deadline - now, self._recheck, taken.retry_in + 0.001)
                yield Pause(board, wake, pause)
                if self.closed:
                    raise RuntimeError("the lock manager was closed while waiting")
        except GeneratorExit:
            raise
        except BaseException:
            if known and not self.closed:
                # Hold nothing, leave the queue (waking the next waiter), drop
                # the wait; if the store is away, they end by themselves.
                node = node if waiting_since else ""
                forget = self._link.release([name], [token], node)
                with contextlib.suppress(LockBackendError, TimeoutError):
                    yield Shielded(forget, self._lease_s)
            raise
        finally:
            if waiting_since:
                engine.wait_ends(holder, record)

    def release(self, names: Sequence[str]) -> Steps[list[tuple[str, str]]]:
        """Release ``names`` in one round trip, even if the caller is cancelled.

        :return: ``(name, reason)`` for each lease that was lost
        """
        with self._state:
            leases = [self._held.pop(name, None) for name in names]
            closed = self.closed
        if closed or None in leases:
            return [
                (name, _CLOSED if lease is None else lease.lost_reason or _CLOSED)
                for name, lease in zip(names, leases, strict=True)
            ]
        held = [lease for lease in leases if lease is not None]
        tokens = [lease.token for lease in held]
        try:
            # A dead store is bounded by the client's socket timeout.
            results = yield Protected(self._link.release(names, tokens))
        except LockBackendError as exc:
            return [
                (lease.name, lease.lost_reason or f"its release could not be "
                 f"confirmed ({exc}); the lease ends by itself within "
                 f"{self._lease_s:g} s")
                for lease in held
            ]  # fmt: skip
        return [
            (lease.name, lease.lost_reason or _release_reason(result))
            for lease, result in zip(held, results, strict=True)
            if result != 1  # still ours: whatever the renewals said, none took it
        ]

    # -- background work ----------------------------------------------------------

    def renewals(self) -> Steps[None]:
        """Renew the held leases, one round trip for all, until closed."""
        board = self._board
        while not self.closed:
            wake = board.prepare(RENEWER)
            with self._state:
                due = [x for x in self._held.values() if x.token not in self._gone]
                # Nothing held: look again in one interval (a lease taken
                # meanwhile is due no sooner than that).
                delay = self._interval
                if due:
                    delay += min(lease.expires_in for lease in due) - self._lease_s
                self._renewer_due = monotonic() + delay
            if delay > 0 or not due:
                yield Pause(board, wake, delay)
                continue
            sent = monotonic()
            try:
                results = yield from self._link.renew(
                    [lease.name for lease in due],
                    [lease.token for lease in due],
                    self._lease_ms,
                )
            except LockBackendError as exc:
                for lease in due:
                    if not lease.expires_in and self._held.get(lease.name) is lease:
                        self._lose(lease, "its lease ran out while Redis could not "
                                   f"be reached to renew it ({exc})")  # fmt: skip
                yield Pause(board, board.prepare(BACKOFF), self._interval / 3)
                continue
            for lease, result in zip(due, results, strict=True):
                if self._held.get(lease.name) is not lease:
                    continue  # released meanwhile
                if result == 1:
                    lease.confirm(sent + self._lease_s)
                else:
                    self._gone.add(lease.token)
                    self._lose(lease, _release_reason(result))

    def listen(self) -> Steps[None]:
        """Wake the waiter of each lock named on the wake channel, until closed."""
        board = self._board
        delay = _BACKOFF_FIRST
        subscribed = True
        while not self.closed:
            try:
                if not subscribed:
                    yield from self._link.subscribe()
                    subscribed = True
                    delay = _BACKOFF_FIRST
                    board.wake_all()  # releases may have gone unheard
                name = yield from self._link.next_wake(LISTEN_SLICE)
            except LockBackendError as exc:
                logger.debug("lease listener lost the store: %s", exc)
                subscribed = False
                board.wake_all()
                yield Pause(board, board.prepare(BACKOFF), delay)
                delay = min(delay * 2, _BACKOFF_MAX)
                continue
            if name == self._stop_message:
                return
            if name is not None:
                board.wake(name)

    def _lose(self, lease: Lease, reason: str) -> None:
        """Mark ``lease`` lost, once: log, report and tell the application."""
        if not lease.mark_lost(reason):
            return
        message = (
            f"lease lost: the shared lock {lease.name!r} (fencing token "
            f"{lease.fencing_token}) is still held here, but {reason}"
        )
        logger.warning("%s", message)
        self._engine.report(("lost", lease.name, lease.token), message)
        try:
            self._lost_callback(lease)
        except Exception:
            logger.exception("on_lost callback failed for lock %r", lease.name)

    # -- deadlock detection across processes -------------------------------------

    def _cycle_through_here(
        self, holder: Any, site: Any, home: str, taken: Taken
    ) -> None:
        """Close a chain that ended at ``home``, a holder of this session, if it can.

        That holder publishes no wait: it may wait for a lock that another
        thread or task of this process holds. If such waits lead back to
        ``holder``, the cycle is seen here only, so ``holder`` is its victim.
        """
        local = self._engine.local_chain(int(home.rpartition(".")[2], 16), holder)
        if local:
            here = [
                RemoteWait(
                    f"{self._id}.{id(waiter):x}",
                    lock,
                    RemoteHolder(
                        waiter.describe(), self._host, self._pid, None, None, None, None
                    ),
                )
                for waiter, lock in local
            ]
            self._engine.remote_cycle(
                holder, site, [*taken.cycle, *here], seen_here_only=True
            )

    def share_order(self, edge: SharedOrder) -> None:
        """Publish a learned order to the other processes soon (does not block)."""
        with self._state:
            if len(self._orders) >= _MAX_SHARED_ORDERS:  # the store is away
                del self._orders[0]
            self._orders.append(edge)
        self._board.wake(SHARER)

    def wait_graph(self) -> Steps[list[tuple[RemoteWait, str | None]]]:
        """Return every live wait in the store, with the node holding its lock."""
        return (yield from self._link.wait_graph())

    def _sync_orders(self) -> Steps[None]:
        """Publish the orders learned here; learn those published elsewhere."""
        with self._state:
            orders, self._orders = self._orders, []
        try:
            while True:
                entries = yield from self._link.share_order(
                    self._orders_read, orders, self._id, _MAX_SHARED_ORDERS,
                    _ORDER_BATCH,
                )  # fmt: skip
                orders = []
                if entries:
                    self._orders_read = entries[-1][0]
                    self._engine.merge_order(
                        [edge for _, session, edge in entries if session != self._id]
                    )
                if len(entries) < _ORDER_BATCH:
                    return
        except BaseException:
            if orders:  # not published: try again later
                with self._state:
                    self._orders[:0] = orders
            raise

    def order_sharing(self) -> Steps[None]:
        """Publish the orders learned here at once; read the others' every recheck."""
        board = self._board
        read_at = monotonic() + self._recheck
        while not self.closed:
            wake = board.prepare(SHARER)
            with self._state:
                due = bool(self._orders)
            now = monotonic()
            if not due and now < read_at:
                # Woken early (a board wakes its sleepers for any key): sleep on.
                yield Pause(board, wake, read_at - now)
                continue
            read_at = now + self._recheck
            try:
                yield from self._sync_orders()
            except LockBackendError as exc:
                logger.debug("order sharing lost the store: %s", exc)
                yield Pause(board, board.prepare(BACKOFF), self._recheck)

    # -- closing -----------------------------------------------------------------

    def close(self) -> Steps[None]:
        """Give back what is still held; the driver then calls :meth:`disconnect`."""
        with self._state:
            if self.closed:
                return
            self.closed = True
            leftover = list(self._held.values())
        for lease in leftover:
            self._lose(lease, _CLOSED)
        self._board.close()
        with contextlib.suppress(LockBackendError, TimeoutError):
            yield Shielded(self._goodbye(leftover), self._lease_s)

    def _goodbye(self, leftover: list[Lease]) -> Steps[None]:
        if self._orders:  # learned just now: the others still hear of them
            yield from self._sync_orders()
        if leftover:
            yield from self._link.release(
                [lease.name for lease in leftover], [lease.token for lease in leftover]
            )
        yield from self._link.publish(self._stop_message)  # stops the listener now

    def disconnect(self) -> Steps[None]:
        """Let the store's connection go."""
        yield Shielded(self._link.close(), None)
