"""What the stress suites share: the seed, the task and memory probes, the report.

Every random choice of a suite (sizes, which item fails, which producer is
cancelled, when a queue is stopped) comes from a :class:`random.Random`
seeded with the session seed and the test's id, so one seed replays the same
fault plan for every test, whatever runs before it. The seed is random unless
the ``CC_STRESS_SEED`` environment variable sets it; it is printed in the
header, in the closing report and in every invariant failure. (The seed fixes
the plan, not the interleaving: the backends schedule as they like.)

The closing report adds up, for the whole session, the items moved, the
faults injected and the invariant checks that passed.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import random
import re
import sys
import time
from collections import Counter
from typing import Any

import pytest

SEED_VARIABLE = "CC_STRESS_SEED"


class StressReport:
    """Session-wide tallies that the closing report prints."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.started = time.monotonic()
        self.items: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.checks: Counter[str] = Counter()

    def moved(self, what: str, count: int = 1) -> None:
        """Count ``count`` items (or operations) of kind ``what`` put through."""
        self.items[what] += count

    def fault(self, what: str, count: int = 1) -> None:
        """Count ``count`` injected faults of kind ``what``."""
        self.faults[what] += count

    def check(self, what: str, count: int = 1) -> None:
        """Count ``count`` invariant checks of kind ``what`` that passed."""
        self.checks[what] += count

    def lines(self) -> list[str]:
        """Return the closing report, one line per entry."""
        out = [
            f"seed {self.seed} (replay the fault plan with {SEED_VARIABLE}="
            f"{self.seed}); {time.monotonic() - self.started:.1f} s"
        ]
        queue_items = sum(
            n for what, n in self.items.items() if what.startswith("items accepted")
        )
        out.append(f"queue items through WorkQueue/BoundedQueue: {queue_items:,}")
        for title, tally in (
            ("items and operations moved", self.items),
            ("faults injected", self.faults),
            ("checks passed", self.checks),
        ):
            out.append(f"{title}: {sum(tally.values()):,}")
            out.extend(f"    {n:>12,}  {what}" for what, n in sorted(tally.items()))
        return out


def _session_seed() -> int:
    raw = os.environ.get(SEED_VARIABLE, "").strip()
    if not raw:
        return random.SystemRandom().randrange(2**32)
    try:
        return int(raw)
    except ValueError:
        raise pytest.UsageError(
            f"{SEED_VARIABLE} must be an integer, got {raw!r}"
        ) from None


_report: StressReport | None = None


def _the_report() -> StressReport:
    global _report
    if _report is None:
        _report = StressReport(_session_seed())
    return _report


def pytest_report_header(config: pytest.Config) -> str:
    seed = _the_report().seed
    return f"stress seed: {seed} (set {SEED_VARIABLE}={seed} to replay it)"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _report is None:
        return
    terminalreporter.section("cc stress report")
    for line in _report.lines():
        terminalreporter.write_line(line)


# -- what the backends are running ------------------------------------------


def live_tasks() -> set[object]:
    """Return every task of the running event loop that has not finished.

    On asyncio (and uvloop) that is :func:`asyncio.all_tasks`; on trio, the
    tree of tasks under :func:`trio.lowlevel.current_root_task`.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return set(asyncio.all_tasks())
    import trio

    found: set[object] = set()
    pending = [trio.lowlevel.current_root_task()]
    while pending:
        task = pending.pop()
        if task is None:
            continue
        found.add(task)
        for nursery in task.child_nurseries:
            pending.extend(nursery.child_tasks)
    return found


def describe_tasks(tasks: set[object]) -> list[str]:
    """Name tasks for a failure message."""
    names = []
    for task in tasks:
        get_name = getattr(task, "get_name", None)
        names.append(str(get_name() if callable(get_name) else task.name))
    return sorted(names)


class MemoryBaseline:
    """Allocated blocks and gc-tracked objects at one moment, after a collection.

    ``sys.getallocatedblocks()`` counts every live allocation of the
    interpreter, so a leak of anything per item (an item, a task, a
    traceback, an event) shows up as thousands of blocks after a soak of
    thousands of items; it costs nothing while the soak runs, unlike
    tracemalloc.
    """

    def __init__(self) -> None:
        gc.collect()
        self.blocks = sys.getallocatedblocks()
        self.objects = len(gc.get_objects())

    def growth(self) -> tuple[int, int]:
        """Return (blocks, objects) allocated since the baseline and still alive."""
        gc.collect()
        return (
            sys.getallocatedblocks() - self.blocks,
            len(gc.get_objects()) - self.objects,
        )


class LogTally(logging.Handler):
    """Counts log records and picks item ids out of their messages.

    Queues and lock managers report through loggers; the soaks give them a
    logger of their own with this handler (and no propagation), so that
    tens of thousands of records are counted, not kept by pytest's capture.
    """

    _ID = re.compile(r"Job\((\d+)\)")

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: Counter[str] = Counter()
        self.failed_item_ids: list[int] = []

    def emit(self, record: logging.LogRecord) -> None:
        template = str(record.msg)
        self.records[template] += 1
        if template.startswith("worker failed on item"):
            found = self._ID.search(record.getMessage())
            if found:
                self.failed_item_ids.append(int(found.group(1)))

    def count(self, prefix: str) -> int:
        """Return how many records had a message template starting with ``prefix``."""
        return sum(n for t, n in self.records.items() if t.startswith(prefix))


class StressKit:
    """What a stress test is handed: its random plan, the report and the probes."""

    def __init__(self, report: StressReport, node_id: str) -> None:
        self.report = report
        self.seed = report.seed
        self.node_id = node_id
        self.rng = random.Random(f"{report.seed}:{node_id}")

    def where(self, **details: object) -> str:
        """Describe the failing run for a message: seed, test, and ``details``."""
        extra = " ".join(f"{k}={v!r}" for k, v in details.items())
        return f"[{SEED_VARIABLE}={self.seed} {self.node_id} {extra}]"

    @staticmethod
    def live_tasks() -> set[object]:
        """Return the unfinished tasks of the running event loop."""
        return live_tasks()

    @staticmethod
    def memory_baseline() -> MemoryBaseline:
        """Collect garbage and remember how much memory is allocated now."""
        return MemoryBaseline()

    def assert_no_new_tasks(self, baseline: set[object], **details: object) -> None:
        """Fail if a task that was not running at ``baseline`` is running now."""
        stray = live_tasks() - baseline
        assert not stray, (
            f"tasks left running: {describe_tasks(stray)} {self.where(**details)}"
        )
        self.report.check("no task left running")

    def logger(self, name: str) -> tuple[logging.Logger, LogTally]:
        """Return a private logger (not propagated) and the tally counting it."""
        logger = logging.getLogger(f"cc.stress.{name}")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        tally = LogTally()
        logger.addHandler(tally)
        return logger, tally


@pytest.fixture(scope="session")
def stress_report() -> StressReport:
    """The session's report (also printed at the end of the run)."""
    return _the_report()


@pytest.fixture
def kit(stress_report: StressReport, request: pytest.FixtureRequest) -> StressKit:
    """The random plan, probes and report of one test."""
    return StressKit(stress_report, request.node.nodeid)


def backend_name(anyio_backend: Any) -> str:
    """Return "asyncio", "asyncio+uvloop" or "trio" for an anyio_backend value."""
    name, options = anyio_backend
    return f"{name}+uvloop" if options.get("use_uvloop") else name


@pytest.fixture
def backend(anyio_backend: Any) -> str:
    """The name of the backend the test runs on."""
    return backend_name(anyio_backend)
