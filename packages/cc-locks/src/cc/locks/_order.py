"""The learned lock order: which lock was taken while holding which.

As the Linux kernel's lockdep: taking ``b`` while holding ``a`` records the
edge ``a -> b``; an edge that closes a cycle is a potential deadlock even if
nothing ever blocked. Declared orders count as edges too, so a cycle through
locks of both kinds is found.

A check costs the same however much was learned: the graph keeps a
topological order (Pearce and Kelly's dynamic algorithm), so an edge that
agrees with it costs a comparison, and one that does not searches only the
locks ranked between its ends. Memory is bounded: beyond :data:`MAX_EDGES`
the oldest edges are forgotten, except those along a remembered inversion
(up to :data:`MAX_INVERSIONS`), so a recurring inversion is reported again.
"""

from __future__ import annotations

import bisect
import itertools
from typing import NamedTuple

from cc.locks._records import Site

__all__ = ["MAX_EDGES", "MAX_INVERSIONS", "Edge", "OrderGraph", "Path"]

MAX_EDGES = 16_384
MAX_INVERSIONS = 1_024


class Edge(NamedTuple):
    """Where ``before -> after`` was first seen (str sites: another process)."""

    holder: str
    before_site: Site | str | None
    after_site: Site | str | None


#: A chain of edges ``(before, after, where it was seen)``; ``None`` for a
#: declared order.
Path = list[tuple[str, str, "Edge | None"]]


class OrderGraph:
    """Learned and declared "taken before" edges between locks, kept acyclic."""

    def __init__(self) -> None:
        self._after: dict[str, dict[str, Edge]] = {}  # learned out-edges
        self._before: dict[str, set[str]] = {}  # learned in-edges
        self._rank: dict[str, int] = {}  # a topological order of the nodes
        self._order: dict[str, int] = {}  # declared orders of the nodes
        self._declared: list[tuple[int, str]] = []  # (order, name), sorted
        self._age: dict[tuple[str, str], None] = {}  # learned edges, oldest first
        self._inversions: dict[tuple[str, str], Path] = {}
        self._accepted: set[tuple[str, str]] = set()  # inversions to let pass
        self._pinned: dict[tuple[str, str], int] = {}  # edges on an inversion
        self._ranks = itertools.count()
        self.forgotten = 0  # how many times edges were forgotten

    def knows(self, before: str, after: str) -> bool:
        """Whether ``before -> after`` needs no check (learned, or let pass)."""
        edges = self._after.get(before)
        if edges is not None and after in edges:
            return True
        return (before, after) in self._accepted

    def clear(self) -> None:
        """Forget everything."""
        self.__init__()  # type: ignore[misc]

    def learn(
        self, before: str, after: str, orders: tuple[int | None, int | None],
        edge: Edge, keep_cycle: bool,
    ) -> Path | None:  # fmt: skip
        """Record ``before -> after`` (their declared orders: ``orders``).

        :param keep_cycle: let the inversion pass from now on (policy "warn")
        :return: the chain from ``after`` back to ``before`` that the edge
            would close into a cycle (the edge is then not added), or ``None``
        """
        if orders[0] is not None and orders[1] is not None:
            return None  # declared orders decide
        known = self._inversions.get((before, after))
        if known is not None:  # found before: no search, the same report
            if keep_cycle:
                self._accepted.add((before, after))
            return known
        for name, order in zip((before, after), orders, strict=True):
            self._add(name, order)
        path = self._insert(before, after)
        if path is None:
            self._after.setdefault(before, {})[after] = edge
            self._before.setdefault(after, set()).add(before)
            self._age[before, after] = None
            if len(self._age) > MAX_EDGES:
                self._forget()
            return None
        self._remember(before, after, path)
        if keep_cycle:
            self._accepted.add((before, after))
        return path

    # -- the topological order ---------------------------------------------------

    def _add(self, name: str, order: int | None) -> None:
        if name in self._rank:
            return
        self._rank[name] = next(self._ranks)
        if order is not None:  # place it between its declared neighbours
            self._order[name] = order
            index = bisect.bisect(self._declared, (order, name))
            self._declared.insert(index, (order, name))
            if index + 1 < len(self._declared):
                self._insert(name, self._declared[index + 1][1])

    def _declared_next(self, name: str, step: int) -> str | None:
        order = self._order.get(name)
        if order is None:
            return None
        index = bisect.bisect_left(self._declared, (order, name)) + step
        return self._declared[index][1] if 0 <= index < len(self._declared) else None

    def _insert(self, before: str, after: str) -> Path | None:
        """Keep the order valid with ``before -> after``; or return the cycle."""
        rank = self._rank
        low, high = rank[after], rank[before]
        if low > high:
            return None  # already in order: the usual case, one comparison
        # Forward from `after` among the nodes ranked below `before`.
        came: dict[str, str | None] = {after: None}
        todo = [after]
        while todo:
            node = todo.pop()
            for nxt in (*self._after.get(node, ()), self._declared_next(node, 1)):
                if nxt is None or nxt in came or rank[nxt] > high:
                    continue
                came[nxt] = node
                if nxt == before:
                    return self._path(came, before)
                todo.append(nxt)
        # Backward from `before` among the nodes ranked above `after`.
        back = {before}
        todo = [before]
        while todo:
            node = todo.pop()
            for prev in (*self._before.get(node, ()), self._declared_next(node, -1)):
                if prev is not None and prev not in back and rank[prev] > low:
                    back.add(prev)
                    todo.append(prev)
        # Those that reach `before` go first, then those `after` reaches.
        moved = sorted(back, key=rank.__getitem__) + sorted(came, key=rank.__getitem__)
        for node, value in zip(moved, sorted(rank[n] for n in moved), strict=True):
            rank[node] = value
        return None

    def _path(self, came: dict[str, str | None], end: str) -> Path:
        path: Path = []
        node: str | None = end
        while (prev := came[node]) is not None:  # type: ignore[index]
            path.append((prev, node, self._after.get(prev, {}).get(node)))  # type: ignore[arg-type]
            node = prev
        path.reverse()
        return path

    # -- memory ----------------------------------------------------------------------

    def _remember(self, before: str, after: str, path: Path) -> None:
        if len(self._inversions) >= MAX_INVERSIONS:
            (old, old_path) = next(iter(self._inversions.items()))
            del self._inversions[old]
            self._accepted.discard(old)
            for a, b, _ in old_path:
                self._pinned[a, b] -= 1
                if not self._pinned[a, b]:
                    del self._pinned[a, b]
        self._inversions[before, after] = path
        for a, b, _ in path:
            self._pinned[a, b] = self._pinned.get((a, b), 0) + 1

    def _forget(self) -> None:
        """Forget the oldest eighth of the learned edges (not pinned ones)."""
        self.forgotten += 1
        for before, after in list(itertools.islice(self._age, MAX_EDGES // 8)):
            if (before, after) in self._pinned:
                continue
            del self._age[before, after]
            del self._after[before][after]
            self._before[after].discard(before)
