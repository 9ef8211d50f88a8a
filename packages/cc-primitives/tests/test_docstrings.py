"""Every example in the package's docstrings and README runs as a test."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import cc.primitives

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(cc.primitives.__path__, "cc.primitives.")
)
README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize("module_name", ["cc.primitives", *MODULES])
def test_docstring_examples(module_name: str) -> None:
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_every_public_name_has_a_docstring() -> None:
    for name in cc.primitives.__all__:
        obj = getattr(cc.primitives, name)
        assert obj.__doc__ and obj.__doc__.strip(), name
        for attr, member in vars(obj).items():
            if attr.startswith("_") or not callable(member):
                continue
            assert member.__doc__, f"{name}.{attr} has no docstring"


def test_readme_example_runs() -> None:
    text = README.read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})
