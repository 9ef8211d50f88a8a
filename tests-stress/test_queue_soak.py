"""Queue soak: a quarter of a million items through WorkQueues, under faults.

Each test runs episodes on one backend until its share of items has gone
through. An episode is one of three kinds, drawn from the seeded plan:

* **workers**: a :class:`WorkQueue` (random ``maxsize``, 2 to 32 workers)
  fed by up to eight producers with put timeouts of 0, a few milliseconds,
  the default or infinity. Workers fail at once or after waiting; error
  handlers fail in turn (or there is no handler and the queue logs the
  error); producers cancel one another, blocked in ``put()`` or between two
  puts; full queues reject items (backpressure). The queue is then drained,
  or stopped mid-flight with ``stop()`` (busy workers finish),
  ``stop(timeout=0)`` or ``stop(timeout=a few ms)``. Some queues have a
  start-rate limit, which the run as a whole must keep.
* **batch**: :meth:`WorkQueue.batch_process` over a generator or an async
  generator that raises part-way (or not), with failing workers, failing
  error handlers and failing progress callbacks.
* **host cancelled**: the task hosting a :class:`BoundedQueue` (the engine
  under every WorkQueue) is cancelled inside its ``async with`` block while
  producers are blocked and workers are busy.

After every episode the accounts balance exactly, by item id: every item a
producer got ``True`` for (or a batch took from its source) was processed
once, reported once as an error, or handed back once, and nothing else was;
the queue's metrics say the same; error-handler failures were logged one by
one; the queue is stopped with no worker; the backend runs no task that was
not running before; and sampled items are no longer referenced by anything.
Each test finally checks that the memory allocated by the interpreter came
back to what it was after a warm-up episode.
"""

from __future__ import annotations

import gc
import math
import random
import weakref
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
from anyio.lowlevel import checkpoint

from cc.queues import BoundedQueue, QueueStateError, QueueStatus, WorkQueue

pytestmark = pytest.mark.anyio

# Items per backend: at least 200,000 through asyncio and trio together.
ITEMS = {"asyncio": 110_000, "asyncio+uvloop": 30_000, "trio": 110_000}
# Memory allowed to stay allocated after the soak, in interpreter blocks. A
# leak of one object per item would be tens of thousands.
MEMORY_SLACK_BLOCKS = 3_000

# What a worker does with an item (Job.code).
OK_NOW, OK_YIELD, OK_SLEEP, FAIL_NOW, FAIL_YIELD, FAIL_TWICE = range(6)
SLEEP = 0.0005


class Job:
    """An item: an id the ledger tracks, and what the worker will do with it."""

    __slots__ = ("__weakref__", "code", "id")

    def __init__(self, ident: int, code: int) -> None:
        self.id = ident
        self.code = code

    def __repr__(self) -> str:
        return f"Job({self.id})"


Samples = list["weakref.ref[Job]"]


class InjectedFault(Exception):
    """A worker failure that the plan asked for."""


class HandlerFault(Exception):
    """An error-handler failure that the plan asked for."""


class SourceFault(Exception):
    """A failure of a batch's source iterable that the plan asked for."""


@dataclass
class Ledger:
    """What happened to every item of an episode, by id."""

    accepted: set[int] = field(default_factory=set)
    processed: set[int] = field(default_factory=set)
    errored: set[int] = field(default_factory=set)
    duplicates: list[str] = field(default_factory=list)
    wrong_exceptions: int = 0
    rejected: int = 0
    refused: int = 0
    producers_cancelled: int = 0
    cancels_sent: int = 0
    handler_raised: int = 0
    progress_calls: int = 0
    progress_raised: int = 0
    # Cancel this scope once this many items were processed (a batch's caller).
    cancel_at: float = math.inf
    cancel_scope: anyio.CancelScope | None = None
    # When each item started, for queues with a start-rate limit.
    starts: list[float] | None = None

    def worker(self) -> Any:
        """Return the worker function, which records what it processed."""
        processed = self.processed

        starts = self.starts

        async def work(job: Job) -> int:
            if starts is not None:
                starts.append(anyio.current_time())
            code = job.code
            if code in (OK_YIELD, FAIL_YIELD):
                await checkpoint()
            elif code == OK_SLEEP:
                await anyio.sleep(SLEEP)
            if code >= FAIL_NOW:
                raise InjectedFault(job.id)
            # Nothing awaits after this: once recorded, the item is processed.
            if job.id in processed:
                self.duplicates.append(f"processed twice: {job!r}")
            processed.add(job.id)
            if len(processed) == self.cancel_at and self.cancel_scope is not None:
                self.cancel_scope.cancel()
            return job.id

        return work

    def error_handler(self) -> Any:
        """Return the error handler, which records the items reported to it."""
        errored = self.errored

        async def on_error(exc: Exception, job: Job) -> None:
            if job.id in errored:
                self.duplicates.append(f"reported twice: {job!r}")
            errored.add(job.id)
            if type(exc) is not InjectedFault or exc.args != (job.id,):
                self.wrong_exceptions += 1
            if job.code == FAIL_TWICE:
                await checkpoint()
                self.handler_raised += 1
                raise HandlerFault(job.id)

        return on_error

    def progress(self) -> Any:
        """Return a progress callback that fails now and then."""

        def on_progress(done: int, total: int | None) -> None:
            self.progress_calls += 1
            if done % 97 == 0:
                self.progress_raised += 1
                raise RuntimeError(f"progress callback fault at {done}")

        return on_progress


def _codes(rng: random.Random, count: int) -> list[int]:
    fail = rng.choice([0.0, 0.02, 0.1, 0.3])
    slow = rng.choice([0.0, 0.01, 0.05])
    weights = [
        1 - fail - slow - 0.2,  # OK_NOW
        0.2,  # OK_YIELD
        slow,  # OK_SLEEP
        fail * 0.4,  # FAIL_NOW
        fail * 0.3,  # FAIL_YIELD
        fail * 0.3,  # FAIL_TWICE
    ]
    return rng.choices(range(6), weights, k=count)


@dataclass(frozen=True)
class WorkerPlan:
    """The fault plan of one "workers" episode."""

    items: int
    maxsize: int
    workers: int
    put_timeouts: tuple[float | None, ...]
    with_handler: bool
    stop: str  # "drain", "wait", "now" or "timeout"
    stop_timeout: float | None
    stop_at: float  # accepted items after which the queue is stopped
    # producer -> {its n-th put: producers it cancels just before}
    cancels: dict[int, dict[int, list[int]]]
    # (items, seconds): the queue's start-rate limit, or None
    rate: tuple[int, float] | None

    @classmethod
    def draw(cls, rng: random.Random, items: int) -> WorkerPlan:
        """Draw a plan for ``items`` items."""
        producers = rng.randint(1, 8)
        stop = rng.choice(["drain", "drain", "wait", "now", "timeout"])
        cancels: dict[int, dict[int, list[int]]] = {}
        for _ in range(rng.choice([0, 0, 1, 2, 4])):
            by = rng.randrange(producers)
            at = rng.randint(1, max(1, items // producers))
            cancels.setdefault(by, {}).setdefault(at, []).append(
                rng.randrange(producers)
            )
        return cls(
            items=items,
            maxsize=rng.choice([1, 2, 7, 32, 128, 1024]),
            workers=rng.randint(2, 32),
            put_timeouts=tuple(
                rng.choice([0, 0.001, 0.005, None, math.inf]) for _ in range(producers)
            ),
            with_handler=rng.random() < 0.8,
            stop=stop,
            stop_timeout={"now": 0.0, "timeout": rng.choice([0.0005, 0.003])}.get(stop),
            stop_at=math.inf if stop == "drain" else rng.randint(1, items),
            cancels=cancels,
            rate=(rng.choice([100, 400]), rng.choice([0.01, 0.02]))
            if rng.random() < 0.15
            else None,
        )


class Soak:
    """Runs the episodes of one test and checks each one."""

    def __init__(self, kit: Any, backend: str) -> None:
        self.kit = kit
        self.rng: random.Random = kit.rng
        self.report = kit.report
        self.backend = backend
        self.next_id = 0
        self.episode = 0
        self.baseline_tasks: set[object] = set()

    def jobs(self, count: int) -> list[Job]:
        """Return ``count`` new jobs with fresh ids and planned codes."""
        first = self.next_id
        self.next_id += count
        codes = _codes(self.rng, count)
        return [Job(first + i, code) for i, code in enumerate(codes)]

    # -- checks --------------------------------------------------------------

    def check_balance(
        self,
        ledger: Ledger,
        taken: set[int],
        handed_back: list[int],
        metrics: dict[str, int] | None,
        where: str,
    ) -> None:
        """Check that ``taken`` = processed + errors + handed back, exactly."""
        back = set(handed_back)
        processed, errored = ledger.processed, ledger.errored
        assert not ledger.duplicates, f"{ledger.duplicates[:5]} {where}"
        assert len(back) == len(handed_back), f"an item handed back twice {where}"
        assert not processed & errored, f"processed and failed: {where}"
        assert not processed & back, f"processed and handed back: {where}"
        assert not errored & back, f"failed and handed back: {where}"
        outcome = processed | errored | back
        lost = sorted(taken - outcome)
        extra = sorted(outcome - taken)
        assert not lost, f"{len(lost)} item(s) lost, e.g. {lost[:10]} {where}"
        assert not extra, f"unknown item(s) came out: {extra[:10]} {where}"
        assert ledger.wrong_exceptions == 0, f"handler got a wrong error {where}"
        if metrics is not None:
            expected = {
                "enqueued": len(taken),
                "processed": len(processed),
                "errors": len(errored),
                "refused_puts": ledger.rejected,
                "handed_back": len(back),
            }
            # Every refused put met a full queue; so did the puts that waited
            # and then got room, were cancelled or saw the queue stop.
            waited = metrics.pop("backpressure_events")
            assert waited >= ledger.rejected, f"{metrics} {where}"
            assert metrics == expected, f"metrics {metrics} != {expected} {where}"
        self.report.check("ledger balanced by item id")

    async def check_released(self, samples: Samples, where: str) -> None:
        """Check that no sampled item is still referenced by anything."""
        alive = [ref() for ref in samples if ref() is not None]
        if alive:  # maybe only in a reference cycle: collect, then look again
            del alive
            gc.collect()
            alive = [ref() for ref in samples if ref() is not None]
        if alive:
            # The event loop may keep the last cancellation it delivered to
            # this task (and, through its traceback, the episode's frames)
            # until the next one: deliver one, then look again.
            del alive
            with anyio.CancelScope() as scope:
                scope.cancel()
                await checkpoint()
            gc.collect()
            alive = [ref() for ref in samples if ref() is not None]
        assert not alive, f"items still referenced after the episode: {alive} {where}"
        self.report.check("items released after the episode")

    def check_stopped(self, queue: Any, where: str) -> None:
        """Check that the queue is stopped, empty, and runs no worker."""
        assert queue.status is QueueStatus.STOPPED, where
        assert queue.worker_count == 0, f"{queue.worker_count} workers {where}"
        assert queue.size == 0, where
        self.report.check("queue stopped with no worker")

    def tally(self, ledger: Ledger, kind: str, **counts: int) -> None:
        """Add an episode's load and faults to the session report."""
        report = self.report
        report.moved(f"items accepted by queues ({self.backend})", len(ledger.accepted))
        report.fault("worker failures", len(ledger.errored))
        report.fault("error handler failures", ledger.handler_raised)
        report.fault("producers cancelled", ledger.producers_cancelled)
        report.fault("puts rejected by backpressure", ledger.rejected)
        report.fault("progress callback failures", ledger.progress_raised)
        report.fault(f"queue runs: {kind}")
        for what, count in counts.items():
            if count:
                report.fault(what, count)

    # -- episodes ------------------------------------------------------------

    async def run(self, total: int) -> None:
        """Run episodes until ``total`` items were taken in."""
        taken = 0
        while taken < total:
            self.episode += 1
            size = min(self.rng.randint(2_000, 8_000), max(total - taken, 500))
            kind = self.rng.choices(
                ["workers", "batch", "host cancelled"], [0.7, 0.15, 0.15]
            )[0]
            taken += await self.episode_of(kind, size)

    async def episode_of(self, kind: str, size: int) -> int:
        """Run one episode of ``kind``; check that it let go of its items."""
        episode = {
            "workers": self.workers_episode,
            "batch": self.batch_episode,
            "host cancelled": self.host_cancelled_episode,
        }[kind]
        taken, samples = await episode(size)
        await self.check_released(samples, self.kit.where(episode=self.episode))
        return taken

    async def workers_episode(self, size: int) -> tuple[int, Samples]:
        """Run producers, workers and faults around one WorkQueue."""
        plan = WorkerPlan.draw(self.rng, size)
        where = self.kit.where(episode=self.episode, plan=plan)
        jobs = self.jobs(size)
        samples = [weakref.ref(job) for job in self.rng.sample(jobs, 32)]
        ledger = Ledger()
        logger, tally = self.kit.logger("soak")
        queue = WorkQueue[Job](
            maxsize=plan.maxsize,
            timeout=0.002,
            concurrency_limit=plan.workers,
            logger=logger,
            rate_limit=None if plan.rate is None else plan.rate[0],
            rate_window=1.0 if plan.rate is None else plan.rate[1],
        )
        if plan.rate is not None:
            ledger.starts = []
        producers = len(plan.put_timeouts)
        scopes = [anyio.CancelScope() for _ in range(producers)]
        stop_now = anyio.Event()
        producers_done = anyio.Event()
        finished = 0
        accepted = ledger.accepted

        async def produce(me: int, mine: list[Job]) -> None:
            nonlocal finished
            timeout = plan.put_timeouts[me]
            cancels = plan.cancels.get(me, {})
            puts = 0
            with scopes[me]:
                for job in mine:
                    while True:
                        puts += 1
                        for victim in cancels.get(puts, ()):
                            scopes[victim].cancel()
                            ledger.cancels_sent += 1
                        try:
                            added = await queue.put(job, timeout)
                        except QueueStateError:
                            ledger.refused += 1
                            return
                        if added:
                            accepted.add(job.id)
                            if len(accepted) >= plan.stop_at:
                                stop_now.set()
                            break
                        ledger.rejected += 1
                        if job.id % 4 == 0:
                            break  # the producer gives this one up
                        await checkpoint()  # let the workers run, then retry
            if scopes[me].cancelled_caught:
                ledger.producers_cancelled += 1
            finished += 1
            if finished == producers:
                producers_done.set()
                stop_now.set()

        started = anyio.current_time()
        async with anyio.create_task_group() as tg:
            await queue.start()
            await queue.process(
                ledger.worker(),
                error_handler=ledger.error_handler() if plan.with_handler else None,
            )
            for me in range(producers):
                tg.start_soon(produce, me, jobs[me::producers])
            await stop_now.wait()
            if plan.stop == "drain":
                await producers_done.wait()
                await queue.join()
            leftovers = await queue.stop(plan.stop_timeout)
        if not plan.with_handler:
            ledger.errored.update(tally.failed_item_ids)
            assert len(tally.failed_item_ids) == len(ledger.errored), where
        back = [job.id for job in leftovers]
        assert [job.id for job in queue.unprocessed] == back, where
        if plan.stop == "drain":
            assert not back, f"a drained queue handed items back {where}"
        self.check_balance(ledger, accepted, back, queue.metrics, where)
        assert tally.count("error handler") == ledger.handler_raised, where
        if plan.rate is not None and ledger.starts is not None:
            excess = _rate_excess(ledger.starts, started, *plan.rate)
            assert not excess, f"start-rate limit exceeded: {excess} {where}"
            self.report.check("start-rate limit kept")
        self.check_stopped(queue, where)
        self.kit.assert_no_new_tasks(self.baseline_tasks, episode=self.episode)
        self.tally(
            ledger,
            "workers",
            **{
                "items handed back by stop()": len(back),
                f"mid-flight stops ({plan.stop})": plan.stop != "drain",
            },
        )
        return len(accepted), samples

    async def batch_episode(self, size: int) -> tuple[int, Samples]:
        """Run one to three batches on one WorkQueue, some of them interrupted.

        A batch runs to its end, or its source fails part-way, or its caller
        is cancelled once it has processed some items (the feeder then holds
        an item it could not put). After each batch, ``.unprocessed`` holds
        exactly what that batch handed back (nothing, for one that ended).
        """
        rng = self.rng
        jobs = self.jobs(size)
        samples = [weakref.ref(job) for job in rng.sample(jobs, 32)]
        maxsize = rng.choice([1, 4, 64, 512])
        workers = rng.randint(2, 32)
        logger, tally = self.kit.logger("soak")
        queue = WorkQueue[Job](
            maxsize=maxsize, concurrency_limit=workers, logger=logger
        )
        batches = rng.randint(1, 3)
        totals: Counter[str] = Counter()
        taken_in_all = 0
        for number in range(batches):
            mine = jobs[number::batches]
            ledger = Ledger()
            how = rng.choice(["to the end", "source fails", "cancelled"])
            fail_at = rng.randrange(len(mine)) if how == "source fails" else None
            if how == "cancelled":
                ledger.cancel_at = rng.randint(1, len(mine))
            where = self.kit.where(
                episode=self.episode,
                batch=dict(number=number, how=how, fail_at=fail_at,
                           cancel_at=ledger.cancel_at, size=len(mine),
                           maxsize=maxsize, workers=workers),
            )  # fmt: skip
            before = queue.unprocessed
            summary = await self.one_batch(queue, ledger, mine, fail_at, where)
            interrupted = summary is None
            # An interrupted batch replaces .unprocessed with what it handed
            # back (maybe nothing); a finished one leaves it as it was.
            back = [job.id for job in queue.unprocessed] if interrupted else []
            if not interrupted:
                assert queue.unprocessed == before, f"changed by a batch {where}"
            self.check_balance(ledger, ledger.accepted, back, None, where)
            finished = len(ledger.processed) + len(ledger.errored)
            assert ledger.progress_calls == finished, where
            if summary is not None:
                assert summary.total == finished, where
                assert summary.succeeded == len(ledger.processed), where
                assert summary.failed == len(ledger.errored), where
                self.report.check("batch summary matches the ledger")
            totals.update(
                enqueued=len(ledger.accepted),
                processed=len(ledger.processed),
                errors=len(ledger.errored),
                handed_back=len(back),
                handler_raised=ledger.handler_raised,
                progress_raised=ledger.progress_raised,
            )
            taken_in_all += len(ledger.accepted)
            self.tally(
                ledger,
                "batch",
                **{
                    f"batches interrupted ({how})": interrupted,
                    "items handed back by an interrupted batch": len(back),
                },
            )
        where = self.kit.where(episode=self.episode, batches=batches)
        expected = {
            "enqueued": totals["enqueued"],
            "processed": totals["processed"],
            "errors": totals["errors"],
            "refused_puts": 0,  # a batch waits for room as long as it takes
            "handed_back": totals["handed_back"],
        }
        metrics = queue.metrics
        del metrics["backpressure_events"]  # the batches' waits for room
        assert metrics == expected, f"{metrics} != {expected} {where}"
        assert tally.count("error handler") == totals["handler_raised"], where
        assert tally.count("progress callback") == totals["progress_raised"], where
        assert queue.worker_count == 0, where
        self.kit.assert_no_new_tasks(self.baseline_tasks, episode=self.episode)
        return taken_in_all, samples

    async def one_batch(
        self,
        queue: WorkQueue[Job],
        ledger: Ledger,
        jobs: list[Job],
        fail_at: int | None,
        where: str,
    ) -> Any:
        """Run one batch; return its summary, or None if it was interrupted."""
        rng = self.rng
        taken = ledger.accepted

        def planned() -> Iterator[Job]:
            for index, job in enumerate(jobs):
                if index == fail_at:
                    raise SourceFault(job.id)
                yield job

        # An item counts as taken once the source hands it to the batch.
        def source() -> Iterator[Job]:
            for job in planned():
                taken.add(job.id)
                yield job

        async def async_source() -> AsyncIterator[Job]:
            for job in planned():
                if job.code == OK_YIELD:
                    await checkpoint()
                taken.add(job.id)
                yield job

        collect = rng.random() < 0.3
        summary = None
        # batch_process leaves the iterable to its owner, who closes it.
        items = async_source() if rng.random() < 0.5 else source()
        with anyio.CancelScope() as scope:
            ledger.cancel_scope = scope
            try:
                summary = await queue.batch_process(
                    items,
                    ledger.worker(),
                    error_handler=ledger.error_handler(),
                    collect_results=collect,
                    on_progress=ledger.progress(),
                )
            except SourceFault:
                assert fail_at is not None, where
            else:
                assert fail_at is None, f"the source's failure was lost {where}"
            finally:
                with anyio.CancelScope(shield=True):
                    await _close(items)
        if scope.cancelled_caught:
            assert summary is None, where
        if summary is not None and collect:
            assert set(summary.results.values()) == ledger.processed, where
            assert len(summary.errors) == len(ledger.errored), where
        return summary

    async def host_cancelled_episode(self, size: int) -> tuple[int, Samples]:
        """Cancel the task hosting a queue inside its async with block."""
        rng = self.rng
        jobs = self.jobs(size)
        samples = [weakref.ref(job) for job in rng.sample(jobs, 32)]
        producers = rng.randint(1, 6)
        maxsize = rng.choice([1, 8, 64])
        workers = rng.randint(1, 16)
        cancel_at = rng.randint(1, size)
        kind = rng.choice(["WorkQueue", "BoundedQueue"])
        where = self.kit.where(
            episode=self.episode,
            host=dict(kind=kind, maxsize=maxsize, workers=workers, cancel_at=cancel_at),
        )
        ledger = Ledger()
        accepted = ledger.accepted
        logger, tally = self.kit.logger("soak")
        queue: Any
        if kind == "WorkQueue":
            queue = WorkQueue[Job](
                maxsize=maxsize,
                timeout=math.inf,
                concurrency_limit=workers,
                logger=logger,
            )
        else:
            queue = BoundedQueue[Job](maxsize=maxsize, timeout=math.inf, logger=logger)

        async def produce(mine: list[Job], host: anyio.CancelScope) -> None:
            for job in mine:
                try:
                    await queue.put(job)
                except QueueStateError:
                    ledger.refused += 1
                    return
                accepted.add(job.id)
                if len(accepted) == cancel_at:
                    host.cancel()

        with anyio.CancelScope() as host:
            async with anyio.create_task_group() as tg, queue:
                if kind == "WorkQueue":
                    await queue.process(
                        ledger.worker(), error_handler=ledger.error_handler()
                    )
                else:
                    await queue.start_workers(
                        ledger.worker(), workers, ledger.error_handler()
                    )
                for me in range(producers):
                    tg.start_soon(produce, jobs[me::producers], host)
                await anyio.sleep_forever()
        assert host.cancelled_caught, where
        back = [job.id for job in queue.unprocessed]
        self.check_balance(ledger, accepted, back, queue.metrics, where)
        assert tally.count("error handler") == ledger.handler_raised, where
        self.check_stopped(queue, where)
        self.kit.assert_no_new_tasks(self.baseline_tasks, episode=self.episode)
        self.tally(
            ledger,
            "host cancelled",
            **{
                f"host tasks cancelled mid-flight ({kind})": 1,
                "items handed back by a cancelled host": len(back),
            },
        )
        return len(accepted), samples


def _rate_excess(
    starts: list[float], since: float, limit: int, window: float
) -> str | None:
    """Say how a run's starts exceed the start-rate limit, if they do.

    At most ``limit`` items start in any ``window`` seconds, so at most
    ``limit * (span / window + 1)`` in a run whose starts all fall within
    ``span`` seconds. Workers read the clock a little after the limiter, by
    a margin a loaded machine makes unpredictable; the bound only grows with
    it, so it holds however late they read. (The exactness of the window
    itself is checked in virtual time, in test_primitives_interleavings.py.)
    """
    if not starts:
        return None
    span = max(starts) - since
    bound = limit * (span / window + 1)
    if len(starts) > bound:
        return f"{len(starts)} starts in {span:.4f} s, at most {bound:.0f} allowed"
    return None


async def _close(items: Iterator[Job] | AsyncIterator[Job]) -> None:
    if isinstance(items, AsyncGenerator):
        await items.aclose()
    elif isinstance(items, Generator):
        items.close()


async def test_queue_soak_balances_every_item(kit: Any, backend: str) -> None:
    """Push this backend's share of items through faulty queues; see the module."""
    soak = Soak(kit, backend)
    soak.baseline_tasks = kit.live_tasks()
    # A warm-up episode of each kind fills caches and free lists first.
    for kind in ("workers", "batch", "host cancelled"):
        await soak.episode_of(kind, 1_000)
    baseline = kit.memory_baseline()
    await soak.run(ITEMS[backend] - 3_000)
    blocks, objects = baseline.growth()
    assert blocks < MEMORY_SLACK_BLOCKS, (
        f"{blocks} memory blocks ({objects} objects) still allocated after the "
        f"soak {kit.where(episodes=soak.episode)}"
    )
    kit.report.check("memory back to its baseline")
    kit.report.moved(f"queue episodes ({backend})", soak.episode)
