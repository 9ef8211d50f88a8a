"""cc.concurrency re-exports cc.redis' names exactly when cc-redis is installed."""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Iterator

import pytest

import cc.concurrency
from cc.concurrency import _reexport

REDIS_NAMES = [
    "RedisLockBackend",
    "RedisRateLimiter",
    "RedisCapacityLimiter",
    "RedisRateLimiterStatistics",
    "RedisCapacityLimiterStatistics",
]


@pytest.fixture
def reimport(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Import cc.concurrency again under a patched sys.modules; restore it after."""
    monkeypatch.setattr(_reexport, "_failures", {})
    yield monkeypatch
    monkeypatch.undo()
    importlib.reload(cc.concurrency)


def test_without_cc_redis_its_names_are_absent_and_say_how_to_get_them(
    reimport: pytest.MonkeyPatch,
) -> None:
    reimport.setitem(sys.modules, "cc.redis", None)  # as if not installed
    module = importlib.reload(cc.concurrency)
    for name in REDIS_NAMES:
        assert name not in module.__all__
        with pytest.raises(
            AttributeError, match=r'pip install "cc-concurrency\[redis\]"'
        ):
            getattr(module, name)
    assert _reexport.failures() == {}


def test_with_cc_redis_its_names_are_re_exported(reimport: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("cc.redis")
    for name in REDIS_NAMES:
        setattr(fake, name, type(name, (), {}))
    reimport.setitem(sys.modules, "cc.redis", fake)
    module = importlib.reload(cc.concurrency)
    for name in REDIS_NAMES:
        assert name in module.__all__
        assert getattr(module, name) is getattr(fake, name)


def test_a_broken_cc_redis_is_reported(reimport: pytest.MonkeyPatch) -> None:
    reimport.setitem(sys.modules, "cc.redis", types.ModuleType("cc.redis"))
    module = importlib.reload(cc.concurrency)
    assert not set(REDIS_NAMES) & set(module.__all__)
    assert "cc-redis" in _reexport.failures()
