"""BoundedQueue as a queue: put/get, backpressure, fairness, cancellation, lifecycle."""

from __future__ import annotations

import logging
import math

import anyio
import pytest
from anyio.lowlevel import checkpoint

from cc.primitives.lowlevel import CHECKPOINT_INTERVAL
from cc.queues import BoundedQueue, QueueStateError, QueueStatus

from ._helpers import settle

pytestmark = pytest.mark.anyio


async def test_put_and_get_in_fifo_order() -> None:
    async with BoundedQueue[int](maxsize=3) as queue:
        assert queue.status is QueueStatus.PROCESSING
        for item in (1, 2, 3):
            assert await queue.put(item) is True
        assert queue.size == 3
        assert queue.is_full
        assert [await queue.get() for _ in range(3)] == [1, 2, 3]
        assert queue.is_empty
        assert queue.metrics["enqueued"] == 3


async def test_put_on_a_full_queue_times_out_and_counts_backpressure() -> None:
    async with BoundedQueue[str](maxsize=2, timeout=0.01) as queue:
        assert await queue.put("a", timeout=0)
        assert await queue.put("b")
        with anyio.fail_after(5):  # generous upper bound: none of these hangs
            assert await queue.put("c", timeout=0) is False
            assert await queue.put("d", timeout=0.01) is False
            assert await queue.put("e") is False  # the queue's default timeout
        metrics = queue.metrics
        assert metrics["backpressure_events"] == 3
        assert metrics["refused_puts"] == 3
        assert metrics["enqueued"] == 2
        assert [await queue.get(), await queue.get()] == ["a", "b"]


async def test_put_waits_for_room_and_succeeds_when_a_slot_frees() -> None:
    results: list[bool] = []
    async with BoundedQueue[int](maxsize=1) as queue, anyio.create_task_group() as tg:
        await queue.put(1)

        async def producer() -> None:
            results.append(await queue.put(2, timeout=math.inf))

        tg.start_soon(producer)
        await settle()
        assert results == []  # still waiting for room
        assert await queue.get() == 1
        await settle()
        assert results == [True]
        assert await queue.get() == 2
        # It had to wait for room (backpressure), and was not refused.
        assert queue.metrics["backpressure_events"] == 1
        assert queue.metrics["refused_puts"] == 0


async def test_waiting_producers_are_served_first_come_first_served() -> None:
    async with BoundedQueue[str](maxsize=1) as queue, anyio.create_task_group() as tg:
        await queue.put("first")
        for name in ("p1", "p2", "p3"):
            tg.start_soon(queue.put, name, math.inf)
            await settle()
        assert [await queue.get() for _ in range(4)] == ["first", "p1", "p2", "p3"]


async def test_waiting_consumers_are_served_first_come_first_served() -> None:
    received: dict[str, int] = {}
    async with BoundedQueue[int]() as queue, anyio.create_task_group() as tg:

        async def consumer(name: str) -> None:
            received[name] = await queue.get()

        for name in ("c1", "c2", "c3"):
            tg.start_soon(consumer, name)
            await settle()
        for item in (10, 20, 30):
            await queue.put(item)
            await settle()
    assert received == {"c1": 10, "c2": 20, "c3": 30}


async def test_consumers_woken_together_each_get_exactly_one_item() -> None:
    # Three puts in a row wake the three waiting consumers at once; which of
    # them runs first is the backend's choice (trio randomizes it), but each
    # was promised one item and gets it.
    received: dict[str, int] = {}
    async with BoundedQueue[int]() as queue, anyio.create_task_group() as tg:

        async def consumer(name: str) -> None:
            received[name] = await queue.get()

        for name in ("c1", "c2", "c3"):
            tg.start_soon(consumer, name)
        await settle()
        for item in (10, 20, 30):
            await queue.put(item)
        tg.start_soon(consumer, "late")  # must not take a promised item
        await settle()
        assert sorted(received) == ["c1", "c2", "c3"]
        assert sorted(received.values()) == [10, 20, 30]
        await queue.put(40)
    assert received["late"] == 40


async def test_an_item_promised_to_a_woken_consumer_cannot_be_taken_by_another() -> (
    None
):
    received: dict[str, int] = {}
    async with BoundedQueue[int]() as queue, anyio.create_task_group() as tg:

        async def consumer(name: str) -> None:
            received[name] = await queue.get()

        tg.start_soon(consumer, "waiting")
        await settle()
        await queue.put(1)  # wakes "waiting" and reserves 1 for it
        tg.start_soon(consumer, "newcomer")  # arrives before "waiting" resumes
        await settle()
        assert received == {"waiting": 1}
        await queue.put(2)
    assert received == {"waiting": 1, "newcomer": 2}


async def test_a_woken_producer_keeps_its_slot_even_with_a_timeout() -> None:
    results: list[bool] = []
    async with BoundedQueue[int](maxsize=1) as queue, anyio.create_task_group() as tg:
        await queue.put(1)

        async def producer() -> None:
            results.append(await queue.put(2, timeout=5))

        tg.start_soon(producer)
        await settle()
        assert await queue.get() == 1  # frees the slot and reserves it
        assert await queue.put(3, timeout=0) is False  # no barging
        await settle()
        assert results == [True]
        assert await queue.get() == 2


async def test_cancelling_a_blocked_producer_adds_nothing_and_serves_the_next() -> None:
    async with BoundedQueue[str](maxsize=1) as queue, anyio.create_task_group() as tg:
        await queue.put("kept")
        outcome: list[object] = []

        async def producer(item: str, scope: anyio.CancelScope) -> None:
            with scope:
                outcome.append(await queue.put(item, timeout=math.inf))
            if scope.cancelled_caught:
                outcome.append(f"{item} cancelled")

        first_scope, second_scope = anyio.CancelScope(), anyio.CancelScope()
        tg.start_soon(producer, "first", first_scope)
        await settle()
        tg.start_soon(producer, "second", second_scope)
        await settle()
        first_scope.cancel()
        await settle()
        assert outcome == ["first cancelled"]
        assert queue.size == 1
        assert queue.metrics["enqueued"] == 1
        assert await queue.get() == "kept"
        await settle()
        assert outcome == ["first cancelled", True]
        assert await queue.get() == "second"
        assert queue.metrics["enqueued"] == 2


async def test_a_producer_cancelled_after_being_woken_passes_its_slot_on() -> None:
    async with BoundedQueue[str](maxsize=1) as queue, anyio.create_task_group() as tg:
        await queue.put("kept")
        first_scope = anyio.CancelScope()

        async def first() -> None:
            with first_scope:
                await queue.put("first", timeout=math.inf)

        tg.start_soon(first)
        await settle()
        tg.start_soon(queue.put, "second", math.inf)
        await settle()
        # Cancel, then free a slot before the cancelled task gets to run: the
        # slot is reserved for it, and it must hand the slot on.
        first_scope.cancel()
        assert await queue.get() == "kept"
        await settle()
        assert first_scope.cancelled_caught
        assert queue.size == 1
        assert await queue.get() == "second"
        assert queue.metrics["enqueued"] == 2


async def test_cancelling_a_blocked_consumer_loses_no_item() -> None:
    received: list[int] = []
    async with BoundedQueue[int]() as queue, anyio.create_task_group() as tg:
        scope = anyio.CancelScope()

        async def cancelled_consumer() -> None:
            with scope:
                received.append(await queue.get())

        async def consumer() -> None:
            received.append(await queue.get())

        tg.start_soon(cancelled_consumer)
        await settle()
        tg.start_soon(consumer)
        await settle()
        # Cancel, then put before the cancelled consumer runs: the item is
        # reserved for it, and it must pass the item on.
        scope.cancel()
        await queue.put(7)
        await settle()
        assert scope.cancelled_caught
        assert received == [7]
        assert queue.size == 0


async def test_cancelling_an_idle_consumer_leaves_the_queue_usable() -> None:
    async with BoundedQueue[int]() as queue:
        with anyio.move_on_after(0.01) as scope:
            await queue.get()
        assert scope.cancelled_caught
        await queue.put(1)
        assert await queue.get() == 1


async def test_stop_wakes_a_blocked_producer_with_a_state_error() -> None:
    errors: list[QueueStateError] = []
    queue = BoundedQueue[int](maxsize=1)
    async with anyio.create_task_group() as tg:
        await queue.start()
        await queue.put(1)

        async def producer() -> None:
            with pytest.raises(QueueStateError) as info:
                await queue.put(2, timeout=math.inf)
            errors.append(info.value)

        tg.start_soon(producer)
        await settle()
        assert await queue.stop() == [1]  # the waiting item was never accepted
    (error,) = errors
    assert error.current_state in (QueueStatus.STOPPING, QueueStatus.STOPPED)
    assert "stopped while put() was waiting" in str(error)
    assert queue.metrics["enqueued"] == 1


async def test_stop_wakes_a_blocked_consumer_with_a_state_error() -> None:
    errors: list[QueueStateError] = []
    queue = BoundedQueue[int]()
    async with anyio.create_task_group() as tg:
        await queue.start()

        async def consumer() -> None:
            with pytest.raises(QueueStateError) as info:
                await queue.get()
            errors.append(info.value)

        tg.start_soon(consumer)
        await settle()
        # No cancel scope around stop(): it must close the task group that
        # start() opened, so nothing may be nested in between.
        assert await queue.stop() == []
    assert "stopped while get() was waiting" in str(errors[0])


async def test_stop_hands_back_queued_items_in_order() -> None:
    queue = BoundedQueue[int](maxsize=5)
    await queue.start()
    for item in range(4):
        await queue.put(item)
    assert await queue.get() == 0
    queue.task_done()
    leftovers = await queue.stop()
    assert leftovers == [1, 2, 3]
    assert queue.unprocessed == [1, 2, 3]
    assert queue.status is QueueStatus.STOPPED
    assert queue.size == 0
    metrics = queue.metrics
    assert metrics["handed_back"] == 3
    assert metrics["enqueued"] == metrics["processed"] + metrics["handed_back"]
    with anyio.fail_after(5):
        await queue.join()  # nothing is left to wait for


@pytest.mark.parametrize("operation", ["put", "get"])
async def test_put_and_get_refuse_unless_processing(operation: str) -> None:
    queue = BoundedQueue[int]()

    async def attempt() -> object:
        return await (queue.put(1) if operation == "put" else queue.get())

    with pytest.raises(QueueStateError, match=f"{operation}\\(\\) needs a running"):
        await attempt()
    await queue.start()
    await queue.stop()
    with pytest.raises(QueueStateError) as info:
        await attempt()
    assert info.value.current_state is QueueStatus.STOPPED


async def test_start_twice_raises_and_a_stopped_queue_restarts() -> None:
    queue = BoundedQueue[int]()
    await queue.start()
    with pytest.raises(QueueStateError, match="start\\(\\) needs an idle") as info:
        await queue.start()
    assert info.value.current_state is QueueStatus.PROCESSING
    await queue.put(1)
    assert await queue.stop() == [1]
    assert queue.unprocessed == [1]
    await queue.start()
    assert queue.status is QueueStatus.PROCESSING
    assert queue.unprocessed == []  # cleared on restart
    await queue.put(2)
    assert await queue.get() == 2
    queue.task_done()
    assert await queue.stop() == []
    assert queue.metrics["enqueued"] == 2  # counters keep running


async def test_stop_on_a_queue_never_started_does_nothing() -> None:
    queue = BoundedQueue[int]()
    assert await queue.stop() == []
    assert queue.status is QueueStatus.IDLE
    await queue.start()
    await queue.stop()
    assert await queue.stop() == []  # twice is fine
    assert queue.status is QueueStatus.STOPPED


async def test_stop_from_another_task_raises_and_leaves_the_queue_running() -> None:
    queue = BoundedQueue[int]()
    await queue.start()
    errors: list[QueueStateError] = []

    async def intruder() -> None:
        with pytest.raises(QueueStateError, match="task that started") as info:
            await queue.stop()
        errors.append(info.value)

    async with anyio.create_task_group() as tg:
        tg.start_soon(intruder)
    assert errors[0].current_state is QueueStatus.PROCESSING
    assert queue.status is QueueStatus.PROCESSING
    await queue.put(1)
    assert await queue.stop() == [1]


async def test_stop_rejects_a_negative_timeout_without_stopping() -> None:
    async with BoundedQueue[int]() as queue:
        with pytest.raises(ValueError, match="timeout must be >= 0"):
            await queue.stop(timeout=-1)
        assert queue.status is QueueStatus.PROCESSING


async def test_put_rejects_an_invalid_timeout() -> None:
    async with BoundedQueue[int]() as queue:
        with pytest.raises(ValueError, match="timeout must be >= 0"):
            await queue.put(1, timeout=-0.5)
        with pytest.raises(TypeError, match="timeout must be a number"):
            await queue.put(1, timeout="soon")  # type: ignore[arg-type]
        assert queue.size == 0


async def test_leaving_async_with_hands_back_queued_items(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="cc.queues")
    async with BoundedQueue[str]() as queue:
        await queue.put("left behind")
    assert queue.status is QueueStatus.STOPPED
    assert caplog.records == []  # no warning while they may still be collected
    assert queue.unprocessed == ["left behind"]


async def test_stop_inside_async_with_is_not_repeated_on_exit() -> None:
    async with BoundedQueue[int]() as queue:
        await queue.put(1)
        assert await queue.stop() == [1]
    assert queue.unprocessed == [1]
    assert queue.metrics["handed_back"] == 1


async def test_task_done_and_join() -> None:
    joined = anyio.Event()
    async with BoundedQueue[int]() as queue, anyio.create_task_group() as tg:
        await queue.join()  # nothing pending: returns at once
        await queue.put(1)
        await queue.put(2)

        async def joiner() -> None:
            await queue.join()
            joined.set()

        tg.start_soon(joiner)
        tg.start_soon(joiner)  # several tasks may join at once
        await queue.get()
        await queue.get()
        queue.task_done()
        await settle()
        assert not joined.is_set()
        queue.task_done()
        with anyio.fail_after(5):
            await joined.wait()
        with pytest.raises(ValueError, match="more times than get"):
            queue.task_done()
        assert queue.metrics["processed"] == 2


async def test_join_returns_when_stop_hands_the_items_back() -> None:
    queue = BoundedQueue[int]()
    joined = anyio.Event()
    async with anyio.create_task_group() as tg:
        await queue.start()
        await queue.put(1)

        async def joiner() -> None:
            await queue.join()
            joined.set()

        tg.start_soon(joiner)
        await settle()
        assert not joined.is_set()
        await queue.stop()
        with anyio.fail_after(5):
            await joined.wait()


async def test_a_loop_of_non_blocking_calls_still_lets_other_tasks_run() -> None:
    # put() and get() do not yield when they need not wait, but every
    # CHECKPOINT_INTERVAL-th call does, so a loop of them cannot starve the
    # other tasks.
    others_ran = 0
    async with BoundedQueue[int](maxsize=4) as queue, anyio.create_task_group() as tg:

        async def other() -> None:
            nonlocal others_ran
            while True:
                others_ran += 1
                await checkpoint()

        tg.start_soon(other)
        await settle()
        before = others_ran
        for item in range(1000):
            await queue.put(item)
            assert await queue.get() == item
        assert others_ran - before >= 1000 * 2 // CHECKPOINT_INTERVAL - 1
        tg.cancel_scope.cancel()


async def test_a_loop_of_non_blocking_calls_notices_cancellation() -> None:
    done = 0
    async with BoundedQueue[int]() as queue:
        with anyio.CancelScope() as scope:
            scope.cancel()
            for item in range(1000):
                await queue.put(item)
                await queue.get()
                done += 1
        assert scope.cancelled_caught
        assert done < CHECKPOINT_INTERVAL


async def test_repr_shows_status_size_and_workers() -> None:
    async with BoundedQueue[int](maxsize=4) as queue:
        await queue.put(1)
        assert repr(queue) == "<BoundedQueue processing size=1/4 workers=0>"
