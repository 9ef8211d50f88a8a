"""The toolkit's one checkpoint rule, for every public async queue operation.

A loop of calls that never have to wait must let the other tasks run and
must end at its deadline, within the rule's bound: every
``CHECKPOINT_INTERVAL``-th cc operation on a thread is a full checkpoint, so
no more than two checkpoints' worth of calls run past a deadline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from cc.primitives.lowlevel import CHECKPOINT_INTERVAL, checkpoint_due
from cc.queues import BoundedQueue, WorkQueue

pytestmark = pytest.mark.anyio

Operation = Callable[[], Awaitable[Any]]
TIMER_SKEW = 0.002  # seconds


async def _noop(item: int) -> None:
    return None


@asynccontextmanager
async def _operation(name: str) -> AsyncIterator[tuple[Operation, int]]:
    """Yield a call that never waits, and how many cc operations it makes."""
    if name in ("put+get", "join", "start_workers", "wait_stopped"):
        queue = BoundedQueue[int](maxsize=4)
        if name == "wait_stopped":  # on a queue that is not running
            yield queue.wait_stopped, 1
            return
        async with queue:
            if name == "put+get":

                async def put_get() -> None:
                    await queue.put(1)
                    await queue.get()
                    queue.task_done()

                yield put_get, 2
            elif name == "join":
                yield queue.join, 1
            else:

                async def start_workers() -> None:
                    await queue.start_workers(_noop, 1)

                yield start_workers, 1
    elif name == "process":
        work = WorkQueue[int](maxsize=4)
        async with work:

            async def process() -> None:
                await work.process(_noop, 1)

            yield process, 1
    elif name == "batch_process":
        batches = WorkQueue[int](maxsize=4)

        async def batch_process() -> None:
            await batches.batch_process([], _noop)

        yield batch_process, 1
    else:
        assert name == "stop"
        yield BoundedQueue[int]().stop, 1  # not running: nothing to stop


OPERATIONS = [
    "put+get",
    "join",
    "start_workers",
    "process",
    "batch_process",
    "stop",
    "wait_stopped",
]


@pytest.mark.parametrize("name", OPERATIONS)
async def test_a_loop_of_calls_that_never_wait_lets_others_run(name: str) -> None:
    ran = False

    async def other() -> None:
        nonlocal ran
        ran = True

    calls = 0
    async with _operation(name) as (call, ops), anyio.create_task_group() as tg:
        tg.start_soon(other)
        with anyio.fail_after(10):  # a loop that starved the others hangs here
            while not ran:
                await call()
                calls += 1
    assert ran
    # Within two checkpoints: the rule's bound, per thread.
    assert calls * ops <= 2 * CHECKPOINT_INTERVAL


@pytest.mark.parametrize("name", OPERATIONS)
async def test_a_loop_of_calls_that_never_wait_ends_at_its_deadline(
    name: str,
) -> None:
    late = 0
    async with _operation(name) as (call, ops):
        with anyio.move_on_after(0.01) as scope:
            # uvloop fires timers on a millisecond clock: a deadline may be
            # delivered up to that late, whatever the loop does meanwhile.
            deadline = scope.deadline + TIMER_SKEW
            while True:
                await call()
                if anyio.current_time() >= deadline:
                    late += 1
    assert scope.cancelled_caught
    assert late * ops <= 2 * CHECKPOINT_INTERVAL


@pytest.mark.parametrize(
    "spent", [0, 1, CHECKPOINT_INTERVAL // 3, CHECKPOINT_INTERVAL - 1]
)
async def test_a_wait_in_the_queue_restarts_the_threads_budget(spent: int) -> None:
    # A consumer that parks yields as a checkpoint does, so the producer that
    # runs next has a whole budget: it hands over full runs of items, however
    # much of the budget was spent before (no extra park/wake cycles).
    taken: list[int] = []
    async with BoundedQueue[int](maxsize=2 * CHECKPOINT_INTERVAL) as queue:

        async def consume() -> None:
            for _ in range(CHECKPOINT_INTERVAL):
                taken.append(await queue.get())

        for _ in range(spent):
            checkpoint_due()
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await anyio.wait_all_tasks_blocked()  # the consumer waits
            for item in range(CHECKPOINT_INTERVAL - 1):
                assert await queue.put(item)
            assert taken == []  # no put yielded: the consumer has not run
            assert await queue.put(CHECKPOINT_INTERVAL - 1)  # due: a checkpoint
    assert taken == list(range(CHECKPOINT_INTERVAL))
