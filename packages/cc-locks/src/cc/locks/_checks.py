"""The checks of a lock engine: declared and learned order, cycles, reports.

:class:`OrderChecks` is the part of :class:`~cc.locks._engine.LockEngine`
that decides whether a holder may take a lock; the engine sets its state.
"""

from __future__ import annotations

import itertools
import logging
import threading
import weakref
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from cc.locks import _views
from cc.locks._errors import LockOrderError
from cc.locks._hierarchy import Policy
from cc.locks._order import Edge, OrderGraph, Path
from cc.locks._records import Holder, LockRecord, Plan, Site, format_site
from cc.locks.lowlevel import RemoteWait, SharedOrder, SharingSession

__all__ = ["OrderChecks", "RecordT", "retired_error"]

logger = logging.getLogger("cc.locks")
RecordT = TypeVar("RecordT", bound=LockRecord[Any])
_MAX_REPORTS = 256  # kept for detect_potential_deadlocks(); the oldest go first


def retired_error(record: LockRecord[Any]) -> RuntimeError:
    """Return the error for using a lock after its manager was reset."""
    return RuntimeError(
        f"lock {record.name!r} is no longer registered (its manager was reset)"
    )


class OrderChecks(Generic[RecordT]):
    """Order checks, cycles across processes and reports of one manager's locks."""

    kind: str
    policy: Policy
    checking: bool
    where: str
    sharing: SharingSession | None
    meta: threading.RLock
    records: dict[str, RecordT]
    reports: dict[tuple[str, ...], str]
    waiting: set[Holder]
    _graph: OrderGraph
    _learned_plans: weakref.WeakSet[Plan[RecordT]]

    # -- order checks -------------------------------------------------------------

    def prepare(self, record: RecordT, holder: Holder, site: Site) -> bool:
        """Check ``holder`` taking ``record``; True if it re-entered it instead.

        :raises LockOrderError: for an order violation (policy ``"raise"``)
        :raises RuntimeError: if the manager was reset
        """
        if record._owner is holder:
            record.reenter()
            return True
        stack = holder.stack
        if stack and self.checking:
            order = record._order
            if order is not None and order < holder.ceiling():
                key, message, cycle = _views.declared_violation(
                    record, holder, site, self.where
                )
                self._on_inversion(key, message, cycle)
            top = stack[-1]
            if (order is None or top._order is None) and not self._graph.knows(
                top._name, record._name
            ):
                self._learn(top, record, holder, site)
        if record._retired:
            raise retired_error(record)
        return False

    def _learn(
        self, top: LockRecord[Any], record: RecordT, holder: Holder, site: Site
    ) -> None:
        who = holder.describe() + self.where
        path = self._add_edge(
            top._name, record._name, (top._order, record._order),
            Edge(who, top._site, site),
        )  # fmt: skip
        sharing = self.sharing
        if sharing is not None and (path is None or self.policy == "warn"):
            # Taken, so the other processes learn it too (a refused one was not).
            sharing.share_order(
                SharedOrder(top._name, record._name, who, format_site(top._site),
                            format_site(site))
            )  # fmt: skip
        if path is not None:
            self._on_inversion(
                *_views.inversion(top, record, holder, site, path, self.kind,
                                  self.where)
            )  # fmt: skip

    def _add_edge(
        self, before: str, after: str, orders: tuple[int | None, int | None],
        edge: Edge,
    ) -> Path | None:  # fmt: skip
        """Learn ``before -> after``; return the path it would close, if any."""
        graph = self._graph
        with self.meta:
            forgotten = graph.forgotten
            path = graph.learn(
                before, after, orders, edge, keep_cycle=self.policy == "warn"
            )
            if graph.forgotten != forgotten:  # plans may rest on forgotten edges
                for plan in list(self._learned_plans):
                    plan.learned = False
                self._learned_plans.clear()
        return path

    def merge_order(self, edges: Sequence[SharedOrder]) -> None:
        """Learn the orders other processes published; report inversions.

        An inversion found here is reported and logged once, never raised: no
        caller is taking a lock.
        """
        if not self.checking:
            return
        for shared in edges:
            if self._graph.knows(shared.before, shared.after):
                continue
            orders = (self._declared(shared.before), self._declared(shared.after))
            edge = Edge(shared.holder, shared.before_site, shared.after_site)
            path = self._add_edge(shared.before, shared.after, orders, edge)
            if path is not None:
                key, message, _ = _views.shared_inversion(shared, path, self.kind)
                if self.report(key, message):
                    logger.warning("%s", message)

    def _declared(self, name: str) -> int | None:
        record = self.records.get(name)
        return None if record is None else record._order

    def remote_cycle(
        self, holder: Holder, site: Site, cycle: Sequence[RemoteWait],
        seen_here_only: bool = False,
    ) -> RemoteWait:  # fmt: skip
        """Handle a wait-for cycle that a store found across processes.

        ``cycle[0]`` is ``holder``'s own wait (which it began at ``site``).
        Every member finds the same cycle and picks the same victim, the
        youngest waiter; with the policy "raise" only the victim raises, with
        "warn" each member logs it once and goes on waiting (until its
        timeout). A cycle through waits of this process that the store does
        not know of (``seen_here_only``) has ``holder`` as its victim.

        :return: the victim
        :raises DeadlockError: if ``holder`` is the victim (policy "raise")
        """
        victim = cycle[0] if seen_here_only else _views.youngest(cycle)
        raising = self.policy == "raise"
        key, report, error = _views.remote_deadlock(cycle, victim, site, raising)
        first = self.report(key, report)
        if raising:
            if victim.node == cycle[0].node:
                raise error
        elif first:
            logger.warning("%s", report)
        return victim

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

    def _decided(self, records: tuple[RecordT, ...]) -> bool:
        """Whether taking ``records`` in a row from an empty hand needs no check."""
        graph = self._graph
        return all(
            (a._order is not None and b._order is not None)
            or graph.knows(a._name, b._name)
            for a, b in itertools.pairwise(records)
        )

    def _learned(self, plan: Plan[RecordT]) -> None:
        if self._decided(plan.records):
            plan.learned = True
            self._learned_plans.add(plan)

    def local_chain(self, start: int, end: Holder) -> list[tuple[Holder, str]] | None:
        """Follow this manager's waits from the holder ``id()`` ``start`` to ``end``.

        :return: each ``(waiter, name of the lock it waits for)`` (the holder of
            each lock is the next waiter, the last one's ``end``), or ``None``
        """
        with self.meta:
            node = next((h for h in self.waiting if id(h) == start), None)
            chain: list[tuple[Holder, str]] = []
            while node is not None and node is not end:
                link = _views.wait_step(node)
                if link is None or len(chain) > len(self.waiting):
                    return None
                chain.append((node, link[0].name))
                node = link[1]
            return chain if node is end and chain else None
