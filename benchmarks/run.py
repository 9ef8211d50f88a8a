"""Run every ``benchmarks/bench_*.py`` module and print one comparison table.

Usage: ``python benchmarks/run.py [--quick] [--only NAME ...] [--json PATH]``
(through ``nox -s bench -- ...``).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness import Suite  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer operations")
    parser.add_argument("--repeat", type=int, default=5, help="samples per figure")
    parser.add_argument(
        "--only", nargs="*", default=[], help="bench module names, e.g. primitives"
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=HERE / "results" / "latest.json",
        help="where to write the results as JSON",
    )
    args = parser.parse_args(argv)
    suite = Suite(repeat=args.repeat, quick=args.quick)
    started = time.perf_counter()
    for path in sorted(HERE.glob("bench_*.py")):
        name = path.stem.removeprefix("bench_")
        if args.only and name not in args.only:
            continue
        spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(f"running {path.name} ...", flush=True)
        module.collect(suite)
    print(suite.table())
    suite.write_json(args.json)
    print(f"\nresults written to {args.json} in {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
