"""The public surface: exported names, typing marker, and backend neutrality."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import cc.queues

SOURCES = Path(cc.queues.__file__).resolve().parent


def test_the_design_names_are_exported() -> None:
    assert set(cc.queues.__all__) >= {
        "QueueStatus",
        "QueueConfig",
        "BoundedQueue",
        "WorkQueue",
        "QueueStateError",
    }
    for name in cc.queues.__all__:
        assert getattr(cc.queues, name).__module__.startswith("cc.queues."), name
    assert cc.queues.__version__


def test_every_public_object_is_in_all() -> None:
    public = {
        name
        for name, value in vars(cc.queues).items()
        if not name.startswith("_") and isinstance(value, type)
    }
    assert public == set(cc.queues.__all__)


def test_implementation_modules_are_private() -> None:
    modules = {p.stem for p in SOURCES.glob("*.py")} - {"__init__", "__about__"}
    assert modules
    assert all(name.startswith("_") for name in modules)
    for name in modules:
        module = importlib.import_module(f"cc.queues.{name}")
        for exported in getattr(module, "__all__", []):
            assert hasattr(module, exported), f"{name}.{exported}"


def test_package_is_typed() -> None:
    assert (SOURCES / "py.typed").is_file()


def test_no_module_imports_a_backend_directly() -> None:
    # Async code goes through anyio only, so it runs on asyncio and trio alike.
    for path in SOURCES.glob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            else:
                continue
            for name in names:
                root = name.split(".")[0]
                assert root not in {"asyncio", "trio", "uvloop"}, f"{path.name}: {name}"
                if root == "cc":
                    assert name.split(".")[1] in {"queues", "primitives"}, name
