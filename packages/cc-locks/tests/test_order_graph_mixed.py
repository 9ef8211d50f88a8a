"""The order checks against a model, with declared and learned locks mixed.

A nested acquisition is refused exactly when a declared order says so, or
when the new "held -> taken" edge (one of its ends of learned order) closes
a cycle among the edges seen so far and the declared orders (``a -> b``
whenever ``a`` is declared below ``b``). Pairs of declared locks are never
learned: the declared check decides them.
"""

from __future__ import annotations

import itertools
from contextlib import ExitStack

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cc.locks import LockManager, LockOrderError, _order

DECLARED = {"a": 1, "b": 2, "c": 3}
LEARNED = ["x", "y", "z"]
NAMES = [*DECLARED, *LEARNED]

chains = st.lists(
    st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True),
    min_size=1,
    max_size=14,
)


def _reaches(edges: set[tuple[str, str]], start: str, goal: str) -> bool:
    implicit = {(p, q) for p in DECLARED for q in DECLARED if DECLARED[p] < DECLARED[q]}
    seen, todo = {start}, [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        for before, after in edges | implicit:
            if before == node and after not in seen:
                seen.add(after)
                todo.append(after)
    return False


@settings(max_examples=200, deadline=None)
@given(chains)
def test_a_refusal_happens_exactly_when_the_orders_say_so(
    nestings: list[list[str]],
) -> None:
    manager = LockManager({name: DECLARED.get(name) for name in NAMES})
    edges: set[tuple[str, str]] = set()
    for chain in nestings:
        expected = None
        for index in range(1, len(chain)):
            held, taken = chain[index - 1], chain[index]
            ceiling = max(
                (DECLARED[n] for n in chain[:index] if n in DECLARED), default=0
            )
            if taken in DECLARED and DECLARED[taken] < ceiling:
                expected = index
                break
            if (held in DECLARED and taken in DECLARED) or (held, taken) in edges:
                continue
            if _reaches(edges, taken, held):
                expected = index
                break
            edges.add((held, taken))
        failed_at = None
        with ExitStack() as stack:
            for index, name in enumerate(chain):
                try:
                    stack.enter_context(manager.acquire(name))
                except LockOrderError:
                    failed_at = index
                    break
        assert failed_at == expected
        assert manager.held_locks() == []


def test_a_cycle_through_declared_orders_is_found() -> None:
    # x after b, then a after x: with a declared below b, x sits between them.
    manager = LockManager({"a": 1, "b": 2, "x": None})
    with manager.acquire("b"), manager.acquire("x"):
        pass
    with pytest.raises(LockOrderError) as caught:
        with manager.acquire("x"), manager.acquire("a"):
            pass  # pragma: no cover
    assert "'a' is declared before 'b'" in str(caught.value)
    assert caught.value.cycle == ("x", "a", "b", "x")


def test_memory_is_bounded_and_a_reported_inversion_stays_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_order, "MAX_EDGES", 32)
    names = [f"n{i}" for i in range(80)]
    manager = LockManager({name: None for name in [*names, "p", "q", "u", "v"]})
    with manager.acquire("p"), manager.acquire("q"):  # learned first: forgotten later
        pass
    with manager.acquire("u"), manager.acquire("v"):
        pass
    with pytest.raises(LockOrderError), manager.acquire("v"), manager.acquire("u"):
        pass  # pragma: no cover
    for before, after in itertools.pairwise(names):  # 79 new edges
        with manager.acquire(before), manager.acquire(after):
            pass
    graph = manager._engine._graph
    assert len(graph._age) <= 32 and graph.forgotten
    # The inversion seen stays reported: its edge u -> v is never forgotten.
    with pytest.raises(LockOrderError), manager.acquire("v"), manager.acquire("u"):
        pass  # pragma: no cover
    # An old edge is forgotten: the opposite order is now learned without a word.
    with manager.acquire("q"), manager.acquire("p"):
        pass
    with pytest.raises(LockOrderError), manager.acquire("p"), manager.acquire("q"):
        pass  # pragma: no cover
    assert manager.held_locks() == []


def test_a_plan_resting_on_a_forgotten_edge_is_checked_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_order, "MAX_EDGES", 16)
    names = [f"n{i}" for i in range(40)]
    manager = LockManager({name: None for name in [*names, "p", "q"]})
    pair = manager.acquire("p", "q")
    with pair, pair:  # learns p -> q; the plan is taken unchecked from now on
        pass
    for before, after in itertools.pairwise(names):
        with manager.acquire(before), manager.acquire(after):
            pass
    with manager.acquire("q"), manager.acquire("p"):  # p -> q was forgotten
        pass
    with pytest.raises(LockOrderError), pair:  # checked again, and refused
        pass  # pragma: no cover
