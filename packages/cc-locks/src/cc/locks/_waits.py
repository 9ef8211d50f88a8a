"""The wait-for graph (waiter -> holder of the lock it waits for) and its cycles.

Every node has at most one edge out (one lock awaited, one holder each), given
as a ``step`` function, so that the waits of one manager or of many
processes are searched alike. A cycle is a deadlock.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

__all__ = ["all_cycles", "cycle_from"]

NodeT = TypeVar("NodeT", bound=Hashable)
EdgeT = TypeVar("EdgeT")

#: ``step(node)`` is ``(edge, next node)``, or ``None`` where the chain ends.
Step = Callable[[NodeT], "tuple[EdgeT, NodeT] | None"]


def cycle_from(
    start: NodeT, first: tuple[EdgeT, NodeT], step: Step[NodeT, EdgeT]
) -> list[tuple[EdgeT, NodeT]] | None:
    """Follow the chain from ``start``, whose next edge would be ``first``.

    :return: the ``(edge, node)`` steps of a cycle that comes back to
        ``start``, or ``None`` if the chain ends or loops elsewhere. The cost
        is the length of the chain.
    """
    path = [first]
    seen = {start}
    node = first[1]
    while node is not start:
        if node in seen:
            return None
        seen.add(node)
        link = step(node)
        if link is None:
            return None
        path.append(link)
        node = link[1]
    return path


def all_cycles(
    nodes: Iterable[NodeT], step: Step[NodeT, EdgeT]
) -> list[tuple[NodeT, list[tuple[EdgeT, NodeT]]]]:
    """Return every cycle reachable from ``nodes``, each once, in one pass.

    Each node is visited once (a walk stops where an earlier walk went), so
    the cost is linear in the nodes and edges reached.

    :return: ``(first node, steps)`` for each cycle; the steps come back to
        the first node
    """
    mark: dict[NodeT, int] = {}  # node -> the walk that reached it first
    found: list[tuple[NodeT, list[tuple[EdgeT, NodeT]]]] = []
    for walk, start in enumerate(nodes):
        if start in mark:
            continue
        order: list[NodeT] = []
        node: NodeT | None = start
        while node is not None:
            seen = mark.get(node)
            if seen is not None:
                if seen == walk:  # this walk closed a cycle (rare): its links again
                    cycle = order[order.index(node) :]
                    links = [step(n) for n in cycle]
                    if None not in links:
                        found.append((node, links))  # type: ignore[arg-type]
                break
            mark[node] = walk
            order.append(node)
            link = step(node)
            node = None if link is None else link[1]
    return found
