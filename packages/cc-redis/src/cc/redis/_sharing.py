"""Deadlock detection across processes: the part of a lease session that shares.

A :class:`~cc.redis._lease.LeaseSession` is a
:class:`~cc.locks.lowlevel.SharingSession`: each try of a waiter publishes
its wait and follows the chain of waits and holders in the same script (see
``take`` there), and :class:`SharedChecks` does the rest: it closes a chain
that ends at a holder of this process through the manager's own waits,
publishes the lock orders the manager learns and hands it those that other
processes published (a capped stream), and answers the wait graph.
"""

from __future__ import annotations

import logging
import threading
from time import monotonic
from typing import Any

from cc.locks import LockBackendError
from cc.locks.lowlevel import (
    Pause,
    RemoteHolder,
    RemoteWait,
    Reporter,
    SharedOrder,
    Steps,
)
from cc.redis._client import RedisLink, Taken

__all__ = ["BACKOFF", "SHARER", "SharedChecks"]

logger = logging.getLogger(__name__.rpartition(".")[0])  # "cc.redis"

# Board keys of order sharing and of a back-off after losing the store.
SHARER, BACKOFF = "\x00sharer", "\x00backoff"
# Shared learned orders: as many as a manager's own order graph keeps (the
# oldest go first), and how many are read in one round trip.
_MAX_SHARED_ORDERS = 16_384
_ORDER_BATCH = 1024


class SharedChecks:
    """What a lease session shares with other processes for the manager's checks.

    A base of :class:`~cc.redis._lease.LeaseSession`, which sets the state
    declared below.
    """

    closed: bool
    _engine: Reporter
    _link: RedisLink
    _board: Any
    _state: threading.Lock
    _orders: list[SharedOrder]
    _orders_read: str
    _id: str
    _host: str
    _pid: int
    _recheck: float

    def _cycle_through_here(self, holder: Any, site: Any, taken: Taken) -> None:
        """Close a chain that ended at a holder of this session, if it can.

        That holder publishes no wait: it may wait for a lock that another
        thread or task of this process holds. If such waits lead back to
        ``holder``, the cycle is seen here only, so ``holder`` is its victim.
        """
        assert taken.home is not None
        start = int(taken.home.rpartition(".")[2], 16)
        local = self._engine.local_chain(start, holder)
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
        """Share learned orders until closed, and hear of the others' orders.

        Publishes at once when an order is learned here, and reads what the
        other processes published every ``recheck_interval``.
        """
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
