"""Run the CI sessions side by side, each as a plain ``nox -s <name>`` process.

The ``ci`` session (plain ``nox``) runs this. Most of the test time is spent
waiting (timeouts, sleeps, process start-up), so a few sessions at a time
finish far sooner than one after another, even on two cores. Each session
writes to a log of its own; when it ends, its header and then its whole
output are printed, so that sessions never interleave. nox reports each
session's result; this module reads nothing but exit codes.

``--single-python`` runs every session on the interpreter that runs nox (for
a machine with one Python); without it, Python 3.10 to 3.13 must all be
there, and their absence is reported before anything starts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from tools.workspace import ROOT

SINGLE_PYTHON_COMMAND = (
    "bash tools/system-packages.sh && python3 -m pip install nox uv && "
    "python3 -m nox -- --single-python"
)


def _nox(*args: str) -> list[str]:
    return [sys.executable, "-m", "nox", "-f", str(ROOT / "noxfile.py"), *args]


def missing_pythons(versions: Sequence[str]) -> list[str]:
    """Return the versions for which no ``python<version>`` runs here."""
    missing = []
    for version in versions:
        try:
            done = subprocess.run(
                [f"python{version}", "-c", ""], cwd=ROOT, capture_output=True,
                check=False,
            )  # fmt: skip
        except OSError:
            missing.append(version)
            continue
        if done.returncode:
            missing.append(version)
    return missing


def list_sessions(names: Sequence[str], force: Sequence[str]) -> list[str]:
    """Return the concrete session names to run (``tests-3.10(...)``...)."""
    listed = subprocess.run(
        _nox("--list", "--json", *force, "-s", *names),
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    return [entry["session"] for entry in json.loads(listed.stdout)]


def run_session(name: str, force: Sequence[str], logs: Path) -> tuple[int, float, Path]:
    """Run one session, its output (stdout and stderr, in order) into a file."""
    log = logs / f"{abs(hash(name))}.log"
    started = time.monotonic()
    with log.open("wb") as out:
        code = subprocess.run(
            _nox(*force, "-s", name), stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, cwd=ROOT, check=False,
        ).returncode  # fmt: skip
    return code, time.monotonic() - started, log


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``--sessions`` in parallel; exit 1 if any failed."""
    parser = argparse.ArgumentParser(prog="nox -s ci --")
    parser.add_argument("--sessions", nargs="+", required=True)
    parser.add_argument("--pythons", nargs="+", required=True)
    parser.add_argument("--jobs", type=int, default=(os.cpu_count() or 2) + 1)
    parser.add_argument(
        "--single-python",
        action="store_true",
        help="run every session on the Python that runs nox",
    )
    args = parser.parse_args(argv)
    force: list[str] = []
    if args.single_python:
        force = ["--force-python", f"{sys.version_info[0]}.{sys.version_info[1]}"]
    else:
        missing = missing_pythons(args.pythons)
        if missing:
            print(
                f"ci: Python {', '.join(missing)} not found. The full run (and CI) "
                f"needs Python {', '.join(args.pythons)}, each as python<version> "
                "(pyenv: install them; the repository's .python-version selects "
                f"them). With one Python, run instead:\n  {SINGLE_PYTHON_COMMAND}",
                file=sys.stderr,
            )
            return 1
    names = list_sessions(args.sessions, force)
    # The longest sessions first, so that they do not start last.
    names.sort(key=lambda n: (not n.startswith(("docs", "release", "stress")), n))
    print(f"ci: {len(names)} sessions, {args.jobs} at a time", flush=True)
    results: list[tuple[str, int, float]] = []
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="cc-ci-") as tmp,
        ThreadPoolExecutor(max_workers=args.jobs) as pool,
    ):
        futures = {
            pool.submit(run_session, name, force, Path(tmp)): name for name in names
        }
        for future in as_completed(futures):
            name = futures[future]
            code, seconds, log = future.result()
            verdict = "ok" if code == 0 else f"FAILED (exit {code})"
            print(f"\n===== {name}: {verdict} in {seconds:.0f}s =====", flush=True)
            sys.stdout.buffer.write(log.read_bytes())
            sys.stdout.flush()
            results.append((name, code, seconds))
    print(
        f"\n===== ci: {len(names)} sessions in {time.monotonic() - started:.0f}s ====="
    )
    for name, code, seconds in results:
        print(f"  {'ok    ' if code == 0 else 'FAILED'} {seconds:5.0f}s  {name}")
    failed = [name for name, code, _ in results if code]
    if failed:
        print(f"ci: {len(failed)} of {len(results)} sessions failed: {failed}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
