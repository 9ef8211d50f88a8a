"""Every example in the package's docstrings and README runs as a test."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import cc.core_helpers

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(cc.core_helpers.__path__, "cc.core_helpers.")
)
README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize("module_name", ["cc.core_helpers", *MODULES])
def test_docstring_examples(module_name: str) -> None:
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_every_helper_has_a_docstring_example() -> None:
    finder = doctest.DocTestFinder()
    for name in (
        "async_gather",
        "async_map",
        "async_run",
        "async_sleep",
        "async_wait_for",
    ):
        tests = finder.find(getattr(cc.core_helpers, name), name)
        assert any(test.examples for test in tests), name


def test_every_public_name_has_a_docstring() -> None:
    for name in cc.core_helpers.__all__:
        obj = getattr(cc.core_helpers, name)
        assert obj.__doc__ and obj.__doc__.strip(), name
        for attr, member in vars(obj).items():
            if attr.startswith("_") or not callable(member):
                continue
            assert member.__doc__, f"{name}.{attr} has no docstring"


def test_readme_examples_run() -> None:
    text = README.read_text()
    blocks = [part.split("```", 1)[0] for part in text.split("```python\n")[1:]]
    assert blocks
    for code in blocks:
        exec(compile(code, str(README), "exec"), {"__name__": "readme"})
