"""Stopping a queue: drain, stop requests from any task or thread, hand-back."""

from __future__ import annotations

import gc
import logging
import math
import threading

import anyio
import anyio.from_thread
import anyio.to_thread
import pytest
from anyio.lowlevel import checkpoint

from cc.queues import BoundedQueue, QueueStateError, QueueStatus, WorkQueue

from ._helpers import accounted, settle

pytestmark = pytest.mark.anyio


class Slow:
    """A worker function that takes ``seconds`` per item and records them."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.done: list[int] = []

    async def __call__(self, item: int) -> None:
        await anyio.sleep(self.seconds)
        self.done.append(item)


# -- drain ---------------------------------------------------------------------


async def test_stop_with_drain_finishes_what_is_queued() -> None:
    work = Slow(0.001)
    queue = WorkQueue[int](maxsize=50, concurrency_limit=3)
    await queue.start()
    await queue.process(work)
    for item in range(30):
        await queue.put(item)
    assert await queue.stop(timeout=30, drain=True) == []
    assert sorted(work.done) == list(range(30))
    assert queue.metrics["processed"] == 30
    assert queue.status is QueueStatus.STOPPED


async def test_drain_hands_back_what_misses_the_deadline() -> None:
    gate = anyio.Event()
    done: list[int] = []

    async def work(item: int) -> None:
        if item >= 2:
            await gate.wait()  # never set: these miss the deadline
        done.append(item)

    queue = WorkQueue[int](maxsize=50, concurrency_limit=2)
    await queue.start()
    await queue.process(work)
    for item in range(10):
        await queue.put(item)
    leftovers = await queue.stop(timeout=0.05, drain=True)
    assert done == [0, 1]  # drained until the two workers got stuck
    assert sorted(leftovers[:2]) == [2, 3]  # interrupted, then still queued
    assert leftovers[2:] == [4, 5, 6, 7, 8, 9]
    assert accounted(queue)


async def test_puts_are_refused_while_draining_and_get_still_serves() -> None:
    queue = BoundedQueue[int](maxsize=5)
    outcome: list[object] = []
    async with anyio.create_task_group() as tg:
        await queue.start()
        for item in range(3):
            await queue.put(item)

        async def consumer() -> None:
            await settle()  # the stop is draining by now
            with pytest.raises(QueueStateError, match=r"put\(\) needs a running"):
                await queue.put(99)
            while True:
                try:
                    outcome.append(await queue.get())
                except QueueStateError:
                    outcome.append("stopped")
                    return
                queue.task_done()

        tg.start_soon(consumer)
        assert await queue.stop(timeout=10, drain=True) == []
    assert outcome == [0, 1, 2, "stopped"]
    assert queue.metrics["processed"] == 3


async def test_a_later_stop_without_drain_ends_the_drain() -> None:
    started = anyio.Event()

    async def work(item: int) -> None:
        started.set()
        await anyio.sleep_forever()

    async with anyio.create_task_group() as tg:
        queue = WorkQueue[int](maxsize=10, concurrency_limit=1)
        await queue.start()
        await queue.process(work)
        for item in range(4):
            await queue.put(item)
        await started.wait()

        async def impatient() -> None:
            await settle()
            queue.request_stop(timeout=0)  # more urgent: no drain, at once

        tg.start_soon(impatient)
        leftovers = await queue.stop(drain=True)  # would wait forever
    assert leftovers == [0, 1, 2, 3]
    assert accounted(queue)


# -- stop requests ---------------------------------------------------------------


async def test_any_task_may_request_a_stop_and_wait_for_it() -> None:
    work = Slow(0)
    queue = WorkQueue[int](maxsize=10, concurrency_limit=2)
    results: list[list[int]] = []
    async with queue, anyio.create_task_group() as tg:
        await queue.process(work)

        async def handler() -> None:
            await queue.put(1)
            queue.request_stop(timeout=5, drain=True)
            with pytest.raises(QueueStateError):
                await queue.put(2)
            results.append(await queue.wait_stopped())

        tg.start_soon(handler)
        await queue.wait_stopped()  # the host may wait too
        assert queue.status is QueueStatus.STOPPED
        assert queue.worker_count == 0
    assert results == [[]]
    assert work.done == [1]


async def test_stop_from_another_task_points_at_request_stop() -> None:
    async with BoundedQueue[int]() as queue, anyio.create_task_group() as tg:

        async def intruder() -> None:
            with pytest.raises(QueueStateError, match=r"request_stop\(\)") as info:
                await queue.stop()
            assert info.value.current_state is QueueStatus.PROCESSING

        tg.start_soon(intruder)
    assert queue.status is QueueStatus.STOPPED


async def test_a_thread_requests_the_stop_through_anyio_portals() -> None:
    gate = threading.Event()
    queue = BoundedQueue[int](maxsize=10)

    def from_a_thread() -> list[int]:
        gate.wait(5)
        anyio.from_thread.run_sync(queue.request_stop)
        return anyio.from_thread.run(queue.wait_stopped)

    async with queue:
        await queue.put(7)
        async with anyio.create_task_group() as tg:

            async def in_thread() -> None:
                back = await anyio.to_thread.run_sync(from_a_thread)
                assert back == [7]

            tg.start_soon(in_thread)
            gate.set()
            assert await queue.wait_stopped() == [7]
    assert queue.unprocessed == [7]


async def test_request_stop_outside_the_event_loop_is_refused() -> None:
    queue = BoundedQueue[int]()
    errors: list[BaseException] = []

    def bare_thread() -> None:
        try:
            queue.request_stop()
        except RuntimeError as error:
            errors.append(error)

    async with queue:
        thread = threading.Thread(target=bare_thread)
        thread.start()
        await anyio.to_thread.run_sync(thread.join)
        assert queue.status is QueueStatus.PROCESSING
    assert "anyio.from_thread.run_sync" in str(errors[0])


async def test_requests_on_a_queue_that_is_not_running_do_nothing() -> None:
    queue = BoundedQueue[int]()
    queue.request_stop()
    assert await queue.wait_stopped() == []
    assert queue.status is QueueStatus.IDLE
    with pytest.raises(TypeError, match=r"\bdrain must be a bool"):
        queue.request_stop(drain="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\btimeout must be >= 0"):
        queue.request_stop(-1)
    with pytest.raises(TypeError, match=r"\bdrain must be a bool"):
        await queue.stop(drain=1)  # type: ignore[arg-type]


async def test_the_host_restarts_a_queue_stopped_by_request() -> None:
    queue = BoundedQueue[int]()
    await queue.start()
    await queue.put(1)
    async with anyio.create_task_group() as tg:

        async def handler() -> None:
            queue.request_stop()

        tg.start_soon(handler)

        async def another_start() -> None:
            await queue.wait_stopped()
            with pytest.raises(QueueStateError, match="has not left"):
                await queue.start()

        tg.start_soon(another_start)
    assert queue.status is QueueStatus.STOPPED
    await queue.start()  # the host closes the old task group first
    assert await queue.put(2)
    assert await queue.stop() == [2]


async def test_the_error_names_the_call_that_was_refused() -> None:
    async def work(item: int) -> None:
        pass

    with pytest.raises(QueueStateError, match=r"^process\(\) needs a running"):
        await WorkQueue[int]().process(work)
    with pytest.raises(QueueStateError, match=r"^start_workers\(\) needs a running"):
        await BoundedQueue[int]().start_workers(work, 1)


# -- hand-back, collected or not ------------------------------------------------


def _records(
    caplog: pytest.LogCaptureFixture, name: str = "cc.queues"
) -> list[logging.LogRecord]:
    # Only this test's logger: a gc.collect() may also finalize queues that
    # other tests left behind.
    return [
        r for r in caplog.records if r.levelno >= logging.WARNING and r.name == name
    ]


async def _collect_garbage() -> None:
    """Collect what is garbage, including what a cancellation kept alive.

    The event loop may keep the last cancellation it delivered to a task
    (and, through its traceback, the frames that held a queue) until the
    next one: deliver one, then collect.
    """
    with anyio.CancelScope() as scope:
        scope.cancel()
        await checkpoint()
    gc.collect()


def _own_logger(request: pytest.FixtureRequest) -> logging.Logger:
    return logging.getLogger(f"cc.queues.tests.{request.node.name}")


async def test_items_never_collected_are_reported_once_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="cc.queues")
    gc.collect()  # finalize what earlier tests left behind first
    caplog.clear()
    queue = WorkQueue[int]()
    async with queue:
        await queue.put(1)
        await queue.put(2)
    assert _records(caplog) == []  # the application may still read them
    del queue
    await _collect_garbage()
    (record,) = _records(caplog)
    assert record.name == "cc.queues"  # the public logger, not a module's
    assert record.getMessage().startswith("WorkQueue handed back 2 unprocessed")
    assert "never collected" in record.getMessage()


@pytest.mark.parametrize("collect", ["unprocessed", "stop", "wait_stopped"])
async def test_items_collected_are_not_reported(
    collect: str, caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest
) -> None:
    logger = _own_logger(request)
    caplog.set_level(logging.WARNING, logger=logger.name)
    queue = BoundedQueue[int](logger=logger)
    await queue.start()
    await queue.put(1)
    if collect == "stop":
        assert await queue.stop() == [1]
    else:
        queue.request_stop()
        if collect == "wait_stopped":
            assert await queue.wait_stopped() == [1]
        else:
            await queue.wait_stopped()  # also collects: use a fresh run
            await queue.stop()
            await queue.start()
            await queue.put(2)
            await queue.stop()
            assert queue.unprocessed == [2]
        await queue.stop()
    del queue
    await _collect_garbage()
    assert _records(caplog, logger.name) == []


async def test_a_restart_reports_the_items_it_drops(
    caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest
) -> None:
    logger = _own_logger(request)
    caplog.set_level(logging.WARNING, logger=logger.name)
    async with BoundedQueue[int](logger=logger) as queue:
        await queue.put(1)
    await queue.start()  # .unprocessed is emptied: the item was never read
    (record,) = _records(caplog, logger.name)
    assert "BoundedQueue handed back 1 unprocessed item(s)" in record.getMessage()
    await queue.stop()


async def test_an_interrupted_batch_names_batch_process(
    caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest
) -> None:
    logger = _own_logger(request)
    caplog.set_level(logging.WARNING, logger=logger.name)

    async def forever(item: int) -> None:
        await anyio.sleep_forever()

    queue = WorkQueue[int](maxsize=2, concurrency_limit=1, logger=logger)
    with anyio.move_on_after(0.05):
        await queue.batch_process(range(10), forever)
    del queue
    await _collect_garbage()
    (record,) = _records(caplog, logger.name)
    assert record.getMessage().startswith("WorkQueue.batch_process handed back 4")


async def test_a_stop_with_nothing_left_is_quiet(
    caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest
) -> None:
    logger = _own_logger(request)
    caplog.set_level(logging.DEBUG, logger=logger.name)
    queue = WorkQueue[int](concurrency_limit=2, logger=logger)
    async with queue:
        await queue.process(Slow(0))
        for item in range(5):
            await queue.put(item, timeout=math.inf)
        await queue.join()
    del queue
    await _collect_garbage()
    assert [r for r in caplog.records if r.name == logger.name] == []


async def test_a_cancelled_start_changes_nothing() -> None:
    queue = BoundedQueue[int]()
    with anyio.CancelScope() as scope:
        scope.cancel()
        await queue.start()  # a checkpoint first, before anything is opened
    assert scope.cancelled_caught
    assert queue.status is QueueStatus.IDLE
    assert queue.worker_count == 0
    async with queue:  # and it starts again
        assert await queue.put(1)
    assert queue.unprocessed == [1]
