"""Stops that race with the work: busy and idle workers, blocked producers, a
stop cancelled midway, workers that fail while the stop waits, two stops at
once. Whatever happens, no item, reservation or worker slot is lost."""

from __future__ import annotations

import logging
import math
import sys

import anyio
import pytest
from anyio.lowlevel import checkpoint

from cc.queues import BoundedQueue, QueueStateError, QueueStatus, WorkQueue

from ._helpers import accounted, settle

if sys.version_info < (3, 11):  # pragma: no cover - depends on the Python
    from exceptiongroup import BaseExceptionGroup

pytestmark = pytest.mark.anyio


def quiet(name: str) -> logging.Logger:
    logger = logging.getLogger(f"tests.stop_races.{name}")
    logger.propagate = False
    logger.addHandler(logging.NullHandler())
    return logger


class Gate:
    """A worker function whose calls wait at a gate: who entered, who is done."""

    def __init__(self) -> None:
        self.gate = anyio.Event()
        self.entered: list[int] = []
        self.done: list[int] = []

    async def __call__(self, item: int) -> None:
        self.entered.append(item)
        await self.gate.wait()
        self.done.append(item)


def refused(outcomes: list[object]) -> bool:
    return bool(outcomes) and all(isinstance(o, QueueStateError) for o in outcomes)


async def test_a_cancelled_stop_still_stops_and_loses_nothing() -> None:
    work = Gate()
    queue = WorkQueue[int](maxsize=4, concurrency_limit=2)
    outcomes: list[object] = []

    async def blocked_put(item: int) -> None:
        try:
            await queue.put(item, timeout=math.inf)
        except QueueStateError as exc:
            outcomes.append(exc)

    async def cancel_the_stop() -> None:
        await settle()
        assert queue.status is QueueStatus.STOPPING
        scope.cancel()  # stop() waits for the gate, which never opens

    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            await queue.start()
            await queue.process(work)
            for item in range(6):  # two in hand, four queued
                await queue.put(item)
            tg.start_soon(blocked_put, 6)
            await settle()
            assert sorted(work.entered) == [0, 1]
            tg.start_soon(cancel_the_stop)
            await queue.stop()
    assert scope.cancelled_caught
    assert refused(outcomes)
    assert queue.status is QueueStatus.STOPPED
    assert work.done == []
    assert sorted(queue.unprocessed[:2]) == [0, 1]
    assert queue.unprocessed[2:] == [2, 3, 4, 5]
    assert queue.worker_count == 0
    assert queue.metrics["handed_back"] == 6
    assert accounted(queue)
    await queue.start()  # and it starts again, with nothing left behind
    assert queue.status is QueueStatus.PROCESSING
    assert await queue.stop() == []


async def test_a_stop_cancelled_before_it_could_wait_stops_all_the_same() -> None:
    queue = BoundedQueue[int](maxsize=10)
    with anyio.CancelScope() as scope:
        await queue.start()
        await queue.start_workers(Gate(), num_workers=3)
        for item in range(5):
            await queue.put(item)
        scope.cancel()  # every await from here on is cancelled
        await queue.stop()
    assert queue.status is QueueStatus.STOPPED
    assert sorted(queue.unprocessed) == list(range(5))
    assert queue.worker_count == 0
    assert accounted(queue)


@pytest.mark.parametrize("timeout", [None, 0, 0.01])
async def test_stop_while_workers_start_on_demand(timeout: float | None) -> None:
    # Items put and the stop asked before the started workers had a turn.
    work = Gate()
    work.gate.set()
    queue = WorkQueue[int](maxsize=10, concurrency_limit=4)
    await queue.start()
    await queue.process(work)
    for item in range(6):  # the workers may not have had a turn yet
        await queue.put(item)
    assert queue.worker_count == 4
    leftovers = await queue.stop(timeout)
    assert sorted(work.done + leftovers) == list(range(6))
    assert queue.worker_count == 0
    assert accounted(queue)
    # The workers' room came back: a new run starts as many again.
    await queue.start()
    await queue.process(work)
    for item in range(4):
        await queue.put(item)
    await queue.join()
    assert await queue.stop() == []
    assert accounted(queue)


async def test_a_worker_that_fails_while_the_stop_waits_is_reported() -> None:
    handled: list[tuple[str, int]] = []
    gate = anyio.Event()

    async def work(item: int) -> None:
        await gate.wait()
        if item % 2:
            raise LookupError(item)

    async def handler(exc: Exception, item: int) -> None:
        await checkpoint()  # the handler itself waits while the queue stops
        handled.append((type(exc).__name__, item))

    async def open_gate() -> None:
        await settle()
        assert queue.status is QueueStatus.STOPPING
        gate.set()

    queue = BoundedQueue[int](maxsize=10)
    async with anyio.create_task_group() as tg:
        await queue.start()
        await queue.start_workers(work, num_workers=3, error_handler=handler)
        for item in range(6):
            await queue.put(item)
        await settle()
        tg.start_soon(open_gate)
        leftovers = await queue.stop()
    assert leftovers == [3, 4, 5]
    assert handled == [("LookupError", 1)]
    assert queue.metrics["processed"] == 2
    assert queue.metrics["errors"] == 1
    assert accounted(queue)


class Crash(BaseException):
    """Not an Exception: workers let it through."""


async def test_a_worker_crash_during_stop_is_raised_by_stop() -> None:
    gate = anyio.Event()

    async def work(item: int) -> None:
        await gate.wait()
        if item == 0:
            raise Crash(item)
        await anyio.sleep_forever()

    async def open_gate() -> None:
        await settle()
        gate.set()

    queue = BoundedQueue[int](maxsize=10)
    with pytest.raises(BaseExceptionGroup) as info:
        async with anyio.create_task_group() as tg:
            await queue.start()
            await queue.start_workers(work, num_workers=2)
            for item in range(4):
                await queue.put(item)
            await settle()
            tg.start_soon(open_gate)
            await queue.stop()
    assert info.group_contains(Crash)  # type: ignore[attr-defined]
    assert queue.status is QueueStatus.STOPPED
    assert queue.unprocessed == [0, 1, 2, 3]  # interrupted, then queued
    assert queue.worker_count == 0
    assert accounted(queue)


async def test_two_stops_at_once_from_the_host_and_another_task() -> None:
    work = Gate()
    queue = BoundedQueue[int](maxsize=10)
    errors: list[Exception] = []

    async def other_stop() -> None:
        try:
            await queue.stop()
        except QueueStateError as exc:
            errors.append(exc)
        queue.request_stop(0)  # more urgent: the busy workers are cancelled
        assert sorted(await queue.wait_stopped()) == [0, 1, 2, 3]

    async with anyio.create_task_group() as tg:
        await queue.start()
        await queue.start_workers(work, num_workers=2)
        for item in range(4):
            await queue.put(item)
        await settle()
        tg.start_soon(other_stop)
        leftovers = await queue.stop()  # no timeout: it waits for the gate
    assert len(errors) == 1
    assert sorted(leftovers[:2]) == [0, 1]
    assert leftovers[2:] == [2, 3]
    assert work.done == []
    assert queue.status is QueueStatus.STOPPED
    assert accounted(queue)


async def test_the_host_stops_while_a_requested_stop_is_under_way() -> None:
    work = Gate()
    queue = WorkQueue[int](maxsize=10, concurrency_limit=2)
    await queue.start()
    await queue.process(work)
    for item in range(4):
        await queue.put(item)
    await settle()
    queue.request_stop(drain=True)  # the supervisor carries it out
    await settle()
    assert queue.status is QueueStatus.STOPPING
    leftovers = await queue.stop(timeout=0.01)  # ends the drain, cancels
    assert sorted(leftovers[:2]) == [0, 1]
    assert leftovers[2:] == [2, 3]
    assert queue.status is QueueStatus.STOPPED
    assert queue.worker_count == 0
    assert accounted(queue)


async def test_a_requested_deadline_cancels_the_workers_never_the_host() -> None:
    work = Gate()
    queue = BoundedQueue[int](maxsize=10, logger=quiet("deadline"))
    host_slept = False
    async with queue:
        await queue.start_workers(work, num_workers=2)
        for item in range(3):
            await queue.put(item)
        await settle()
        queue.request_stop(0.01)
        assert sorted(await queue.wait_stopped()) == [0, 1, 2]
        await anyio.sleep(0.02)  # the host was not cancelled
        host_slept = True
    assert host_slept
    assert queue.worker_count == 0
    assert accounted(queue)


async def test_idle_workers_stop_on_every_backend_and_restart() -> None:
    done: list[int] = []

    async def work(item: int) -> None:
        done.append(item)

    queue = WorkQueue[int](maxsize=100, concurrency_limit=8)
    for run in range(3):
        async with queue:
            await queue.process(work)
            for item in range(32):
                await queue.put(item + 100 * run)
            await queue.join()
            await settle()
            assert await queue.stop() == []
        assert queue.worker_count == 0
    assert sorted(done) == sorted(i + 100 * r for r in range(3) for i in range(32))
    assert queue.metrics["processed"] == 96
    assert accounted(queue)
