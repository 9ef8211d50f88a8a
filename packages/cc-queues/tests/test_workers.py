"""BoundedQueue workers: processing, concurrency, errors, stop and accounting."""

from __future__ import annotations

import logging
import math
import sys
import time
from collections import Counter

import anyio
import pytest
from anyio.lowlevel import checkpoint

from cc.primitives.lowlevel import CHECKPOINT_INTERVAL
from cc.queues import BoundedQueue, QueueStateError, QueueStatus, WorkQueue

from ._helpers import accounted, settle

if sys.version_info < (3, 11):  # pragma: no cover - depends on the Python
    from exceptiongroup import BaseExceptionGroup

pytestmark = pytest.mark.anyio


async def test_each_item_is_processed_exactly_once() -> None:
    seen: Counter[int] = Counter()

    async def work(item: int) -> None:
        await checkpoint()  # let the workers interleave
        seen[item] += 1

    async with BoundedQueue[int](maxsize=8) as queue:
        await queue.start_workers(work, num_workers=4)
        assert queue.worker_count == 0  # none until items wait
        for item in range(500):
            assert await queue.put(item, timeout=math.inf)
        assert queue.worker_count == 4
        await queue.join()
        assert await queue.stop() == []
    assert seen == Counter(range(500))
    assert queue.metrics["processed"] == 500
    assert queue.worker_count == 0
    assert accounted(queue)


async def test_idle_workers_wake_as_soon_as_an_item_arrives() -> None:
    done = anyio.Event()

    async def work(item: str) -> None:
        done.set()

    async with BoundedQueue[str]() as queue:
        await queue.start_workers(work, num_workers=3)
        await settle()  # every worker is idle now
        await queue.put("wake up")
        with anyio.fail_after(5):
            await done.wait()


async def test_busy_workers_never_exceed_num_workers() -> None:
    running = 0
    most = 0
    gate = anyio.Event()

    async def work(item: int) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await gate.wait()
        running -= 1

    async with BoundedQueue[int](maxsize=20) as queue:
        await queue.start_workers(work, num_workers=3)
        for item in range(10):
            await queue.put(item)
        await settle()
        assert running == 3  # every worker is busy, the rest waits
        assert queue.size == 7
        gate.set()
        await queue.join()
    assert most == 3
    assert queue.metrics["processed"] == 10


async def test_calling_start_workers_again_adds_workers() -> None:
    calls: list[str] = []
    gate = anyio.Event()

    async def first(item: int) -> None:
        calls.append("first")
        await gate.wait()

    async def second(item: int) -> None:
        calls.append("second")
        await gate.wait()

    async with BoundedQueue[int]() as queue:
        await queue.start_workers(first, num_workers=2)
        await queue.start_workers(second, num_workers=1)
        for item in range(5):
            await queue.put(item)
        await settle()
        # Three items in three workers' hands (two of the first call, one
        # of the second): the caps add up, and the other two wait.
        assert queue.worker_count == 3
        assert sorted(calls) == ["first", "first", "second"]
        assert queue.size == 2
        gate.set()
        await queue.join()
    assert len(calls) == 5
    assert queue.worker_count == 0


async def test_error_handler_gets_the_exception_and_the_item() -> None:
    handled: list[tuple[str, int]] = []
    processed: list[int] = []

    async def work(item: int) -> None:
        if item % 3 == 0:
            raise ValueError(f"bad {item}")
        processed.append(item)

    async def on_error(exc: Exception, item: int) -> None:
        handled.append((str(exc), item))

    async with BoundedQueue[int]() as queue:
        await queue.start_workers(work, num_workers=1, error_handler=on_error)
        for item in range(7):
            await queue.put(item)
        await queue.join()
    assert handled == [("bad 0", 0), ("bad 3", 3), ("bad 6", 6)]
    assert processed == [1, 2, 4, 5]
    assert queue.metrics["errors"] == 3
    assert queue.metrics["processed"] == 4
    assert accounted(queue)


async def test_a_failing_error_handler_is_logged_and_the_worker_survives(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="cc.queues")
    processed: list[int] = []

    async def work(item: int) -> None:
        if item == 1:
            raise ValueError("bad item")
        processed.append(item)

    async def broken_handler(exc: Exception, item: int) -> None:
        raise RuntimeError("handler bug")

    async with BoundedQueue[int]() as queue:
        await queue.start_workers(work, num_workers=1, error_handler=broken_handler)
        for item in range(4):
            await queue.put(item)
        await queue.join()
        assert queue.worker_count == 1  # the only worker is still alive
    assert processed == [0, 2, 3]
    (record,) = caplog.records
    assert "error handler" in record.getMessage()
    assert "failed on item 1" in record.getMessage()
    assert record.exc_info is not None
    handler_error = record.exc_info[1]
    assert isinstance(handler_error, RuntimeError)
    assert isinstance(handler_error.__context__, ValueError)  # the original error
    assert queue.metrics["errors"] == 1


async def test_without_a_handler_errors_are_logged_with_traceback_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="cc.queues")
    failed_in: set[int] = set()

    async def work(item: object) -> None:
        failed_in.add(anyio.get_current_task().id)
        raise KeyError("missing")

    big_item = list(range(10_000))
    async with BoundedQueue[object]() as queue:
        await queue.start_workers(work, num_workers=2)
        await queue.put("small")
        await queue.put(big_item)
        await queue.join()
        # Workers start on demand: one or two (as the scheduler had it), and
        # an error ended none of those that met one.
        assert queue.worker_count in (1, 2)
        assert failed_in <= {task.id for task in anyio.get_running_tasks()}
    assert queue.metrics["errors"] == 2
    messages = [r.getMessage() for r in caplog.records]
    assert "worker failed on item 'small'" in messages
    assert all(len(message) < 200 for message in messages)  # items abbreviated
    assert all(
        r.exc_info is not None and isinstance(r.exc_info[1], KeyError)
        for r in caplog.records
    )
    assert "Traceback" in caplog.text


async def test_errors_go_to_the_logger_passed_in(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("tests.custom")
    caplog.set_level(logging.ERROR, logger="tests.custom")

    async def work(item: int) -> None:
        raise ValueError(item)

    async with BoundedQueue[int](logger=logger) as queue:
        await queue.start_workers(work, num_workers=1)
        await queue.put(5)
        await queue.join()
    assert [r.name for r in caplog.records] == ["tests.custom"]


async def test_stop_without_timeout_lets_busy_workers_finish_their_item() -> None:
    processed: list[int] = []
    started = 0
    gate = anyio.Event()

    async def work(item: int) -> None:
        nonlocal started
        started += 1
        await gate.wait()
        processed.append(item)

    async def open_gate_once_stopping() -> None:
        await settle()
        gate.set()

    queue = BoundedQueue[int](maxsize=10)
    async with anyio.create_task_group() as tg:
        await queue.start()
        await queue.start_workers(work, num_workers=2)
        for item in range(5):
            await queue.put(item)
        await settle()
        assert started == 2  # two in hand, three queued
        tg.start_soon(open_gate_once_stopping)
        leftovers = await queue.stop()
    assert sorted(processed) == [0, 1]
    assert leftovers == [2, 3, 4]
    assert queue.unprocessed == [2, 3, 4]
    assert queue.status is QueueStatus.STOPPED
    assert queue.worker_count == 0
    assert queue.metrics["handed_back"] == 3
    assert accounted(queue)


async def test_stop_with_timeout_cancels_busy_workers_and_hands_their_items_back() -> (
    None
):
    finished: list[int] = []

    async def work(item: int) -> None:
        await anyio.sleep_forever()
        finished.append(item)  # pragma: no cover - never reached

    queue = BoundedQueue[int](maxsize=10)
    await queue.start()
    await queue.start_workers(work, num_workers=2)
    for item in range(5):
        await queue.put(item)
    await settle()
    start = time.perf_counter()
    leftovers = await queue.stop(timeout=0.01)
    assert time.perf_counter() - start < 5  # generous bound: it did not hang
    assert sorted(leftovers[:2]) == [0, 1]  # interrupted items come first
    assert leftovers[2:] == [2, 3, 4]  # then the queued ones, in order
    assert finished == []
    assert queue.metrics["handed_back"] == 5
    assert queue.worker_count == 0
    assert accounted(queue)


async def test_stop_with_a_timeout_that_is_long_enough_interrupts_nothing() -> None:
    async def work(item: int) -> None:
        await anyio.sleep(0.005)

    queue = BoundedQueue[int]()
    await queue.start()
    await queue.start_workers(work, num_workers=3)
    for item in range(3):
        await queue.put(item)
    await settle()
    assert await queue.stop(timeout=10) == []
    assert queue.metrics["processed"] == 3


@pytest.mark.parametrize("timeout", [None, 1.0])
async def test_stop_while_idle_returns_promptly(timeout: float | None) -> None:
    async def work(item: int) -> None:
        pass

    queue = BoundedQueue[int]()
    await queue.start()
    await queue.start_workers(work, num_workers=8)
    await queue.put(1)
    await queue.join()
    await settle()
    start = time.perf_counter()
    assert await queue.stop(timeout=timeout) == []
    # Idle workers sleep on the queue itself, so stop() wakes them at once
    # (the goal is well under a millisecond; this bound only catches polling).
    assert time.perf_counter() - start < 0.5
    assert queue.worker_count == 0


async def test_stopping_while_the_last_item_is_processed_raises_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The worker holding the last item finishes it and exits quietly: no
    # state error escapes it, and nothing is logged.
    caplog.set_level(logging.DEBUG, logger="cc.queues")
    taken = anyio.Event()
    processed: list[int] = []

    async def work(item: int) -> None:
        taken.set()
        await anyio.sleep(0.01)
        processed.append(item)

    queue = BoundedQueue[int]()
    await queue.start()
    await queue.start_workers(work, num_workers=2)
    await queue.put(1)
    await taken.wait()
    assert queue.is_empty
    assert await queue.stop() == []
    assert processed == [1]
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert queue.metrics["processed"] == 1


@pytest.mark.parametrize("timeout", [None, 0])
async def test_stop_right_after_start_workers(timeout: float | None) -> None:
    # Workers that never got to run are accounted for all the same.
    async def work(item: int) -> None:
        pass

    queue = BoundedQueue[int]()
    await queue.start()
    await queue.start_workers(work, num_workers=4)
    await queue.put(1)
    leftovers = await queue.stop(timeout=timeout)
    assert queue.worker_count == 0
    assert leftovers in ([], [1])
    assert accounted(queue)


async def test_nothing_is_lost_when_stopping_a_busy_queue_with_errors() -> None:
    outcomes: Counter[int] = Counter()

    async def work(item: int) -> None:
        await anyio.sleep(0.002 * (item % 4))
        if item % 5 == 0:
            raise ValueError(item)
        outcomes[item] += 1

    async def on_error(exc: Exception, item: int) -> None:
        outcomes[item] += 1

    queue = BoundedQueue[int](maxsize=16)
    put: list[int] = []
    async with anyio.create_task_group() as tg:
        await queue.start()
        await queue.start_workers(work, num_workers=3, error_handler=on_error)

        async def producer() -> None:
            for item in range(10_000):
                try:
                    if await queue.put(item, timeout=math.inf):
                        put.append(item)
                except QueueStateError:
                    return

        tg.start_soon(producer)
        await anyio.sleep(0.05)
        leftovers = await queue.stop(timeout=0.002)
    handed_back = Counter(leftovers)
    assert put  # something was enqueued, and the stop interrupted the flow
    assert len(put) < 10_000
    # Every enqueued item was processed, reported, or handed back: once.
    assert outcomes + handed_back == Counter(put)
    assert accounted(queue)
    assert queue.metrics["enqueued"] == len(put)


async def test_start_workers_validates_its_arguments() -> None:
    async def work(item: int) -> None:
        pass

    queue = BoundedQueue[int]()
    with pytest.raises(QueueStateError, match="start_workers\\(\\) needs a running"):
        await queue.start_workers(work, 1)
    async with queue:
        with pytest.raises(ValueError, match="num_workers must be >= 1"):
            await queue.start_workers(work, 0)
        with pytest.raises(TypeError, match="num_workers must be an int"):
            await queue.start_workers(work, 2.0)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="worker_func must be callable"):
            await queue.start_workers("work", 1)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="error_handler must be callable"):
            await queue.start_workers(work, 1, error_handler=42)  # type: ignore[arg-type]
        assert queue.worker_count == 0


class Crash(BaseException):
    """Not an Exception: workers do not swallow it."""


async def test_a_worker_crash_cancels_the_host_and_is_raised_by_stop() -> None:
    async def work(item: int) -> None:
        raise Crash(item)

    queue = BoundedQueue[int]()
    with pytest.raises(BaseExceptionGroup) as info:
        async with queue:
            await queue.start_workers(work, num_workers=1)
            await queue.put(1)
            await anyio.sleep_forever()  # cancelled by the crash
    assert info.group_contains(Crash)  # type: ignore[attr-defined]
    assert queue.status is QueueStatus.STOPPED
    assert queue.unprocessed == [1]  # the interrupted item is handed back
    assert accounted(queue)


async def test_leaving_async_with_on_error_cancels_busy_workers() -> None:
    async def work(item: int) -> None:
        await anyio.sleep_forever()

    queue = BoundedQueue[int]()
    start = time.perf_counter()
    with pytest.raises(LookupError):
        async with queue:
            await queue.start_workers(work, num_workers=1)
            await queue.put(1)
            await queue.put(2)
            await settle()
            raise LookupError("the block failed")
    assert time.perf_counter() - start < 5  # did not wait for sleep_forever
    assert queue.unprocessed == [1, 2]
    assert accounted(queue)


@pytest.mark.parametrize("kind", ["bounded", "rate-limited"])
async def test_a_worker_that_feeds_its_own_queue_does_not_starve_others(
    kind: str,
) -> None:
    # A rate-limited WorkQueue's window never yields when it need not wait
    # (the worker loop has spent the checkpoint rule's unit already): the
    # loop's own checkpoints must still let the other tasks run.
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await checkpoint()

    queue: BoundedQueue[int] | WorkQueue[int]
    if kind == "bounded":
        queue = BoundedQueue[int](maxsize=4)
    else:
        queue = WorkQueue[int](maxsize=4, rate_limit=10**6, rate_window=1.0)
    async with queue, anyio.create_task_group() as tg:

        async def work(item: int) -> None:
            if item < 2000:
                await queue.put(item + 1)  # never waits: there is always room

        tg.start_soon(ticker)
        await settle()
        before = ticks
        if isinstance(queue, WorkQueue):
            await queue.process(work, num_workers=1)
        else:
            await queue.start_workers(work, num_workers=1)
        await queue.put(0)
        await queue.join()
        assert queue.metrics["processed"] == 2001
        # the chain yielded regularly
        assert ticks - before >= 2000 // CHECKPOINT_INTERVAL
        tg.cancel_scope.cancel()


async def test_a_cancelled_async_with_block_stops_the_queue_and_hands_back() -> None:
    async def work(item: int) -> None:
        await anyio.sleep_forever()

    queue = BoundedQueue[int]()
    with anyio.CancelScope() as scope:
        async with queue:
            await queue.start_workers(work, num_workers=1)
            await queue.put(1)
            await queue.put(2)
            await settle()  # the worker holds item 1
            scope.cancel()
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    assert queue.status is QueueStatus.STOPPED
    assert queue.unprocessed == [1, 2]  # the interrupted item, then the queued
    assert queue.worker_count == 0
    assert accounted(queue)
