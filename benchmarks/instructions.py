"""Instructions per operation on the hot paths, for changes smaller than timing noise.

Usage: ``python benchmarks/instructions.py [--rev REV ...] [--only WORD ...]``
(through ``nox -s instructions -- ...``).

On a shared two-core machine the wall-clock figures of ``nox -s bench`` move
by 20% or more between runs of the same code, so a 10% budget cannot be
judged from them. Valgrind's callgrind counts the instructions a program
executes, the same for the same code to within about 2%, whatever else the
machine does. The cases are rows of ``bench_locks``, ``bench_primitives``
and ``bench_locks_redis`` (their own functions; the last against a
redis-server started for the run, counting the client only). Each performs
its operation ``N`` and ``6 N`` times in a fresh interpreter under callgrind;
the difference over ``5 N`` is the cost of one operation, without the
start-up. Each case is counted on the working tree and on each ``--rev``
(checked out in a temporary git worktree, with its own ``packages/*/src``
first on the path), and shown as a ratio to its group's yardstick (a native
lock) in each tree, with the change of that ratio against the first tree:
``--rev 7690ba1`` puts that commit first, as the base.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OPS = 2_000  # N: the case runs N and 6 N times
REDIS_OPS = 200  # N of the cases on Redis (each a round trip or two)
REDIS_URL = "CC_INSTRUCTIONS_REDIS_URL"  # where the counted Redis cases connect
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


@dataclass(frozen=True)
class Case:
    """One operation: ``make(backend)`` returns ``run(n)`` (async for a loop)."""

    group: str
    name: str
    backend: str  # "threads", "asyncio" or "trio"
    make: Callable[[str], Any]
    yardstick: bool = False
    ops: int = OPS  # its N at the default --ops (scaled with it)


def _bench(module: str) -> Any:
    """Import a bench module (in the counted interpreter, on that tree's cc)."""
    return importlib.import_module(f"bench_{module}")


def _manager(checks: str, nested: bool) -> Callable[[str], Any]:
    """Make the lock manager rows of ``bench_locks``, for ``backend``."""

    def make(backend: str) -> Any:
        locks = _bench("locks")
        if backend != "threads":
            return locks._async_manager(checks, nested)()
        return (locks._manager_nested if nested else locks._manager_pair)(checks)

    return make


def _primitive(kind: str) -> Callable[[str], Any]:
    """Make the ``async with`` rows of ``bench_primitives`` (``kind``: a cc class)."""

    def make(backend: str) -> Any:
        primitives = _bench("primitives")
        if kind == "Lock re-entry":
            return primitives._reentry()
        if kind == "native":
            factory = primitives._native(backend, "Lock")[1]
        else:
            made = getattr(importlib.import_module("cc.primitives"), kind)
            factory = made if kind == "Lock" else lambda: made(10)
        return primitives._async_with(factory)()

    return make


def _redis(kind: str) -> Callable[[str], Any]:
    """Make the uncontended rows of ``bench_locks_redis`` (``kind``: cc or redis-py).

    Against the redis-server of :func:`main` (its URL in :data:`REDIS_URL`);
    only the client's instructions are counted, not the server's.
    """

    def make(backend: str) -> Any:
        redis = _bench("locks_redis")
        mode = "threads" if backend == "threads" else "async"
        run = getattr(redis, f"_{'cc' if kind == 'cc' else 'redis_py'}_{mode}")
        return functools.partial(run, os.environ[REDIS_URL])

    return make


def _native_pair(backend: str) -> Any:
    locks = _bench("locks")
    return locks._rlock_pair if backend == "threads" else locks._native_pair(backend)()


def _cases() -> list[Case]:
    """Return the cases: the bench's own rows (its functions), counted, not timed."""
    cases = []
    for backend in ("threads", "asyncio", "trio"):
        group = f"lock pair [{backend}]"
        native = "threading.RLock" if backend == "threads" else f"{backend}.Lock"
        manager = "LockManager" if backend == "threads" else "AsyncLockManager"
        cases.append(Case(group, f"nested {native}", backend, _native_pair, True))
        for nested in (False, True):
            for checks in ("all checks", "checks off"):
                name = f"{manager} {'nested' if nested else 'pair'}, {checks}"
                cases.append(Case(group, name, backend, _manager(checks, nested)))
    for backend in ("asyncio", "threads"):
        group = f"lock on redis [{backend}]"
        native = "redis" if backend == "threads" else "redis.asyncio"
        manager = "LockManager" if backend == "threads" else "AsyncLockManager"
        cases.append(Case(group, f"{native}.lock.Lock", backend, _redis("redis-py"),
                          True, REDIS_OPS))  # fmt: skip
        cases.append(Case(group, f"{manager} + RedisLockBackend", backend,
                          _redis("cc"), ops=REDIS_OPS))  # fmt: skip
    for backend in ("asyncio", "trio"):
        group = f"primitives [{backend}]"
        native = _primitive("native")
        cases.append(Case(group, f"{backend}.Lock", backend, native, True))
        for kind in ("Lock", "Lock re-entry", "Semaphore", "CapacityLimiter"):
            cases.append(Case(group, f"cc {kind}", backend, _primitive(kind)))
    return cases


CASES = _cases()


def perform(case: Case, n: int) -> None:
    """Perform ``case``'s operation ``n`` times (in the counted interpreter)."""
    run = case.make(case.backend)
    if case.backend == "threads":
        run(n)
        return
    import anyio

    anyio.run(run, n, backend=case.backend)


def count(tree: Path, case: Case, n: int) -> int:
    """Return the instructions of a fresh interpreter performing ``case`` ``n`` times.

    :raises RuntimeError: if valgrind is missing or the run fails
    """
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise RuntimeError("valgrind is not installed (Debian's package valgrind)")
    paths = [str(p) for p in sorted((tree / "packages").glob("*/src"))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    index = CASES.index(case)
    done = subprocess.run(
        [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, str(Path(__file__).resolve()), "--perform", str(index),
         str(n)],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(
            f"{case.name} on {tree}: exit {done.returncode}\n{done.stderr[-2000:]}"
        )
    return int(found.group(1))


def per_operation(tree: Path, case: Case, ops: int = OPS) -> float:
    """Instructions of one operation: (count at 6 ``ops`` - at ``ops``) / 5 ``ops``."""
    return (count(tree, case, 6 * ops) - count(tree, case, ops)) / (5 * ops)


@contextmanager
def checkout(rev: str) -> Iterator[Path]:
    """Check ``rev`` out in a temporary git worktree (removed afterwards)."""
    folder = Path(tempfile.mkdtemp(prefix="cc-instructions-"))
    tree = folder / "tree"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree), rev],
        check=True,
    )
    try:
        yield tree
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
            check=False,
        )
        shutil.rmtree(folder, ignore_errors=True)


def table(trees: list[str], cases: list[Case], counts: dict[Any, float]) -> str:
    """Render instructions per operation and ratios, one column per tree."""
    lines = ["instructions per operation; ratio to the group's yardstick (*)"]
    head = "".join(f"{t[:22]:>24}" for t in trees)
    for group in dict.fromkeys(c.group for c in cases):
        members = [c for c in cases if c.group == group]
        yard = next((c for c in members if c.yardstick), None)
        lines += ["", f"{group:<44}{head}"]
        for case in members:
            cells, ratios = [], []
            for tree in trees:
                mine = counts[tree, case]
                ratio = mine / counts[tree, yard] if yard else None
                ratios.append(ratio)
                text = f"{mine:,.0f}" + (f" {ratio:5.2f}x" if ratio else "")
                cells.append(f"{text:>24}")
            change = ""
            if len(trees) > 1 and ratios[0] and not case.yardstick:
                delta = ratios[-1] / ratios[0] - 1
                change = f"  {delta:+.0%}" + (" (over 10%)" if delta > 0.10 else "")
            mark = "*" if case.yardstick else " "
            lines.append(f"{mark} {case.name:<42}" + "".join(cells) + change)
    lines += ["", "change: the last tree's ratio against the first tree's"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Count every case (or those named by ``--only``) on each tree; print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rev", nargs="*", default=[], help="commits to compare")
    parser.add_argument(
        "--only", nargs="*", default=[], help="words a case's group or name contains"
    )
    parser.add_argument("--ops", type=int, default=OPS, help="N (6 N is the other)")
    parser.add_argument("--perform", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.perform:
        perform(CASES[int(args.perform[0])], int(args.perform[1]))
        return 0
    cases = [
        c for c in CASES
        if not args.only or any(w in f"{c.group} {c.name}" for w in args.only)
    ]  # fmt: skip
    names = [*args.rev, "working tree"]
    with _trees(args.rev) as paths, _redis_server(cases) as cases:
        jobs = [(name, case) for name in names for case in cases]
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            results = pool.map(
                lambda job: per_operation(
                    paths[job[0]], job[1], max(1, job[1].ops * args.ops // OPS)
                ),
                jobs,
            )
            counts = dict(zip(jobs, results, strict=True))
    print(table(names, cases, counts))
    return 0


@contextmanager
def _redis_server(cases: list[Case]) -> Iterator[list[Case]]:
    """Start a redis-server for the cases on Redis (or leave them out, saying why)."""
    if not any(c.ops == REDIS_OPS for c in cases):
        yield cases
        return
    if str(HERE) not in sys.path:  # imported, not run (the tools tests)
        sys.path.insert(0, str(HERE))
    redis = _bench("locks_redis")
    with tempfile.TemporaryDirectory(prefix="cc-instructions-redis-") as directory:
        started = redis._start_server(directory)
        if started is None:
            print("(the cases on Redis are left out: no redis-server; set "
                  "CC_REDIS_SERVER or install Debian's redis-server)")  # fmt: skip
            yield [c for c in cases if c.ops != REDIS_OPS]
            return
        process, os.environ[REDIS_URL] = started
        try:
            yield cases
        finally:
            process.terminate()
            process.wait(10)


@contextmanager
def _trees(revs: list[str]) -> Iterator[dict[str, Path]]:
    if not revs:
        yield {"working tree": ROOT}
        return
    with checkout(revs[0]) as first, _trees(revs[1:]) as rest:
        yield {revs[0]: first, **rest}


if __name__ == "__main__":
    sys.exit(main())
