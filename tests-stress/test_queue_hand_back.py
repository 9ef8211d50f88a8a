"""Hand-back paths that once lost or duplicated items: their smallest reproducers.

Each test pins down one bug found while building the soak (since fixed in
cc-queues): a WorkQueue whose host task is cancelled handing nothing back in
``.unprocessed``; a cancelled batch losing the item its feeder held; an
interrupted batch with nothing to hand back leaving an older ``.unprocessed``
in place. The soak (test_queue_soak.py) now runs these paths at random too;
these keep the exact cases cheap to read and to run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from cc.queues import WorkQueue

pytestmark = pytest.mark.anyio


def _quiet_logger() -> logging.Logger:
    logger = logging.getLogger("cc.stress.hand_back")
    logger.propagate = False
    logger.addHandler(logging.NullHandler())
    return logger


async def _forever(item: int) -> None:
    await anyio.sleep_forever()


async def test_cancelled_work_queue_host_hands_items_back(kit: Any) -> None:
    """Time out the task hosting a WorkQueue; every item must be in .unprocessed."""
    queue = WorkQueue[int](maxsize=100, concurrency_limit=2, logger=_quiet_logger())
    with anyio.CancelScope() as deadline:
        async with queue:
            await queue.process(_forever)
            for item in range(20):
                await queue.put(item)
            # The deadline is set once every item is in, however slow the
            # machine: both workers then hold an item and 18 are queued.
            deadline.deadline = anyio.current_time() + 0.02
            await anyio.sleep_forever()
    assert deadline.cancelled_caught
    assert queue.metrics["handed_back"] == 20
    assert sorted(queue.unprocessed) == list(range(20))
    kit.report.check("a cancelled WorkQueue host hands every item back")


async def test_cancelled_batch_hands_back_the_item_being_fed(kit: Any) -> None:
    """Cancel a batch whose queue is full: every item taken must come back."""
    taken: list[int] = []
    fifth_taken = anyio.Event()

    def source() -> Iterator[int]:
        for item in range(100):
            taken.append(item)
            if len(taken) == 5:
                fifth_taken.set()
            yield item

    async def cancel_when_the_feeder_blocks(batch: anyio.CancelScope) -> None:
        # Two items with the workers, two queued, one in the feeder's hands.
        await fifth_taken.wait()
        await anyio.sleep(0.01)
        batch.cancel()

    queue = WorkQueue[int](maxsize=2, concurrency_limit=2, logger=_quiet_logger())
    async with anyio.create_task_group() as tg:
        with anyio.CancelScope() as batch:
            tg.start_soon(cancel_when_the_feeder_blocks, batch)
            await queue.batch_process(source(), _forever)
    assert len(taken) == 5
    assert sorted(queue.unprocessed) == taken
    kit.report.check("a cancelled batch hands back every item it took")


async def test_interrupted_empty_batch_clears_unprocessed(kit: Any) -> None:
    """.unprocessed describes the latest stop or interrupted batch, not an older one."""
    queue = WorkQueue[int](maxsize=10, concurrency_limit=2, logger=_quiet_logger())
    async with queue:
        await queue.process(_forever)
        for item in range(5):
            await queue.put(item)
        assert sorted(await queue.stop(timeout=0)) == list(range(5))

    def failing_source() -> Iterator[int]:
        raise ValueError("the source fails before its first item")
        yield 0  # pragma: no cover - makes this a generator

    async def work(item: int) -> None:
        pass

    with pytest.raises(ValueError, match="source fails"):
        await queue.batch_process(failing_source(), work)
    assert queue.unprocessed == []
    kit.report.check("an interrupted batch replaces .unprocessed")
