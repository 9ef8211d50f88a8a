"""benchmarks/instructions.py: instruction counts per operation, and their table."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tools.workspace import ROOT


def _load() -> ModuleType:
    path = ROOT / "benchmarks" / "instructions.py"
    spec = importlib.util.spec_from_file_location("cc_bench_instructions", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


instructions = _load()


def _rlock_case() -> object:
    return next(c for c in instructions.CASES if c.name == "nested threading.RLock")


def test_one_operation_is_counted_without_the_start_up() -> None:
    # A real callgrind run: two threading.RLock acquisitions and releases
    # cost thousands of instructions; the interpreter's start-up (tens of
    # millions) must be gone from the figure.
    cost = instructions.per_operation(ROOT, _rlock_case(), ops=300)
    assert 1_000 < cost < 20_000


def test_a_missing_valgrind_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(instructions.shutil, "which", lambda _: None)
    with pytest.raises(RuntimeError, match="valgrind is not installed"):
        instructions.count(ROOT, _rlock_case(), 10)


def test_a_failing_case_reports_its_error(tmp_path: Path) -> None:
    # A tree without packages cannot import cc: the run fails, and says so.
    case = next(c for c in instructions.CASES if c.name.startswith("LockManager"))
    with pytest.raises(RuntimeError, match="No module named 'cc"):
        instructions.count(tmp_path, case, 10)


def test_the_table_shows_ratios_and_flags_a_change_over_ten_percent() -> None:
    yard, pair, nested = instructions.CASES[:3]
    counts = {
        ("base", yard): 4_000.0, ("base", pair): 12_000.0, ("base", nested): 20_000,
        ("new", yard): 4_000.0, ("new", pair): 14_000.0, ("new", nested): 20_400,
    }  # fmt: skip
    text = instructions.table(["base", "new"], [yard, pair, nested], counts)
    lines = {c.name: next(t for t in text.splitlines() if c.name in t)
             for c in (yard, pair, nested)}  # fmt: skip
    assert "3.00x" in lines[pair.name] and "3.50x" in lines[pair.name]
    assert "+17% (over 10%)" in lines[pair.name]
    assert "+2%" in lines[nested.name] and "over" not in lines[nested.name]
    assert "1.00x" in lines[yard.name] and "%" not in lines[yard.name]
