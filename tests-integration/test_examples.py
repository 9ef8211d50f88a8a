"""Run every program in ``examples/`` as a user would, on asyncio and on trio.

Each program runs in a fresh interpreter against the installed cc packages,
with small sizes so the whole module takes a few seconds; the test checks
its exit status and what it prints.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
BACKENDS = ["asyncio", "trio"]
RUN_TIMEOUT = 50.0

# Every example program and the test functions below that exercise it.
# (queue_service.py runs as a server in test_queue_service.py.)
COVERED = {
    "crawl.py",
    "demo.py",
    "lock_hierarchy.py",
    "queue_service.py",
    "worker_pool.py",
}


def run_example(name: str, *args: str) -> str:
    """Run an example program; return its output (carriage returns kept)."""
    env = {
        **os.environ,
        "PYTHONWARNINGS": "error",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONIOENCODING": "utf-8",
    }
    env.pop("PYTHONPATH", None)
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    stdout = completed.stdout.decode("utf-8")
    assert completed.returncode == 0, (
        f"{name} {' '.join(args)} exited with {completed.returncode}\n"
        f"--- stdout ---\n{stdout}\n"
        f"--- stderr ---\n{completed.stderr.decode('utf-8', 'replace')}"
    )
    return stdout


def table_value(output: str, label: str) -> str:
    """The value next to ``label`` in one of the demo's summary tables."""
    match = re.search(rf"^  {re.escape(label)}\s+(.+?)\s*$", output, re.MULTILINE)
    assert match, f"no {label!r} row in:\n{output}"
    return match.group(1)


def test_every_example_is_tested() -> None:
    programs = {path.name for path in EXAMPLES.glob("*.py")}
    assert programs == COVERED, "add a test for each new example program"


@pytest.mark.parametrize("backend", BACKENDS)
def test_demo_small_run(backend: str) -> None:
    output = run_example(
        "demo.py",
        "--backend",
        backend,
        "--orders",
        "400",
        "--rate",
        "4000",
        "--progress",
        "lines",
    )
    assert output.startswith(f"loading 400 orders on {backend}")
    progress = [line for line in output.splitlines() if line.startswith("progress:")]
    assert progress, output
    assert progress[-1].startswith("progress: 400/400 100%"), progress[-1]
    loaded = int(table_value(output, "loaded"))
    dead = int(table_value(output, "dead-lettered"))
    assert loaded + dead == 400
    assert 0 < dead < 20  # about 1% of the records are malformed
    assert int(table_value(output, "retried after a 503")) > 0
    # The producer outruns the workers: its waits for room are counted.
    assert float(table_value(output, "producer waited for room").split()[0]) > 0
    assert int(table_value(output, "puts that waited (backpressure)")) > 0
    assert int(table_value(output, "puts refused")) == 0
    assert "lock statistics" in output and "daily-totals" in output
    assert "deadlock checks: no risk found" in output
    assert output.rstrip().endswith(
        "all checks passed: every order is accounted for and loaded once"
    )
    assert "\r" not in output  # not a terminal: plain lines only


def test_demo_is_reproducible_across_backends() -> None:
    args = ["--orders", "300", "--rate", "5000", "--progress", "off", "--seed", "9"]
    counts = {}
    for backend in BACKENDS:
        output = run_example("demo.py", "--backend", backend, *args)
        counts[backend] = [
            table_value(output, label)
            for label in ("loaded", "retried after a 503", "dead-lettered")
        ] + [table_value(output, "revenue loaded")]
    assert counts["asyncio"] == counts["trio"]


def test_demo_progress_bar() -> None:
    output = run_example(
        "demo.py", "--orders", "200", "--rate", "5000", "--progress", "bar"
    )
    assert "\r[" in output
    last_frame = output.split("\r")[-1].splitlines()[0]
    assert "200/200 100%" in last_frame
    assert "progress:" not in output


def test_demo_rejects_bad_arguments() -> None:
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / "demo.py"), "--orders", "0"],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert completed.returncode == 2
    assert "--orders" in completed.stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_worker_pool(backend: str) -> None:
    output = run_example("worker_pool.py", "--backend", backend, "--jobs", "120")
    assert "progress: 120/120 finished" in output
    assert "sent: 114" in output
    assert "bounced (to retry): 6" in output
    assert "handed back unsent: 0" in output
    assert "every accepted e-mail is accounted for" in output


@pytest.mark.parametrize("backend", BACKENDS)
def test_worker_pool_deadline_hands_back(backend: str) -> None:
    output = run_example(
        "worker_pool.py", "--backend", backend, "--jobs", "5000", "--deadline", "0.1"
    )
    handed_back = re.search(r"handed back unsent: (\d+)", output)
    assert handed_back, output
    assert int(handed_back.group(1)) > 0
    assert "every accepted e-mail is accounted for" in output


@pytest.mark.parametrize("backend", BACKENDS)
def test_lock_hierarchy(backend: str) -> None:
    output = run_example(
        "lock_hierarchy.py", "--backend", backend, "--transfers", "100"
    )
    assert "deadlock risks found: 0" in output
    assert "deadlock: task 'restock' waits for 'orders'" in output
    assert "cycle: orders -> stock -> orders" in output
    assert "potential deadlock" in output  # logged by the "warn" policy
    assert output.rstrip().endswith("all checks passed")


@pytest.mark.parametrize("backend", BACKENDS)
def test_crawl(backend: str) -> None:
    output = run_example(
        "crawl.py", "--backend", backend, "--pages", "60", "--rate", "1000"
    )
    assert output.startswith("crawled 60 pages")
    assert re.search(r"^\s+ok\s+\d+$", output, re.MULTILINE)
    assert "timed out" in output
