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
"""

from __future__ import annotations

import gc
import json
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anyio

__all__ = ["Goal", "Result", "Suite"]

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
class Suite:
    """Collects results and goals; prints the table and writes JSON."""

    repeat: int = 5
    quick: bool = False
    results: list[Result] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)

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
        return self._add(group, case, backend, impl, min(samples), ops, baseline, note)

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
        samples = []
        run(max(1, ops // 10))
        for _ in range(self.repeat):
            gc.collect()
            start = time.perf_counter()
            run(ops)
            samples.append(time.perf_counter() - start)
        return self._add(group, case, backend, impl, min(samples), ops, baseline, note)

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
        }

    def write_json(self, path: Path) -> None:
        """Write :meth:`to_json` to ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
