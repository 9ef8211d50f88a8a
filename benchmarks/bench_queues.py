"""cc-queues against asyncio.Queue, anyio memory streams and trio memory channels.

Timed figures are the cost per item, in microseconds:

* hand-off: one producer puts items into a queue of 100, one consumer gets
  them;
* pool: a producer feeds a queue of 100 drained by 8 workers whose function
  does nothing, until every item is processed (workers started and stopped
  inside the timed run);

plus figures the caller measures: how long ``stop()`` takes once the last
item is done, the CPU an idle pool burns, the peak memory of
``batch_process`` over a generator of a million items against ten items,
and what a large ``concurrency_limit`` costs a small batch (workers start on
demand, so ``batch_process(range(100))`` with a limit of 200,000 must stay
under 50 ms and 10 MB, and scale flat with the limit).
"""

from __future__ import annotations

import asyncio
import math
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anyio

from cc.queues import BoundedQueue, WorkQueue

from harness import BACKENDS, Suite

GROUP = "queues"
HANDOFF_OPS = 100_000
POOL_OPS = 50_000
# The anyio streams and trio channels cost about ten times more per item;
# fewer items measure them just as well and keep the whole module under a
# minute.
SLOW_HANDOFF_OPS = 20_000
SLOW_POOL_OPS = 10_000
MAXSIZE = 100
WORKERS = 8
SMALL_BATCH = 100
HUGE_LIMIT = 200_000

MakeRun = Callable[[], Callable[[int], Awaitable[None]]]


async def _noop(item: object) -> None:
    return None


# -- hand-off: one producer, one consumer -------------------------------------


def _asyncio_queue_handoff() -> Callable[[int], Awaitable[None]]:
    async def run(n: int) -> None:
        queue: asyncio.Queue[int] = asyncio.Queue(MAXSIZE)

        async def produce() -> None:
            for i in range(n):
                await queue.put(i)

        async def consume() -> None:
            for _ in range(n):
                await queue.get()

        await asyncio.gather(produce(), consume())

    return run


def _anyio_stream_handoff() -> Callable[[int], Awaitable[None]]:
    async def run(n: int) -> None:
        send, receive = anyio.create_memory_object_stream[int](MAXSIZE)

        async def produce() -> None:
            async with send:
                for i in range(n):
                    await send.send(i)

        async def consume() -> None:
            async with receive:
                for _ in range(n):
                    await receive.receive()

        async with anyio.create_task_group() as tg:
            tg.start_soon(produce)
            tg.start_soon(consume)

    return run


def _trio_channel_handoff() -> Callable[[int], Awaitable[None]]:
    import trio

    async def run(n: int) -> None:
        send, receive = trio.open_memory_channel[int](MAXSIZE)

        async def produce() -> None:
            async with send:
                for i in range(n):
                    await send.send(i)

        async def consume() -> None:
            async with receive:
                for _ in range(n):
                    await receive.receive()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(produce)
            nursery.start_soon(consume)

    return run


def _cc_handoff(*, task_done: bool) -> MakeRun:
    def make_run() -> Callable[[int], Awaitable[None]]:
        async def run(n: int) -> None:
            async with BoundedQueue[int](MAXSIZE, timeout=math.inf) as queue:

                async def produce() -> None:
                    for i in range(n):
                        await queue.put(i)

                async def consume() -> None:
                    for _ in range(n):
                        await queue.get()
                        if task_done:
                            queue.task_done()

                async with anyio.create_task_group() as tg:
                    tg.start_soon(produce)
                    tg.start_soon(consume)

        return run

    return make_run


# -- pool of no-op workers ----------------------------------------------------


def _asyncio_pool() -> Callable[[int], Awaitable[None]]:
    """Build the hand-written asyncio pool that the issue measures against."""

    async def run(n: int) -> None:
        queue: asyncio.Queue[int] = asyncio.Queue(MAXSIZE)

        async def worker() -> None:
            while True:
                item = await queue.get()
                try:
                    await _noop(item)
                finally:
                    queue.task_done()

        workers = [asyncio.create_task(worker()) for _ in range(WORKERS)]
        for i in range(n):
            await queue.put(i)
        await queue.join()
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)

    return run


def _anyio_stream_pool() -> Callable[[int], Awaitable[None]]:
    async def run(n: int) -> None:
        send, receive = anyio.create_memory_object_stream[int](MAXSIZE)

        async def worker() -> None:
            async for item in receive:
                await _noop(item)

        async with receive, anyio.create_task_group() as tg:
            for _ in range(WORKERS):
                tg.start_soon(worker)
            async with send:
                for i in range(n):
                    await send.send(i)

    return run


def _trio_channel_pool() -> Callable[[int], Awaitable[None]]:
    import trio

    async def run(n: int) -> None:
        send, receive = trio.open_memory_channel[int](MAXSIZE)

        async def worker() -> None:
            async for item in receive:
                await _noop(item)

        async with receive, trio.open_nursery() as nursery:
            for _ in range(WORKERS):
                nursery.start_soon(worker)
            async with send:
                for i in range(n):
                    await send.send(i)

    return run


def _cc_work_queue_pool() -> Callable[[int], Awaitable[None]]:
    async def run(n: int) -> None:
        async with WorkQueue[int](MAXSIZE, math.inf, concurrency_limit=WORKERS) as wq:
            await wq.process(_noop)
            for i in range(n):
                await wq.put(i)
            await wq.join()

    return run


def _cc_bounded_queue_pool() -> Callable[[int], Awaitable[None]]:
    async def run(n: int) -> None:
        async with BoundedQueue[int](MAXSIZE, math.inf) as queue:
            await queue.start_workers(_noop, WORKERS)
            for i in range(n):
                await queue.put(i)
            await queue.join()

    return run


def _cc_batch_pool() -> Callable[[int], Awaitable[None]]:
    async def run(n: int) -> None:
        queue = WorkQueue[int](MAXSIZE, concurrency_limit=WORKERS)
        await queue.batch_process(range(n), _noop)

    return run


def _cc_small_batch(limit: int) -> MakeRun:
    """``run(n)``: ``batch_process(range(100))`` n // 100 times at ``limit``."""

    def make_run() -> Callable[[int], Awaitable[None]]:
        async def run(n: int) -> None:
            queue = WorkQueue[int](MAXSIZE, concurrency_limit=limit)
            for _ in range(max(1, n // SMALL_BATCH)):
                await queue.batch_process(range(SMALL_BATCH), _noop)

        return run

    return make_run


# -- figures measured by hand -------------------------------------------------


def _small_batch_ms_and_kib(limit: int) -> tuple[float, float]:
    """Time one ``batch_process(range(100))`` at ``limit`` and trace its memory.

    :return: milliseconds (first batch of a fresh event loop, best of three)
        and the peak traced Python memory in KiB
    """
    timings: list[float] = []

    async def main() -> None:
        queue = WorkQueue[int](MAXSIZE, concurrency_limit=limit)
        start = time.perf_counter()
        summary = await queue.batch_process(range(SMALL_BATCH), _noop)
        timings.append(time.perf_counter() - start)
        assert summary.succeeded == SMALL_BATCH

    for _ in range(3):
        anyio.run(main)
    tracemalloc.start()
    try:
        anyio.run(main)
        peak = tracemalloc.get_traced_memory()[1] / 1024
    finally:
        tracemalloc.stop()
    return min(timings) * 1e3, peak


def _stop_latency(backend: str, kind: str, trials: int) -> float:
    """Median microseconds from "last item done" to "pool fully stopped"."""
    name, options = BACKENDS[backend]
    samples: list[float] = []

    async def cc_trial() -> None:
        async with WorkQueue[int](MAXSIZE, math.inf, concurrency_limit=WORKERS) as wq:
            await wq.process(_noop)
            for i in range(WORKERS * 4):
                await wq.put(i)
            await wq.join()
            await anyio.sleep(0.001)  # let every worker go idle
            start = time.perf_counter()
            await wq.stop()
            samples.append(time.perf_counter() - start)

    async def asyncio_trial() -> None:
        queue: asyncio.Queue[int] = asyncio.Queue(MAXSIZE)

        async def worker() -> None:
            while True:
                item = await queue.get()
                await _noop(item)
                queue.task_done()

        workers = [asyncio.create_task(worker()) for _ in range(WORKERS)]
        for i in range(WORKERS * 4):
            await queue.put(i)
        await queue.join()
        await asyncio.sleep(0.001)
        start = time.perf_counter()
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        samples.append(time.perf_counter() - start)

    async def stream_trial() -> None:
        send, receive = anyio.create_memory_object_stream[int](MAXSIZE)

        async def worker() -> None:
            async for item in receive:
                await _noop(item)

        async with receive, anyio.create_task_group() as tg:
            for _ in range(WORKERS):
                tg.start_soon(worker)
            for i in range(WORKERS * 4):
                await send.send(i)
            await anyio.sleep(0.001)
            start = time.perf_counter()
            await send.aclose()
        samples.append(time.perf_counter() - start)

    trial = {"cc": cc_trial, "asyncio": asyncio_trial, "stream": stream_trial}[kind]

    async def main() -> None:
        for _ in range(trials):
            await trial()

    anyio.run(main, backend=name, backend_options=options)
    return statistics.median(samples) * 1e6


def _idle_cpu(backend: str, kind: str, seconds: float) -> float:
    """Milliseconds of CPU per second of wall time while the pool sits idle."""
    name, options = BACKENDS[backend]
    used: list[float] = []

    async def main() -> None:
        async def measure() -> None:
            await anyio.sleep(0.01)
            start = time.process_time()
            await anyio.sleep(seconds)
            used.append(time.process_time() - start)

        if kind == "loop":
            await measure()
        elif kind == "cc":
            async with WorkQueue[int](concurrency_limit=WORKERS) as wq:
                await wq.process(_noop)
                await measure()
        else:  # what a pool that polls its queue every 0.1 s costs

            async def poller(receive: Any) -> None:
                while True:
                    with anyio.move_on_after(0.1):
                        await receive.receive()

            send, receive = anyio.create_memory_object_stream[int](MAXSIZE)
            with send, receive:
                async with anyio.create_task_group() as tg:
                    for _ in range(WORKERS):
                        tg.start_soon(poller, receive)
                    await measure()
                    tg.cancel_scope.cancel()

    anyio.run(main, backend=name, backend_options=options)
    return used[0] / seconds * 1e3


def _batch_traced_peak(n: int) -> float:
    """Peak traced Python memory, in KiB, of batch_process over n items."""

    def numbers() -> Iterator[int]:
        yield from range(n)

    async def main() -> None:
        queue = WorkQueue[int](MAXSIZE, concurrency_limit=WORKERS)
        summary = await queue.batch_process(numbers(), _noop)
        assert summary.succeeded == n

    anyio.run(main)  # imports and first-run caches are not what we measure
    tracemalloc.start()
    try:
        anyio.run(main)
        return tracemalloc.get_traced_memory()[1] / 1024
    finally:
        tracemalloc.stop()


_RSS_PROBE = """
import resource, sys
import anyio
from cc.queues import WorkQueue

async def noop(item):
    return None

def numbers(n):
    yield from range(n)

async def main(n):
    queue = WorkQueue(100, concurrency_limit=8)
    summary = await queue.batch_process(numbers(n), noop)
    assert summary.succeeded == n

anyio.run(main, int(sys.argv[1]))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(peak / 1024 if sys.platform == "darwin" else peak)
"""


def _batch_peak_rss(n: int) -> float:
    """Peak resident memory, in KiB, of a fresh interpreter running the batch."""
    output = subprocess.run(
        [sys.executable, "-c", _RSS_PROBE, str(n)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(output.strip())


def collect(suite: Suite) -> None:
    """Hand-off and pool costs, stop latency, idle CPU and batch memory."""
    handoff = "hand-off: 1 producer, 1 consumer, maxsize 100"
    pool = f"pool: {WORKERS} no-op workers, maxsize 100"
    for backend in ("asyncio", "uvloop", "trio"):
        if backend == "trio":
            native = "trio memory channel"
            suite.time_async(
                GROUP, handoff, native, backend,
                _trio_channel_handoff, SLOW_HANDOFF_OPS, baseline=True,
            )  # fmt: skip
        else:
            native = "asyncio.Queue"
            suite.time_async(
                GROUP, handoff, native, backend,
                _asyncio_queue_handoff, HANDOFF_OPS, baseline=True,
            )  # fmt: skip
        suite.time_async(
            GROUP, handoff, "anyio memory object stream", backend,
            _anyio_stream_handoff, SLOW_HANDOFF_OPS, baseline=True,
        )  # fmt: skip
        suite.time_async(
            GROUP, handoff, "cc BoundedQueue put/get", backend,
            _cc_handoff(task_done=False), HANDOFF_OPS,
        )  # fmt: skip
        suite.time_async(
            GROUP, handoff, "cc BoundedQueue put/get/task_done", backend,
            _cc_handoff(task_done=True), HANDOFF_OPS,
        )  # fmt: skip
        suite.goal(
            GROUP, handoff, "cc BoundedQueue put/get", native,
            2.0 if backend != "trio" else 1.0, backend=backend,
        )  # fmt: skip

        if backend == "uvloop":
            continue  # the pool goals are set on asyncio and trio
        if backend == "trio":
            pool_native = "trio memory channel pool"
            suite.time_async(
                GROUP, pool, pool_native, backend,
                _trio_channel_pool, SLOW_POOL_OPS, baseline=True,
            )  # fmt: skip
        else:
            pool_native = "hand-written asyncio.Queue pool"
            suite.time_async(
                GROUP, pool, pool_native, backend,
                _asyncio_pool, POOL_OPS, baseline=True,
            )  # fmt: skip
        suite.time_async(
            GROUP, pool, "anyio task group + memory stream", backend,
            _anyio_stream_pool, SLOW_POOL_OPS, baseline=True,
        )  # fmt: skip
        suite.time_async(
            GROUP, pool, "cc WorkQueue process/put/join", backend,
            _cc_work_queue_pool, POOL_OPS,
        )  # fmt: skip
        suite.time_async(
            GROUP, pool, "cc BoundedQueue start_workers", backend,
            _cc_bounded_queue_pool, POOL_OPS,
        )  # fmt: skip
        suite.time_async(
            GROUP, pool, "cc WorkQueue.batch_process(range)", backend,
            _cc_batch_pool, POOL_OPS,
        )  # fmt: skip
        suite.goal(
            GROUP, pool, "cc WorkQueue process/put/join", pool_native,
            3.0 if backend == "asyncio" else 1.0, backend=backend,
        )  # fmt: skip

        trials = max(5, suite.ops(200) // 2)
        stop_case = f"stop() after the last item, {WORKERS} idle workers"
        suite.record(
            GROUP, stop_case, "goal: 1 ms", 1000.0, "us",
            backend=backend, baseline=True,
        )  # fmt: skip
        if backend == "asyncio":
            suite.record(
                GROUP, stop_case, "hand-written pool: cancel + gather",
                _stop_latency(backend, "asyncio", trials), "us", backend=backend,
                baseline=True, note="median",
            )  # fmt: skip
        suite.record(
            GROUP, stop_case, "anyio stream pool: close + task group exit",
            _stop_latency(backend, "stream", trials), "us", backend=backend,
            note="median",
        )  # fmt: skip
        suite.record(
            GROUP, stop_case, "cc WorkQueue.stop()",
            _stop_latency(backend, "cc", trials), "us", backend=backend,
            note="median",
        )  # fmt: skip
        suite.goal(
            GROUP, stop_case, "cc WorkQueue.stop()", "goal: 1 ms", 1.0,
            backend=backend,
        )  # fmt: skip

        seconds = 0.5 if not suite.quick else 0.2
        idle_case = f"idle CPU, {WORKERS} workers waiting for items"
        loop_alone = _idle_cpu(backend, "loop", seconds)
        suite.record(
            GROUP, idle_case, "event loop alone", loop_alone, "ms/s",
            backend=backend, baseline=True, note="CPU ms per wall second",
        )  # fmt: skip
        suite.record(
            GROUP, idle_case, "budget: loop alone + 0.5 ms/s", loop_alone + 0.5,
            "ms/s", backend=backend, baseline=True,
        )  # fmt: skip
        suite.record(
            GROUP, idle_case, "cc WorkQueue (waits on the queue)",
            _idle_cpu(backend, "cc", seconds), "ms/s", backend=backend,
        )  # fmt: skip
        suite.record(
            GROUP, idle_case, "pool polling every 0.1 s (for contrast)",
            _idle_cpu(backend, "poll", seconds), "ms/s", backend=backend,
        )  # fmt: skip
        suite.goal(
            GROUP, idle_case, "cc WorkQueue (waits on the queue)",
            "budget: loop alone + 0.5 ms/s", 1.0, backend=backend,
        )  # fmt: skip

    _collect_small_batches(suite)
    if sys.platform == "win32":  # no resource module for the RSS probe
        return
    rss_case = "batch_process over a generator: peak RSS of the process"
    many = suite.ops(1_000_000)
    few_rss = _batch_peak_rss(10)
    suite.record(
        GROUP, rss_case, "10 items", few_rss, "KiB", backend="asyncio", baseline=True,
    )  # fmt: skip
    suite.record(
        GROUP, rss_case, "budget: 10 items + 4 MiB", few_rss + 4096, "KiB",
        backend="asyncio", baseline=True,
    )  # fmt: skip
    suite.record(
        GROUP, rss_case, f"{many:,} items", _batch_peak_rss(many), "KiB",
        backend="asyncio",
    )  # fmt: skip
    suite.goal(
        GROUP, rss_case, f"{many:,} items", "budget: 10 items + 4 MiB", 1.0,
        backend="asyncio",
    )  # fmt: skip

    traced_case = "batch_process over a generator: peak traced Python memory"
    traced = suite.ops(100_000)
    few_traced = _batch_traced_peak(10)
    suite.record(
        GROUP, traced_case, "10 items", few_traced, "KiB",
        backend="asyncio", baseline=True, note="tracemalloc",
    )  # fmt: skip
    suite.record(
        GROUP, traced_case, f"{traced:,} items", _batch_traced_peak(traced), "KiB",
        backend="asyncio", note="tracemalloc",
    )  # fmt: skip


def _collect_small_batches(suite: Suite) -> None:
    """Show that a large concurrency_limit costs a small batch nothing up front."""
    case = f"batch_process(range({SMALL_BATCH})), one batch"
    ms, kib = _small_batch_ms_and_kib(HUGE_LIMIT)
    suite.record(GROUP, case, "goal: 50 ms", 50.0, "ms", backend="asyncio",
                 baseline=True)  # fmt: skip
    suite.record(
        GROUP, case, f"cc concurrency_limit={HUGE_LIMIT:,}", ms, "ms",
        backend="asyncio", note="first batch of a fresh loop, best of 3",
    )  # fmt: skip
    suite.goal(
        GROUP, case, f"cc concurrency_limit={HUGE_LIMIT:,}", "goal: 50 ms", 1.0,
        backend="asyncio",
    )  # fmt: skip
    memory_case = f"batch_process(range({SMALL_BATCH})): peak traced memory"
    suite.record(GROUP, memory_case, "goal: 10 MB", 10 * 1024.0, "KiB",
                 backend="asyncio", baseline=True)  # fmt: skip
    suite.record(
        GROUP, memory_case, f"cc concurrency_limit={HUGE_LIMIT:,}", kib, "KiB",
        backend="asyncio", note="tracemalloc",
    )  # fmt: skip
    suite.goal(
        GROUP, memory_case, f"cc concurrency_limit={HUGE_LIMIT:,}", "goal: 10 MB",
        1.0, backend="asyncio",
    )  # fmt: skip
    for backend in ("asyncio", "trio"):
        suite.time_async_scaling(
            GROUP, f"batch_process(range({SMALL_BATCH})) per item",
            "cc WorkQueue", backend, sizes=[2 * SMALL_BATCH, 2_000, HUGE_LIMIT],
            size_label="concurrency_limit", make_run=_cc_small_batch,
            ops=20 * SMALL_BATCH, max_growth=1.5,
            note="workers start as items wait: 100 at every limit here",
        )  # fmt: skip
