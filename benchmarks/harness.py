"""A small side-by-side benchmark harness shared by every cc package.

Each ``benchmarks/bench_<topic>.py`` module defines ``collect(suite)`` and adds
measurements to the one :class:`Suite` of the run. A measurement belongs to a
*case* (what is being done, on which backend) and names the *implementation*
that did it; within a case, implementations marked ``baseline=True`` are the
yardsticks, and every row shows its ratio against each of them. Goals (a
maximum ratio against a baseline) are declared next to the measurements and
reported as met or missed; they never fail the run, because timings on a
shared machine are evidence, not assertions.

Timing: every sample runs the operation ``ops`` times inside one event loop
and the best of ``repeat`` samples is kept (the minimum is the least noisy
estimate of the cost itself).

Scaling rows show how a cost grows with the size of the work (waiters,
registered locks, calls made so far...): one operation measured at several
sizes, with its *growth ratio*, the cost at the largest size over the cost at
the smallest. A row may declare a goal on that ratio (``max_growth``), so that
a cost that starts to grow with history or with the number of waiters shows
as a number. Use :meth:`Suite.time_async_scaling` or
:meth:`Suite.time_sync_scaling` to time one, or :meth:`Suite.scaling` and
:meth:`Scaling.add` for figures measured by the module itself (memory,
latency)::

    def make_run(waiters: int) -> Callable[[], Callable[[int], Awaitable[None]]]:
        ...  # like time_async's make_run, for a lock with ``waiters`` waiting

    suite.time_async_scaling(
        "primitives", "Lock hand-off", "cc Lock", "asyncio",
        sizes=[10, 100, 1_000], size_label="waiters",
        make_run=make_run, ops=10_000, max_growth=2.0,
    )

Sizes are never reduced by ``--quick`` (only the operation counts are): the
sizes are what the row is about. Scaling rows go to ``latest.json`` under
``"scaling"`` and the docs render them as the benchmarks page's scaling table.
"""

from __future__ import annotations

import gc
import json
import platform
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anyio

__all__ = ["Goal", "Result", "Scaling", "Suite"]

BACKENDS: dict[str, tuple[str, dict[str, Any]]] = {
    "asyncio": ("asyncio", {}),
    "uvloop": ("asyncio", {"use_uvloop": True}),
    "trio": ("trio", {}),
}


@dataclass
class Result:
    """One measured figure."""

    group: str
    case: str
    backend: str
    impl: str
    value: float
    unit: str = "us/op"
    baseline: bool = False
    note: str = ""


@dataclass
class Goal:
    """A target: ``impl`` at most ``max_ratio`` times ``versus`` in one case."""

    group: str
    case: str
    backend: str
    impl: str
    versus: str
    max_ratio: float
    ratio: float | None = None
    met: bool | None = None


@dataclass
class Scaling:
    """One operation's cost at several sizes, and a goal on how it grows.

    ``sizes`` and ``values`` are parallel lists, smallest size first.
    ``growth`` is ``values[-1] / values[0]``: 1.0 means the cost per operation
    does not depend on the size at all; for a cost that should stay flat,
    declare ``max_growth`` close to 1, and for one allowed to grow (a pass over
    every waiter) state the bound it must keep.
    """

    group: str
    case: str
    backend: str
    impl: str
    size_label: str
    unit: str = "us/op"
    sizes: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    max_growth: float | None = None
    growth: float | None = None
    met: bool | None = None
    note: str = ""

    def add(self, size: int, value: float) -> None:
        """Record the cost ``value`` (in :attr:`unit`) at ``size``."""
        if self.sizes and size <= self.sizes[-1]:
            raise ValueError(
                f"{self.case}: sizes must grow, got {size} after {self.sizes[-1]}"
            )
        self.sizes.append(size)
        self.values.append(value)

    def evaluate(self) -> None:
        """Fill in :attr:`growth` and, with a goal, :attr:`met`."""
        if len(self.values) >= 2 and self.values[0] > 0:
            self.growth = self.values[-1] / self.values[0]
            if self.max_growth is not None:
                self.met = self.growth <= self.max_growth


@dataclass
class Suite:
    """Collects results and goals; prints the table and writes JSON."""

    repeat: int = 5
    quick: bool = False
    results: list[Result] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    scalings: list[Scaling] = field(default_factory=list)

    def ops(self, n: int) -> int:
        """Scale an operation count down in ``--quick`` mode."""
        return max(1, n // 20) if self.quick else n

    def time_async(
        self,
        group: str,
        case: str,
        impl: str,
        backend: str,
        make_run: Callable[[], Callable[[int], Awaitable[None]]],
        ops: int,
        *,
        baseline: bool = False,
        note: str = "",
    ) -> Result:
        """Time an async operation on ``backend``.

        :param make_run: called inside the event loop; returns ``run(n)``, an
            async function that performs the operation ``n`` times. Anything
            that must be created inside the loop (locks, queues) is created in
            ``make_run`` and is not timed.
        """
        ops = self.ops(ops)
        seconds = self._best_async(backend, make_run, ops)
        return self._add(group, case, backend, impl, seconds, ops, baseline, note)

    def _best_async(
        self,
        backend: str,
        make_run: Callable[[], Callable[[int], Awaitable[None]]],
        ops: int,
    ) -> float:
        """Return the best of ``repeat`` timings of ``ops`` operations."""
        backend_name, options = BACKENDS[backend]
        samples: list[float] = []

        async def sample() -> None:
            run = make_run()
            await run(max(1, ops // 10))  # warm up
            gc.collect()
            start = time.perf_counter()
            await run(ops)
            samples.append(time.perf_counter() - start)

        for _ in range(self.repeat):
            anyio.run(sample, backend=backend_name, backend_options=options)
        return min(samples)

    def _best_sync(self, run: Callable[[int], None], ops: int) -> float:
        """Return the best of ``repeat`` timings of ``run(ops)``."""
        samples = []
        run(max(1, ops // 10))
        for _ in range(self.repeat):
            gc.collect()
            start = time.perf_counter()
            run(ops)
            samples.append(time.perf_counter() - start)
        return min(samples)

    def time_sync(
        self,
        group: str,
        case: str,
        impl: str,
        run: Callable[[int], None],
        ops: int,
        *,
        backend: str = "threads",
        baseline: bool = False,
        note: str = "",
    ) -> Result:
        """Time a synchronous operation: ``run(n)`` performs it ``n`` times."""
        ops = self.ops(ops)
        seconds = self._best_sync(run, ops)
        return self._add(group, case, backend, impl, seconds, ops, baseline, note)

    def scaling(
        self,
        group: str,
        case: str,
        impl: str,
        *,
        backend: str,
        size_label: str,
        unit: str = "us/op",
        max_growth: float | None = None,
        note: str = "",
    ) -> Scaling:
        """Start a scaling row; the caller adds a figure per size with ``add``.

        :param size_label: what the sizes count, in the plural ("waiters",
            "calls made before", "registered locks").
        :param max_growth: the goal: the cost at the largest size at most this
            many times the cost at the smallest.
        """
        row = Scaling(
            group, case, backend, impl, size_label, unit, max_growth=max_growth,
            note=note,
        )  # fmt: skip
        self.scalings.append(row)
        return row

    def time_async_scaling(
        self,
        group: str,
        case: str,
        impl: str,
        backend: str,
        *,
        sizes: Sequence[int],
        size_label: str,
        make_run: Callable[[int], Callable[[], Callable[[int], Awaitable[None]]]],
        ops: int | Callable[[int], int],
        max_growth: float | None = None,
        note: str = "",
    ) -> Scaling:
        """Time an async operation at each of ``sizes`` (see :meth:`time_async`).

        :param make_run: ``make_run(size)`` is what :meth:`time_async` takes as
            ``make_run`` for that size.
        :param ops: operations per sample, or ``ops(size)`` for a count that
            depends on the size.
        """
        row = self.scaling(
            group, case, impl, backend=backend, size_label=size_label,
            max_growth=max_growth, note=note,
        )  # fmt: skip
        for size in sizes:
            count = self.ops(ops(size) if callable(ops) else ops)
            seconds = self._best_async(backend, make_run(size), count)
            row.add(size, seconds / count * 1e6)
        return row

    def time_sync_scaling(
        self,
        group: str,
        case: str,
        impl: str,
        *,
        sizes: Sequence[int],
        size_label: str,
        make_run: Callable[[int], Callable[[int], None]],
        ops: int | Callable[[int], int],
        backend: str = "threads",
        max_growth: float | None = None,
        note: str = "",
    ) -> Scaling:
        """Time a synchronous operation at each of ``sizes``.

        :param make_run: ``make_run(size)`` returns ``run(n)``, which performs
            the operation ``n`` times at that size (set-up happens in
            ``make_run`` and is not timed).
        """
        row = self.scaling(
            group, case, impl, backend=backend, size_label=size_label,
            max_growth=max_growth, note=note,
        )  # fmt: skip
        for size in sizes:
            count = self.ops(ops(size) if callable(ops) else ops)
            seconds = self._best_sync(make_run(size), count)
            row.add(size, seconds / count * 1e6)
        return row

    def record(
        self,
        group: str,
        case: str,
        impl: str,
        value: float,
        unit: str,
        *,
        backend: str = "-",
        baseline: bool = False,
        note: str = "",
    ) -> Result:
        """Record a figure measured by the caller (latency, memory, CPU...)."""
        result = Result(group, case, backend, impl, value, unit, baseline, note)
        self.results.append(result)
        return result

    def goal(
        self,
        group: str,
        case: str,
        impl: str,
        versus: str,
        max_ratio: float,
        *,
        backend: str,
    ) -> None:
        """Declare that ``impl`` should cost at most ``max_ratio`` x ``versus``."""
        self.goals.append(Goal(group, case, backend, impl, versus, max_ratio))

    def _add(
        self,
        group: str,
        case: str,
        backend: str,
        impl: str,
        seconds: float,
        ops: int,
        baseline: bool,
        note: str,
    ) -> Result:
        result = Result(
            group, case, backend, impl, seconds / ops * 1e6, "us/op", baseline, note
        )
        self.results.append(result)
        return result

    # -- reporting ---------------------------------------------------------

    def _find(self, group: str, case: str, backend: str, impl: str) -> Result | None:
        for r in self.results:
            if (r.group, r.case, r.backend, r.impl) == (group, case, backend, impl):
                return r
        return None

    def evaluate_goals(self) -> None:
        """Fill in each goal's measured ratio and whether it was met."""
        for g in self.goals:
            mine = self._find(g.group, g.case, g.backend, g.impl)
            other = self._find(g.group, g.case, g.backend, g.versus)
            if mine and other and other.value > 0:
                g.ratio = mine.value / other.value
                g.met = g.ratio <= g.max_ratio
        for row in self.scalings:
            row.evaluate()

    def table(self) -> str:
        """Render every result, grouped by case, with ratios to the baselines."""
        self.evaluate_goals()
        lines: list[str] = []
        cases: dict[tuple[str, str, str], list[Result]] = {}
        for r in self.results:
            cases.setdefault((r.group, r.case, r.backend), []).append(r)
        current_group = None
        for (group, case, backend), rows in cases.items():
            if group != current_group:
                lines += ["", f"== {group} ==", ""]
                current_group = group
            baselines = [r for r in rows if r.baseline]
            lines.append(f"{case} [{backend}]")
            for r in rows:
                ratios = "  ".join(
                    f"{r.value / b.value:5.2f}x {b.impl}"
                    for b in baselines
                    if b is not r and b.value > 0 and b.unit == r.unit
                )
                mark = "*" if r.baseline else " "
                note = f"  ({r.note})" if r.note else ""
                lines.append(
                    f"  {mark} {r.impl:<38} {r.value:>10.3f} {r.unit:<6} {ratios}{note}"
                )
        if self.goals:
            lines += ["", "== goals ==", ""]
            for g in self.goals:
                if g.ratio is None:
                    status, got = "n/a ", "not measured"
                else:
                    status = "MET " if g.met else "MISS"
                    got = f"{g.ratio:.2f}x"
                lines.append(
                    f"  {status} {g.group}/{g.case} [{g.backend}]: {g.impl} <= "
                    f"{g.max_ratio}x {g.versus} (measured {got})"
                )
        if self.scalings:
            lines += ["", "== scaling ==", ""]
            for row in self.scalings:
                figures = ", ".join(
                    f"{size:,}: {value:.3f}"
                    for size, value in zip(row.sizes, row.values, strict=True)
                )
                growth = "n/a" if row.growth is None else f"{row.growth:.2f}x"
                if row.max_growth is None:
                    verdict = ""
                else:
                    status = (
                        "n/a " if row.met is None else "MET " if row.met else "MISS"
                    )
                    verdict = f"  {status} <= {row.max_growth}x"
                lines.append(
                    f"  {row.group}/{row.case} [{row.backend}] {row.impl}, "
                    f"{row.unit} by {row.size_label}: {figures}; growth "
                    f"{growth}{verdict}"
                )
        lines.append("")
        lines.append("* = baseline; ratios are this row's cost over the baseline's")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """Everything measured, with the machine it was measured on."""
        self.evaluate_goals()
        return {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "quick": self.quick,
            "repeat": self.repeat,
            "results": [asdict(r) for r in self.results],
            "goals": [asdict(g) for g in self.goals],
            "scaling": [asdict(row) for row in self.scalings],
        }

    def write_json(self, path: Path) -> None:
        """Write :meth:`to_json` to ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
