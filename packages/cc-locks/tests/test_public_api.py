"""The public surface of cc.locks: names, error types, docstrings, examples."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import cc.locks
from cc.locks import DeadlockError, LockOrderError, LockTimeoutError
from cc.primitives import ConcurrencyError

DESIGN_NAMES = {
    "LockInfo",
    "LockManager",
    "AsyncLockInfo",
    "AsyncLockManager",
    "get_lock_manager",
    "get_async_lock_manager",
    "LockOrderError",
    "DeadlockError",
}
MODULES = sorted(
    info.name for info in pkgutil.walk_packages(cc.locks.__path__, "cc.locks.")
)
README = Path(__file__).resolve().parents[1] / "README.md"


def test_all_lists_the_design_names_and_every_one_exists() -> None:
    assert set(cc.locks.__all__) >= DESIGN_NAMES
    assert len(cc.locks.__all__) == len(set(cc.locks.__all__))
    for name in cc.locks.__all__:
        obj = getattr(cc.locks, name)
        if inspect.isclass(obj):
            assert obj.__module__ == "cc.locks", name
    assert isinstance(cc.locks.__version__, str)


def test_error_hierarchy() -> None:
    assert issubclass(LockOrderError, ConcurrencyError)
    assert issubclass(LockOrderError, RuntimeError)
    assert issubclass(DeadlockError, LockOrderError)
    assert issubclass(LockTimeoutError, TimeoutError)
    assert issubclass(LockTimeoutError, ConcurrencyError)


def test_every_public_name_and_method_has_a_docstring() -> None:
    for name in cc.locks.__all__:
        obj = getattr(cc.locks, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue  # type aliases
        assert obj.__doc__ and obj.__doc__.strip(), name
        if not inspect.isclass(obj):
            continue
        for attr, member in inspect.getmembers(obj):
            if attr.startswith("_") or not (
                callable(member) or isinstance(member, property)
            ):
                continue
            assert member.__doc__, f"{name}.{attr} has no docstring"


@pytest.mark.parametrize("module_name", ["cc.locks", *MODULES])
def test_docstring_examples(module_name: str) -> None:
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_docstring_examples_exist() -> None:
    finder = doctest.DocTestFinder()
    examples = sum(len(t.examples) for t in finder.find(cc.locks))
    assert examples >= 15


def test_readme_examples_run() -> None:
    text = README.read_text()
    blocks = [part.split("```", 1)[0] for part in text.split("```python\n")[1:]]
    assert len(blocks) >= 2
    # The examples that need a Redis server run in test_redis_processes.py.
    for block in (b for b in blocks if "RedisLockBackend" not in b):
        exec(compile(block, str(README), "exec"), {"__name__": "readme"})
