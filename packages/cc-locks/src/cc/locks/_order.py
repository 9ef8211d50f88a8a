"""The learned lock order: which lock was taken while holding which.

This follows the Linux kernel's lockdep: whenever a lock is taken while
another is held, the edge "held -> taken" is recorded with the place it
happened, and a new edge that closes a cycle is a potential deadlock even if
no thread ever blocked. Nodes are lock names, so the graph does not depend on
where the locks live.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from cc.locks._records import Site

__all__ = ["Edge", "OrderGraph"]


@dataclass(frozen=True)
class Edge:
    """Where the learned order ``before -> after`` was first seen."""

    holder: str
    before_site: Site | None
    after_site: Site | None


#: A chain of learned edges: ``(before, after, where it was seen)`` steps.
Path = list[tuple[str, str, Edge]]


class OrderGraph:
    """The learned "taken before" edges between locks, and their cycles."""

    __slots__ = ("_after",)

    def __init__(self) -> None:
        self._after: dict[str, dict[str, Edge]] = {}

    def knows(self, before: str, after: str) -> bool:
        """Return whether the edge ``before -> after`` is known."""
        edges = self._after.get(before)
        return edges is not None and after in edges

    def learn(
        self, before: str, after: str, edge: Edge, keep_cycle: bool
    ) -> Path | None:
        """Record ``before -> after``; return the path it contradicts, if any.

        :param keep_cycle: record the edge even if it closes a cycle (so that
            the same inversion is not searched for again)
        :return: the chain of known edges from ``after`` back to ``before``
            that the new edge closes into a cycle, or ``None``
        """
        path = self._path(after, before)
        if path is None or keep_cycle:
            self._after.setdefault(before, {})[after] = edge
        return path

    def clear(self) -> None:
        """Forget everything learned."""
        self._after.clear()

    def _path(self, source: str, target: str) -> Path | None:
        """Return the shortest chain of learned edges from ``source`` to ``target``."""
        came_from: dict[str, tuple[str, Edge] | None] = {source: None}
        queue = deque([source])
        while queue:
            node = queue.popleft()
            for nxt, edge in self._after.get(node, {}).items():
                if nxt in came_from:
                    continue
                came_from[nxt] = (node, edge)
                if nxt == target:
                    path = []
                    step = nxt
                    while (link := came_from[step]) is not None:
                        path.append((link[0], step, link[1]))
                        step = link[0]
                    path.reverse()
                    return path
                queue.append(nxt)
        return None
