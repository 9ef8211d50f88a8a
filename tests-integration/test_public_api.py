"""The public API contract of DESIGN.md, checked against the installed packages."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types

import pytest

CONTRACT = {
    "cc.primitives": [
        "Lock", "Semaphore", "CapacityLimiter", "Event", "Condition",
        "RateLimiter", "ConcurrencyError",
    ],
    "cc.queues": [
        "QueueStatus", "QueueConfig", "BoundedQueue", "WorkQueue", "QueueStateError",
    ],
    "cc.locks": [
        "LockInfo", "LockManager", "AsyncLockInfo", "AsyncLockManager",
        "get_lock_manager", "get_async_lock_manager", "LockOrderError",
        "DeadlockError",
    ],
    "cc.core_helpers": [
        "async_gather", "async_run", "async_sleep", "async_wait_for",
        "async_map", "ValidationError",
    ],
    # installed with cc-concurrency[redis]
    "cc.redis": ["RedisLockBackend", "RedisRateLimiter", "RedisCapacityLimiter"],
}  # fmt: skip
# Public submodules, for sibling packages (everything else is private).
PUBLIC_SUBMODULES = {"cc.primitives": ["lowlevel"], "cc.locks": ["lowlevel"]}


@pytest.mark.parametrize("module_name", sorted(CONTRACT))
def test_contract_names_importable_from_module_and_meta(module_name: str) -> None:
    module = importlib.import_module(module_name)
    meta = importlib.import_module("cc.concurrency")
    for name in CONTRACT[module_name]:
        assert name in module.__all__, f"{module_name}.__all__ lacks {name}"
        obj = getattr(module, name)
        assert getattr(meta, name) is obj, f"cc.concurrency.{name} differs"
        assert inspect.getdoc(obj), f"{module_name}.{name} has no docstring"
    assert isinstance(meta.__version__, str)


def _public_modules() -> list[str]:
    names = ["cc.concurrency"]
    for module_name in CONTRACT:
        names.append(module_name)
        for submodule in PUBLIC_SUBMODULES.get(module_name, []):
            names.append(f"{module_name}.{submodule}")
    return names


@pytest.mark.parametrize("module_name", _public_modules())
def test_all_matches_what_the_module_exports(module_name: str) -> None:
    """__all__ lists exactly the public names the module defines or re-exports
    from cc (submodules and the version are not part of __all__)."""
    module = importlib.import_module(module_name)
    declared = set(module.__all__)
    assert len(declared) == len(module.__all__), "duplicates in __all__"
    for name in declared:
        assert hasattr(module, name), f"{module_name}.__all__ names missing {name}"
    exported = set()
    for name, obj in vars(module).items():
        if name.startswith("_") or isinstance(obj, types.ModuleType):
            continue
        origin = getattr(obj, "__module__", "") or ""
        if origin.startswith("cc."):
            exported.add(name)
    # every cc class or function the module exposes is declared (type
    # aliases such as Policy carry no __module__ and are checked by hasattr)
    assert exported <= declared, exported - declared


@pytest.mark.parametrize("module_name", sorted(CONTRACT))
def test_implementation_modules_are_private(module_name: str) -> None:
    module = importlib.import_module(module_name)
    public = PUBLIC_SUBMODULES.get(module_name, [])
    for info in pkgutil.iter_modules(module.__path__):
        if info.name in public:
            continue
        assert info.name.startswith("_"), f"{module_name}.{info.name} is not private"


def test_error_hierarchy() -> None:
    from cc.concurrency import (
        ConcurrencyError,
        DeadlockError,
        LockOrderError,
        QueueStateError,
        ValidationError,
    )

    assert issubclass(QueueStateError, ConcurrencyError)
    assert issubclass(QueueStateError, RuntimeError)
    assert issubclass(LockOrderError, ConcurrencyError)
    assert issubclass(LockOrderError, RuntimeError)
    assert issubclass(DeadlockError, LockOrderError)
    assert issubclass(ValidationError, ConcurrencyError)
    assert issubclass(ValidationError, ValueError)


def test_namespace_package_has_no_init() -> None:
    import cc

    assert getattr(cc, "__file__", None) is None  # PEP 420 namespace
