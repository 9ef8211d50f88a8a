"""MkDocs hook: the benchmarks section, tables and charts, from latest.json.

``docs/benchmarks/latest.json`` is the benchmark run the site shows. When the
site is built, this hook draws one SVG chart per package (cc's cost over each
baseline, per case and backend, with matplotlib) as generated files under
``assets/bench-charts/``, and replaces the marker line
``<!-- cc:benchmarks -->`` of a page with the goals, the scaling table and,
per package, the chart next to the table (``docs/benchmarks/render.py``).
Nothing is written into ``docs/``: the page cannot drift from the data.

It is registered under ``hooks:`` in ``mkdocs.yml``.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from mkdocs.structure.files import File, Files

MARKER = "<!-- cc:benchmarks -->"
DATA = Path(__file__).resolve().parents[1] / "benchmarks" / "latest.json"
CHARTS_DIR = "assets/bench-charts"  # not "benchmarks/": exclude_docs skips those


def _load_render() -> ModuleType:
    path = DATA.with_name("render.py")
    spec = importlib.util.spec_from_file_location("cc_docs_bench_render", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


render = _load_render()


def _slug(group: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", group.lower()).strip("-")


def _data() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DATA.read_text(encoding="utf-8"))
    return loaded


def on_files(files: Files, config: Any, **kwargs: Any) -> Files:
    """Add one generated SVG chart per package group of the run."""
    results = _data()["results"]
    for group in render.groups_in_order(results):
        bars = render.ratios([r for r in results if r["group"] == group])
        if not bars:
            continue
        title = render.GROUP_TITLES.get(group, group)
        svg = render.ratio_chart(f"{title}: cc's cost over each baseline", bars)
        files.append(
            File.generated(config, f"{CHARTS_DIR}/{_slug(group)}.svg", content=svg)
        )
    return files


def on_page_markdown(markdown: str, page: Any, files: Files, **kwargs: Any) -> str:
    """Replace the marker line by the rendered run, charts included."""
    if MARKER not in markdown:
        return markdown
    data = _data()
    depth = page.file.src_uri.count("/")
    prefix = "../" * depth
    charts = {
        group: f"{prefix}{CHARTS_DIR}/{_slug(group)}.svg"
        for group in render.groups_in_order(data["results"])
        if files.get_file_from_path(f"{CHARTS_DIR}/{_slug(group)}.svg") is not None
    }
    rendered = render.render(data, render.measured_on(data, DATA), charts)
    return markdown.replace(MARKER, rendered)
