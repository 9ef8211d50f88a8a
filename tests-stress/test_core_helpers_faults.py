"""async_gather and async_map under random failures and cancellations.

Each test runs a few hundred seeded rounds on one backend. A round builds
up to 40 jobs, each of which returns at once, returns after a checkpoint or
a short sleep, fails at once or after a sleep, hangs until cancelled, or
gathers sub-jobs of its own; then it runs them through

* ``async_gather`` (with or without ``limit`` and ``return_exceptions``), or
* ``async_map`` over a list, a generator, an async generator or a source
  that fails part-way, consumed by ``await``, by ``async for`` (sometimes
  breaking out early) or by ``async with``,

bare, under ``anyio.move_on_after`` or under ``async_wait_for``. Hanging
jobs appear only where something must end them: a deadline, or (without
``return_exceptions``) a failure claimed before them, which must cancel
them.

After every round: the outcome is the one the semantics promise (the
results in order, or the first failure raised as itself, never in a group,
or the cancellation, or TimeoutError); every job that started has finished
(its ``finally`` ran); every coroutine handed to a helper is closed, started
or not; and the backend runs no task that was not running before the round.
"""

from __future__ import annotations

import inspect
import random
from collections import Counter
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any

import anyio
import pytest
from anyio.lowlevel import checkpoint

from cc.core_helpers import async_gather, async_map, async_wait_for

pytestmark = pytest.mark.anyio

ROUNDS = 300
ROUND_LIMIT = 5.0
KINDS = ["value", "yield", "sleep", "fail", "fail_late", "hang", "nested"]


class InjectedFault(Exception):
    """A job failure that the plan asked for."""


class SourceFault(Exception):
    """A failure of async_map's source that the plan asked for."""


class Round:
    """One round's jobs and what became of them."""

    def __init__(self, rng: random.Random, ended_by: str) -> None:
        self.rng = rng
        count = rng.randint(1, 40)
        fail = rng.choice([0, 0, 0.2, 1])  # half the rounds have no failure
        hang = 0 if ended_by == "nothing" else 1
        weights = [4, 3, 3, fail, fail, hang, 1]
        self.kinds = rng.choices(KINDS, weights, k=count)
        if ended_by == "a failure" and "hang" in self.kinds:
            # Only a failure claimed before the first hanging job can end it.
            first_hang = self.kinds.index("hang")
            if not any(k.startswith("fail") for k in self.kinds[:first_hang]):
                self.kinds[first_hang] = "fail"
        self.delays = [rng.choice([0.0002, 0.001, 0.003]) for _ in range(count)]
        self.started: set[int] = set()
        self.exited: set[int] = set()
        self.coroutines: list[Coroutine[Any, Any, Any]] = []
        self.outcomes: Counter[str] = Counter()

    def job(self, ident: int) -> Coroutine[Any, Any, int]:
        """Return the coroutine of job ``ident`` (tracked until closed)."""
        coroutine = self._run(ident)
        self.coroutines.append(coroutine)
        return coroutine

    def expected(self, ident: int) -> Any:
        """Return what job ``ident`` returns, or the exception it raises."""
        kind = self.kinds[ident] if ident < len(self.kinds) else "value"
        if kind.startswith("fail"):
            return InjectedFault(ident)
        if kind == "nested":
            return sum(self._subs(ident))
        return ident

    def failing(self) -> set[int]:
        """Return the ids of the jobs planned to fail."""
        return {i for i, kind in enumerate(self.kinds) if kind.startswith("fail")}

    def _subs(self, ident: int) -> list[int]:
        return [ident * 1000 + 1000 + k for k in range(3)]

    async def _run(self, ident: int) -> int:
        self.started.add(ident)
        try:
            kind = self.kinds[ident] if ident < len(self.kinds) else "yield"
            if kind == "value":
                return ident
            if kind == "yield":
                await checkpoint()
                return ident
            if kind == "sleep":
                await anyio.sleep(self.delays[ident])
                return ident
            if kind == "fail":
                raise InjectedFault(ident)
            if kind == "fail_late":
                await anyio.sleep(self.delays[ident])
                raise InjectedFault(ident)
            if kind == "hang":
                await anyio.sleep_forever()
            # nested: a gather of sub-jobs (which just checkpoint)
            results = await async_gather(*(self.job(s) for s in self._subs(ident)))
            return sum(results)
        finally:
            self.exited.add(ident)

    def check_structure(self, kit: Any, baseline: set[object], where: str) -> None:
        """Every started job finished, every coroutine is closed, no task left."""
        running = sorted(self.started - self.exited)
        assert not running, f"jobs still suspended: {running} {where}"
        open_ones = [
            c for c in self.coroutines
            if inspect.getcoroutinestate(c) != inspect.CORO_CLOSED
        ]  # fmt: skip
        assert not open_ones, f"{len(open_ones)} coroutines not closed {where}"
        kit.report.check("every job finished and every coroutine closed")
        kit.assert_no_new_tasks(baseline)


def _ended_by(control: str, return_exceptions: bool) -> str:
    """Say what may end a hanging job: a deadline, a failure, or nothing."""
    if control != "bare":
        return "a deadline"
    return "nothing" if return_exceptions else "a failure"


def _check_results(
    results: list[Any], round_: Round, idents: list[int], where: str
) -> None:
    for ident, result in zip(idents, results, strict=True):
        expected = round_.expected(ident)
        if isinstance(expected, InjectedFault):
            assert type(result) is InjectedFault, f"{ident}: {result!r} {where}"
            assert result.args == expected.args, f"{ident}: {result!r} {where}"
        else:
            assert result == expected, f"{ident}: {result!r} != {expected} {where}"


def _check_failure(error: BaseException, round_: Round, where: str) -> None:
    assert type(error) is InjectedFault, f"raised {error!r}, not as itself {where}"
    assert error.args[0] in round_.failing(), f"{error!r} {where}"
    assert error.args[0] in round_.started, f"{error!r} never started {where}"


async def _gather_round(kit: Any, rng: random.Random, baseline: set[object]) -> None:
    control = rng.choice(["bare", "bare", "deadline", "wait_for"])
    return_exceptions = rng.random() < 0.3
    round_ = Round(rng, _ended_by(control, return_exceptions))
    count = len(round_.kinds)
    limit = rng.choice([None, None, 1, 3, 16])
    where = kit.where(
        helper="async_gather",
        control=control,
        limit=limit,
        return_exceptions=return_exceptions,
        kinds=round_.kinds,
    )
    coroutines = [round_.job(i) for i in range(count)]
    gather = async_gather(*coroutines, limit=limit, return_exceptions=return_exceptions)
    results: list[Any] | None = None
    error: BaseException | None = None
    deadline = rng.choice([0.0005, 0.002, 0.01])
    try:
        if control == "bare":
            results = await gather
        elif control == "wait_for":
            results = await async_wait_for(gather, deadline)
        else:
            with anyio.move_on_after(deadline) as scope:
                results = await gather
            if scope.cancelled_caught:
                round_.outcomes["gathers cancelled by a deadline"] += 1
    except InjectedFault as exc:
        error = exc
    except TimeoutError:
        assert control == "wait_for", where
        round_.outcomes["async_wait_for timeouts"] += 1
    if error is not None:
        assert not return_exceptions or control != "bare", where
        _check_failure(error, round_, where)
        round_.outcomes["failures raised as themselves"] += 1
    elif results is not None:
        if not return_exceptions:
            assert not round_.failing() & round_.started, f"failure lost {where}"
        _check_results(results, round_, list(range(count)), where)
        kit.report.check("gather results in order")
    del error, results, gather, coroutines
    round_.check_structure(kit, baseline, where)
    _tally(kit, round_, "async_gather")


def _sync_source(count: int, fail_at: int | None) -> Iterator[int]:
    for ident in range(count):
        if ident == fail_at:
            raise SourceFault(ident)
        yield ident


async def _async_source(count: int, fail_at: int | None) -> AsyncIterator[int]:
    for ident in _sync_source(count, fail_at):
        if ident % 3 == 0:
            await checkpoint()
        yield ident


async def _map_round(kit: Any, rng: random.Random, baseline: set[object]) -> None:
    control = rng.choice(["bare", "bare", "deadline"])
    return_exceptions = rng.random() < 0.3
    round_ = Round(rng, _ended_by(control, return_exceptions))
    count = len(round_.kinds)
    limit = rng.choice([1, 2, 5, 16])
    source_kind = rng.choice(["list", "generator", "async generator"])
    fail_at = rng.choice([None, None, rng.randrange(count)])
    if source_kind == "list":
        fail_at = None
    consume = rng.choice(["await", "async for", "async with"])
    break_at = rng.choice([None, rng.randrange(count)])
    where = kit.where(
        helper="async_map",
        control=control,
        limit=limit,
        return_exceptions=return_exceptions,
        source=source_kind,
        fail_at=fail_at,
        consume=consume,
        break_at=break_at,
        kinds=round_.kinds,
    )
    async_source = None
    if source_kind == "list":
        source: Any = list(range(count))
    elif source_kind == "generator":
        source = _sync_source(count, fail_at)
    else:
        source = async_source = _async_source(count, fail_at)
    mapped = async_map(
        round_.job, source, limit=limit, return_exceptions=return_exceptions
    )
    got: list[Any] = []
    error: BaseException | None = None
    cancelled = False
    try:
        with anyio.move_on_after(
            rng.choice([0.0005, 0.002, 0.01]) if control == "deadline" else None
        ) as scope:
            if consume == "await":
                got = await mapped
            elif consume == "async for":
                async for result in mapped:
                    got.append(result)
                    if len(got) - 1 == break_at:
                        round_.outcomes["async_map loops left early"] += 1
                        break
            else:
                async with mapped as results:
                    async for result in results:
                        got.append(result)
                        if len(got) - 1 == break_at:
                            round_.outcomes["async_map loops left early"] += 1
                            break
        cancelled = scope.cancelled_caught
    except (InjectedFault, SourceFault) as exc:
        error = exc
    finally:
        if async_source is not None:
            await async_source.aclose()  # async_map leaves its source open
    if cancelled:
        round_.outcomes["maps cancelled by a deadline"] += 1
    if isinstance(error, SourceFault):
        assert error.args == (fail_at,), where
        round_.outcomes["map sources failed part-way"] += 1
    elif error is not None:
        _check_failure(error, round_, where)
        round_.outcomes["failures raised as themselves"] += 1
    # Whatever came out came in order, and is right.
    _check_results(got, round_, list(range(len(got))), where)
    if error is None and not cancelled:
        complete = break_at is None or consume == "await"
        if complete:
            assert len(got) == (count if fail_at is None else fail_at), where
        if not return_exceptions:
            assert not round_.failing() & set(range(len(got))), where
        kit.report.check("map results in order")
    del error, got, mapped, source
    round_.check_structure(kit, baseline, where)
    _tally(kit, round_, "async_map")


def _tally(kit: Any, round_: Round, helper: str) -> None:
    report = kit.report
    report.moved(f"jobs run by {helper}", len(round_.started))
    failing = round_.failing() & round_.started
    report.fault("job failures (core helpers)", len(failing))
    hung = {i for i, kind in enumerate(round_.kinds) if kind == "hang"}
    report.fault("hanging jobs cancelled", len(hung & round_.started))
    for what, count in round_.outcomes.items():
        report.fault(what, count)


async def test_gather_and_map_leave_nothing_running(kit: Any, backend: str) -> None:
    """Seeded rounds of gather and map under faults; see the module."""
    baseline = kit.live_tasks()
    for _ in range(ROUNDS):
        rng = random.Random(kit.rng.getrandbits(64))
        # A round that hangs fails here rather than at the test's timeout
        # (and is caught even if the helper then raises a job's failure
        # instead of the guard's cancellation).
        with anyio.move_on_after(ROUND_LIMIT) as guard:
            if rng.random() < 0.5:
                await _gather_round(kit, rng, baseline)
            else:
                await _map_round(kit, rng, baseline)
        assert not guard.cancel_called, f"a round hung {kit.where()}"
    kit.report.moved(f"core helper rounds ({backend})", ROUNDS)
