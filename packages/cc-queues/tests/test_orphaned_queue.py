"""A queue whose starting task ended without stopping it: refused, nothing lost."""

from __future__ import annotations

import logging

import anyio
import pytest
from anyio.lowlevel import checkpoint

from cc.queues import BoundedQueue, QueueStateError, QueueStatus, WorkQueue

pytestmark = pytest.mark.anyio

ORPHANED = "the task that started this queue has ended without stopping it"


async def settle(rounds: int = 20) -> None:
    for _ in range(rounds):
        await checkpoint()


def quiet() -> logging.Logger:
    logger = logging.getLogger("cc.queues.tests.orphaned")
    logger.propagate = False
    logger.addHandler(logging.NullHandler())
    return logger


async def run_and_end(host: object) -> None:
    """Run ``host`` in a child task that ends; swallow the backend's complaint."""
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(host)  # type: ignore[arg-type]
    except BaseException:  # anyio/trio report the misnesting
        pass


async def test_a_queue_started_by_an_ended_task_refuses_work_and_stops() -> None:
    queue = BoundedQueue[int](maxsize=4, logger=quiet())
    await run_and_end(queue.start)
    assert queue.status is QueueStatus.STOPPING
    with pytest.raises(QueueStateError, match=ORPHANED):
        await queue.get()  # it would have to wait: refused at once
    # A put() that need not wait checks on its periodic checkpoint (every
    # 64th call); the items accepted until then are handed back by stop().
    accepted = 0
    with pytest.raises(QueueStateError, match=ORPHANED) as put_error:
        for item in range(64):
            await queue.put(item, timeout=0)
            accepted += 1
    assert put_error.value.current_state is QueueStatus.STOPPING
    assert 0 <= accepted < 64
    gotten: list[int] = []
    with pytest.raises(QueueStateError, match=ORPHANED):
        for _ in range(64):
            gotten.append(await queue.get())  # the items accepted, then refused
    assert gotten == list(range(accepted))

    async def work(item: int) -> None:
        raise AssertionError("never called")  # pragma: no cover

    with pytest.raises(QueueStateError, match=ORPHANED):
        await queue.start_workers(work, 1)
    assert await queue.stop() == []  # from a task other than the ended host
    assert queue.status is QueueStatus.STOPPED
    assert queue.metrics["enqueued"] == accepted
    async with queue:  # usable again
        assert await queue.put(5)
        assert await queue.get() == 5


async def test_stop_after_the_host_ended_hands_back_every_item() -> None:
    queue = BoundedQueue[int](maxsize=10, logger=quiet())
    release = anyio.Event()
    processed: list[int] = []

    async def work(item: int) -> None:
        await release.wait()
        processed.append(item)

    async def host() -> None:
        await queue.start()
        await queue.start_workers(work, 2)
        for item in range(6):
            await queue.put(item)
        await settle()  # both workers hold an item

    await run_and_end(host)
    assert queue.status is QueueStatus.STOPPING
    with pytest.raises(QueueStateError, match=ORPHANED):
        for item in range(6, 100):  # refused once full, or on a checkpoint
            await queue.put(item, timeout=0)
    back = await queue.stop()
    assert queue.status is QueueStatus.STOPPED
    assert queue.worker_count == 0
    release.set()
    await settle()
    # The backend cancelled the orphaned workers (they hand their item back)
    # or let them finish it: either way each item comes out exactly once.
    everything = sorted(processed + queue.unprocessed)
    accepted = queue.metrics["enqueued"]
    assert everything == list(range(accepted))
    assert back == queue.unprocessed or sorted(back + processed) == everything
    metrics = queue.metrics
    assert metrics["enqueued"] == (
        metrics["processed"] + metrics["errors"] + metrics["handed_back"]
    )
    await queue.join()  # nothing pending


async def test_a_work_queue_stopped_after_its_host_ended_keeps_the_items() -> None:
    queue = WorkQueue[int](maxsize=10, concurrency_limit=1, logger=quiet())

    async def host() -> None:
        await queue.start()
        for item in range(3):
            await queue.put(item)

    await run_and_end(host)
    assert queue.status is QueueStatus.STOPPING
    with pytest.raises(QueueStateError, match=ORPHANED):
        await queue.process(lambda item: checkpoint())
    assert await queue.stop() == [0, 1, 2]
    assert queue.unprocessed == [0, 1, 2]
    assert queue.metrics["handed_back"] == 3


async def test_a_cancel_scope_closed_before_stop_is_reported_by_the_backend() -> None:
    # Not detectable through anyio's public API: the backend raises when the
    # scope closes, the queue keeps working and its host can still stop it.
    queue = BoundedQueue[int](maxsize=4, logger=quiet())
    with pytest.raises(RuntimeError, match=r"[Cc]ancel scope"):
        with anyio.CancelScope():
            await queue.start()
            await queue.put(1)
    assert queue.status is QueueStatus.PROCESSING
    assert await queue.put(2)
    assert await queue.stop() == [1, 2]
    assert queue.status is QueueStatus.STOPPED
