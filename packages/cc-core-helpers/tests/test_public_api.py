"""The public surface of cc.core_helpers is what DESIGN.md promises."""

from __future__ import annotations

import re

import cc.core_helpers
from cc.core_helpers import ValidationError
from cc.primitives import ConcurrencyError

DESIGN_NAMES = {
    "async_gather",
    "async_run",
    "async_sleep",
    "async_wait_for",
    "async_map",
    "ValidationError",
}


def test_all_lists_the_design_names_and_nothing_private() -> None:
    exported = set(cc.core_helpers.__all__)
    assert exported >= DESIGN_NAMES
    assert exported - DESIGN_NAMES == {"AsyncMap"}
    assert len(cc.core_helpers.__all__) == len(exported)
    for name in exported:
        assert not name.startswith("_")
        assert getattr(cc.core_helpers, name).__module__.startswith("cc.core_helpers")


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from cc.core_helpers import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(cc.core_helpers.__all__)


def test_validation_error_is_a_concurrency_error_and_a_value_error() -> None:
    assert issubclass(ValidationError, ConcurrencyError)
    assert issubclass(ValidationError, ValueError)


def test_version() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", cc.core_helpers.__version__)
