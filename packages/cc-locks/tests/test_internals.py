"""Corners of the private helpers that the public API cannot reach."""

from __future__ import annotations

import sys

from cc.locks._records import caller_site, format_site
from cc.locks._waits import all_cycles, cycle_from


def test_format_site_names_file_line_and_function() -> None:
    site = caller_site(0)
    line = sys._getframe(0).f_lineno - 1
    assert format_site(site) == (
        f"{__file__}:{line} in test_format_site_names_file_line_and_function"
    )
    assert format_site(None) == "an unknown place"


def test_wait_cycles_on_a_plain_graph() -> None:
    # a -> b -> c -> a is a cycle; d -> a leads into it; e -> f ends; g -> g.
    edges = {"a": "b", "b": "c", "c": "a", "d": "a", "e": "f", "g": "g"}

    def step(node: str) -> tuple[str, str] | None:
        nxt = edges.get(node)
        return None if nxt is None else (f"{node}{nxt}", nxt)

    found = all_cycles(["d", "e", "a", "b", "g", "f"], step)
    assert [(start, [e for e, _ in path]) for start, path in found] == [
        ("a", ["ab", "bc", "ca"]),
        ("g", ["gg"]),
    ]
    assert cycle_from("a", ("ab", "b"), step) == [("ab", "b"), ("bc", "c"), ("ca", "a")]
    assert cycle_from("d", ("da", "a"), step) is None  # loops elsewhere
    assert cycle_from("e", ("ef", "f"), step) is None  # ends
