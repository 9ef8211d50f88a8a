"""The learned order graph against a simple model of lockdep's rule.

Whatever nested acquisitions a thread makes, the manager must refuse one
exactly when the new "held -> taken" edge closes a cycle among the edges
seen so far, and must never refuse anything else.
"""

from __future__ import annotations

from contextlib import ExitStack

from hypothesis import given, settings
from hypothesis import strategies as st

from cc.locks import LockManager, LockOrderError

NAMES = ["a", "b", "c", "d", "e"]

chains = st.lists(
    st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True),
    min_size=1,
    max_size=12,
)


def _reaches(edges: set[tuple[str, str]], start: str, goal: str) -> bool:
    seen, todo = {start}, [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        for before, after in edges:
            if before == node and after not in seen:
                seen.add(after)
                todo.append(after)
    return False


@settings(max_examples=150, deadline=None)
@given(chains)
def test_a_refusal_happens_exactly_when_an_edge_closes_a_cycle(
    nestings: list[list[str]],
) -> None:
    manager = LockManager({name: None for name in NAMES})
    edges: set[tuple[str, str]] = set()
    for chain in nestings:
        expected_failure = None
        for index in range(1, len(chain)):
            edge = (chain[index - 1], chain[index])
            if edge in edges:
                continue
            if _reaches(edges, edge[1], edge[0]):
                expected_failure = index
                break
            edges.add(edge)
        failed_at = None
        refusal: LockOrderError | None = None
        with ExitStack() as stack:
            for index, name in enumerate(chain):
                try:
                    stack.enter_context(manager.acquire(name))
                except LockOrderError as error:
                    failed_at, refusal = index, error
                    break
        assert failed_at == expected_failure
        if refusal is not None:
            held, taken = chain[failed_at - 1], chain[failed_at]
            assert refusal.cycle[:2] == (held, taken)
            assert refusal.cycle[-1] == held
        assert manager.held_locks() == []
