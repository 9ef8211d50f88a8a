"""The benchmark harness's scaling rows, from measurement to the docs' table."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tools.workspace import ROOT


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


harness = _load(ROOT / "benchmarks" / "harness.py", "cc_bench_harness")
render = _load(ROOT / "docs" / "benchmarks" / "render.py", "cc_bench_render")


def _suite() -> Any:
    suite = harness.Suite(repeat=1, quick=True)
    made: list[int] = []

    def make_run(size: int) -> Any:
        made.append(size)
        data = list(range(size))

        def run(n: int) -> None:
            for _ in range(n):
                sorted(data)

        return run

    row = suite.time_sync_scaling(
        "primitives", "sort", "sorted()", sizes=[10, 100, 1_000],
        size_label="items", make_run=make_run, ops=lambda size: 2_000,
        max_growth=1_000.0,
    )  # fmt: skip
    assert made == [10, 100, 1_000]  # --quick reduces operations, never sizes
    return suite, row


def test_a_scaling_row_measures_each_size_and_its_growth() -> None:
    suite, row = _suite()
    memory = suite.scaling(
        "queues", "memory", "cc WorkQueue", backend="asyncio",
        size_label="items", unit="KiB", max_growth=2.0,
    )  # fmt: skip
    memory.add(10, 50.0)
    memory.add(1_000, 150.0)
    with pytest.raises(ValueError, match="sizes must grow"):
        memory.add(1_000, 1.0)
    suite.evaluate_goals()
    assert row.sizes == [10, 100, 1_000] and len(row.values) == 3
    assert row.growth == pytest.approx(row.values[-1] / row.values[0])
    assert row.met is True
    assert memory.growth == pytest.approx(3.0) and memory.met is False
    assert "== scaling ==" in suite.table()


def test_scaling_rows_reach_latest_json_and_the_page() -> None:
    suite, _ = _suite()
    data = json.loads(json.dumps(suite.to_json()))
    assert data["date"] and len(data["scaling"]) == 1
    page = render.render(data, data["date"])
    assert "### Scaling" in page
    line = next(x for x in page.splitlines() if x.startswith("| sort |"))
    assert "10 / 100 / 1,000 items" in line and "≤ 1000x" in line
    assert line.rstrip(" |").endswith("met")
