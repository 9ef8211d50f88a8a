"""Every example in the package's docstrings and README runs as a test."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import cc.queues

MODULES = sorted(
    info.name for info in pkgutil.walk_packages(cc.queues.__path__, "cc.queues.")
)
README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize("module_name", ["cc.queues", *MODULES])
def test_docstring_examples(module_name: str) -> None:
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_the_public_classes_have_examples() -> None:
    parser = doctest.DocTestParser()
    for name in cc.queues.__all__:
        if name == "BatchSummary":
            continue  # a plain record, shown in WorkQueue's example
        docstring = getattr(cc.queues, name).__doc__
        assert parser.get_examples(docstring), f"{name} has no example"
    assert parser.get_examples(cc.queues.WorkQueue.from_config.__doc__ or "")


def test_every_public_name_has_a_docstring() -> None:
    for name in cc.queues.__all__:
        obj = getattr(cc.queues, name)
        assert obj.__doc__ and obj.__doc__.strip(), name
        for attr, member in vars(obj).items():
            if attr.startswith("_"):
                continue
            if isinstance(member, property | classmethod) or callable(member):
                assert member.__doc__, f"{name}.{attr} has no docstring"


def test_readme_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    text = README.read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    assert "item 13 failed: unlucky" in out
    assert "99 1 144" in out
    assert "'enqueued': 20" in out
