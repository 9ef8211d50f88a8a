"""The public surface of cc.redis: names, docstrings, examples, its dependencies."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import pytest

import cc.locks
import cc.redis

MODULES = sorted(
    info.name for info in pkgutil.walk_packages(cc.redis.__path__, "cc.redis.")
)


PUBLIC = [
    "RedisCapacityLimiter",
    "RedisCapacityLimiterStatistics",
    "RedisLockBackend",
    "RedisRateLimiter",
    "RedisRateLimiterStatistics",
]


def test_all_names_exist_and_are_shown_as_public() -> None:
    assert cc.redis.__all__ == PUBLIC
    for name in PUBLIC:
        assert getattr(cc.redis, name).__module__ == "cc.redis"
    assert isinstance(cc.redis.__version__, str)
    assert all(name.rpartition(".")[2].startswith("_") for name in MODULES)


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_method_has_a_docstring(name: str) -> None:
    public = getattr(cc.redis, name)
    assert public.__doc__
    for attr, member in inspect.getmembers(public):
        if attr.startswith("_") or not (
            callable(member) or isinstance(member, property)
        ):
            continue
        assert member.__doc__, f"{name}.{attr} has no docstring"


def test_it_is_a_lock_store_of_cc_locks() -> None:
    backend = cc.redis.RedisLockBackend("redis://localhost")
    assert isinstance(backend, cc.locks.lowlevel.LockStore)
    assert cc.locks.LockManager(backend=backend).backend is backend


@pytest.mark.parametrize("module_name", ["cc.redis", *MODULES])
def test_docstring_examples(module_name: str) -> None:
    result = doctest.testmod(importlib.import_module(module_name))
    assert result.failed == 0
