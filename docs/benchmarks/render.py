"""Turn a benchmark run's JSON into the tables and charts of the benchmarks page.

``nox -s bench`` (``benchmarks/run.py``) writes every figure it measured to a
JSON file; ``docs/benchmarks/latest.json`` is the run the site shows. When
the site is built, the ``docs/_ext/benchmarks_page.py`` hook renders it with
:func:`render` (goals, scaling, and per package a chart of cc's ratio
against each baseline, drawn by :func:`ratio_chart`, next to the table). To
refresh the page, run the benchmarks into that file::

    nox -s bench -- --quick --json docs/benchmarks/latest.json

``python docs/benchmarks/render.py`` prints the Markdown, for a look without
a site build. The tables need only the standard library; the charts need
matplotlib.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_INPUT = HERE / "latest.json"
BACKEND_COLOURS = {
    "asyncio": "#3f51b5",
    "uvloop": "#26a69a",
    "trio": "#ef6c00",
    "threads": "#8e24aa",
}
GROUP_ORDER = ["primitives", "queues", "locks", "locks on redis", "core_helpers"]
GROUP_TITLES = {
    "primitives": "cc-primitives",
    "queues": "cc-queues",
    "locks": "cc-locks",
    "locks on redis": "cc-locks on Redis",
    "core_helpers": "cc-core-helpers",
}


def figure(value: float) -> str:
    """Format a measurement with three significant digits, no exponent."""
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def cell(text: str) -> str:
    """Escape what would break a Markdown table cell."""
    return text.replace("|", "\\|")


def table(headers: list[str], rows: Iterable[list[str]], align: str) -> list[str]:
    """Return the lines of a Markdown table (``align``: one l/r per column)."""
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def groups_in_order(results: list[dict[str, Any]]) -> list[str]:
    """Return the groups present, the packages' own order first."""
    present = list(dict.fromkeys(r["group"] for r in results))
    known = [g for g in GROUP_ORDER if g in present]
    return known + [g for g in present if g not in known]


def goal_rows(goals: list[dict[str, Any]], order: list[str]) -> list[list[str]]:
    """One row per declared goal, grouped by package."""
    rows = []
    for goal in sorted(goals, key=lambda g: order.index(g["group"])):
        if goal["ratio"] is None:
            measured, verdict = "not measured", "n/a"
        else:
            measured = f"{goal['ratio']:.2f}x"
            verdict = "met" if goal["met"] else "**missed**"
        rows.append(
            [
                cell(goal["case"]),
                goal["backend"],
                cell(goal["impl"]),
                cell(goal["versus"]),
                f"≤ {goal['max_ratio']:g}x",
                measured,
                verdict,
            ]
        )
    return rows


def result_rows(results: list[dict[str, Any]]) -> list[list[str]]:
    """One row per figure, with its ratio to each baseline of the same case."""
    by_case: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for result in results:
        by_case.setdefault((result["case"], result["backend"]), []).append(result)
    rows = []
    for (case, backend), members in by_case.items():
        baselines = [r for r in members if r["baseline"]]
        for index, result in enumerate(members):
            ratios = [
                f"{result['value'] / b['value']:.2f}x {cell(b['impl'])}"
                for b in baselines
                if b is not result and b["value"] > 0 and b["unit"] == result["unit"]
            ]
            name = cell(result["impl"])
            if result["baseline"]:
                name = f"*{name}* (baseline)"
            elif result["impl"].startswith("cc "):
                name = f"**{name}**"
            if result["note"]:
                name += f" ({cell(result['note'])})"
            rows.append(
                [
                    cell(case) if index == 0 else "",
                    backend if index == 0 else "",
                    name,
                    f"{figure(result['value'])} {result['unit']}",
                    "; ".join(ratios),
                ]
            )
    return rows


def scaling_rows(scalings: list[dict[str, Any]], order: list[str]) -> list[list[str]]:
    """One row per scaling row: its sizes, its costs and its growth ratio."""
    rows = []
    for row in sorted(scalings, key=lambda r: order.index(r["group"])):
        growth = "n/a" if row["growth"] is None else f"{row['growth']:.2f}x"
        if row["max_growth"] is None:
            target, verdict = "", ""
        else:
            target = f"≤ {row['max_growth']:g}x"
            verdict = (
                "n/a" if row["met"] is None else "met" if row["met"] else "**missed**"
            )
        name = cell(row["impl"]) + (f" ({cell(row['note'])})" if row["note"] else "")
        rows.append(
            [
                cell(row["case"]),
                row["backend"],
                name,
                " / ".join(f"{size:,}" for size in row["sizes"])
                + f" {cell(row['size_label'])}",
                " / ".join(figure(value) for value in row["values"])
                + f" {row['unit']}",
                growth,
                target,
                verdict,
            ]
        )
    return rows


def ratios(results: list[dict[str, Any]]) -> list[tuple[str, str, float]]:
    """Return (label, backend, ratio) for each cc row against each baseline."""
    by_case: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for result in results:
        by_case.setdefault((result["case"], result["backend"]), []).append(result)
    bars = []
    for (case, backend), members in by_case.items():
        for mine in members:
            if mine["baseline"] or not mine["impl"].startswith("cc "):
                continue
            for base in members:
                if (
                    base["baseline"]
                    and base["value"] > 0
                    and base["unit"] == mine["unit"]
                ):
                    label = f"{case}: {mine['impl'][3:]} / {base['impl']}"
                    bars.append((label, backend, mine["value"] / base["value"]))
    return bars


def ratio_chart(title: str, bars: list[tuple[str, str, float]]) -> str:
    """Draw the ratios as horizontal bars on a log scale; return the SVG text.

    One bar per cc row and baseline, coloured by backend, with the line at
    1x (as cheap as the baseline) drawn across.
    """
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, NullFormatter

    plt.rcParams["svg.hashsalt"] = "cc-benchmarks"  # the same SVG for the same data
    plt.rcParams["svg.fonttype"] = "none"  # text stays text: searchable, small
    # at least 2 inches: a group of one or two bars still has room for its
    # title, its axis and its labels
    height = max(2.0, 0.9 + 0.26 * len(bars))
    figure, axes = plt.subplots(figsize=(10, height), layout="constrained")
    labels = [_shorten(label) for label, _, _ in bars]
    positions = range(len(bars))
    axes.barh(
        list(positions),
        [ratio for _, _, ratio in bars],
        color=[BACKEND_COLOURS.get(backend, "#757575") for _, backend, _ in bars],
        height=0.7,
    )
    axes.set_yticks(list(positions), labels, fontsize=7)
    axes.invert_yaxis()
    axes.set_xscale("log")
    values = [ratio for _, _, ratio in bars]
    axes.set_xlim(min(min(values), 1.0) * 0.7, max(max(values), 1.0) * 1.8)
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}x"))
    axes.xaxis.set_minor_formatter(NullFormatter())
    axes.axvline(1.0, color="#212121", linewidth=1)
    axes.set_xlabel("cc's cost over the baseline's (log scale; left of 1x: cheaper)")
    axes.set_title(title, fontsize=10, loc="left")
    for position, (_, _, ratio) in zip(positions, bars, strict=True):
        axes.annotate(
            f"{ratio:.2f}x", (ratio, position), xytext=(3, 0),
            textcoords="offset points", va="center", fontsize=6,
        )  # fmt: skip
    present = list(dict.fromkeys(backend for _, backend, _ in bars))
    axes.legend(
        handles=[
            Patch(color=BACKEND_COLOURS.get(b, "#757575"), label=b) for b in present
        ],
        fontsize=7,
        loc="lower right",
    )
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(figure)
    return buffer.getvalue()


def _shorten(label: str, width: int = 90) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def render(
    data: dict[str, Any], measured_on: str, charts: dict[str, str] | None = None
) -> str:
    """Return the Markdown for one benchmark run.

    :param charts: group -> the URL of its ratio chart, shown above its table.
    """
    charts = charts or {}
    results: list[dict[str, Any]] = data["results"]
    goals: list[dict[str, Any]] = data["goals"]
    mode = "`--quick` (fewer operations per sample)" if data["quick"] else "full"
    lines = [
        "<!-- Generated by docs/benchmarks/render.py from docs/benchmarks/"
        "latest.json; do not edit by hand. -->",
        "",
        f"Measured on {measured_on}, Python {data['python']} on "
        f"`{data['platform']}`, run mode {mode}. Each figure is the best of "
        f"{data['repeat']} samples, each sample one event loop running the "
        "operation many times; the cost is per operation unless the unit "
        "says otherwise. Ratios compare a row with the baselines of its case "
        "(below 1 is cheaper). Timings come from one shared machine: read "
        "them as orders of magnitude, not to the percent.",
        "",
    ]
    if goals:
        met = sum(1 for g in goals if g["met"])
        lines += [
            "### Goals",
            "",
            f"The benchmarks declare {len(goals)} cost targets; this run met "
            f"{met} of them.",
            "",
            *table(
                ["case", "backend", "cc", "versus", "target", "measured", "verdict"],
                goal_rows(goals, groups_in_order(results + goals)),
                "lllllrl",
            ),
            "",
        ]
    scalings: list[dict[str, Any]] = data.get("scaling", [])
    if scalings:
        lines += [
            "### Scaling",
            "",
            "How a cost grows with the size of the work: each operation at "
            "several sizes, and its growth ratio (the cost at the largest size "
            "over the cost at the smallest; 1.00x is flat). A target bounds the "
            "growth, so that a cost that starts to grow with history or with "
            "the number of waiters shows as a number.",
            "",
            *table(
                [
                    "case",
                    "backend",
                    "implementation",
                    "sizes",
                    "cost",
                    "growth",
                    "target",
                    "verdict",
                ],
                scaling_rows(scalings, groups_in_order(results + scalings)),
                "lllllrll",
            ),
            "",
        ]
    for group in groups_in_order(results):
        members = [r for r in results if r["group"] == group]
        title = GROUP_TITLES.get(group, group)
        lines += [f"### {title}", ""]
        if group in charts:
            lines += [
                f"![{title}: cc's cost over each baseline, per case and backend]"
                f"({charts[group]}){{ .cc-bench-chart }}",
                "",
            ]
        lines += [
            *table(
                ["case", "backend", "implementation", "cost", "ratio"],
                result_rows(members),
                "llllr",
            ),
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"


def measured_on(data: dict[str, Any], path: Path) -> str:
    """Return the run's date: its own, else the JSON file's modification date."""
    if data.get("date"):
        return str(data["date"])
    stamp = dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.timezone.utc)
    return stamp.date().isoformat()


def main(argv: list[str] | None = None) -> int:
    """Print the Markdown of ``--input`` (without charts)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, default=DEFAULT_INPUT)
    args = parser.parse_args(argv)
    data = json.loads(args.input.read_text(encoding="utf-8"))
    sys.stdout.write(render(data, measured_on(data, args.input)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
