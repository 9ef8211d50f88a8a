"""A queue whose starting task ended without stopping it: one rule, nothing lost.

The rule: from the moment the host has ended, the queue refuses work,
whichever call or property notices first, stops its workers and hands back
every item it did not process.
"""

from __future__ import annotations

import logging
import sys

import anyio
import pytest

from cc.queues import BoundedQueue, QueueStateError, QueueStatus, WorkQueue

from ._helpers import settle

pytestmark = pytest.mark.anyio

ORPHANED = "the task that started this queue has ended without stopping it"


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


async def test_the_first_put_after_the_host_ended_is_refused() -> None:
    queue = BoundedQueue[int](maxsize=100, logger=quiet())

    async def host() -> None:
        await queue.start()
        for item in range(3):
            await queue.put(item)

    await run_and_end(host)
    # Every call agrees, from the first one on: no put slips through.
    with pytest.raises(QueueStateError, match=ORPHANED) as put_error:
        await queue.put(3, timeout=0)
    assert put_error.value.current_state in (QueueStatus.STOPPING, QueueStatus.STOPPED)
    assert queue.status in (QueueStatus.STOPPING, QueueStatus.STOPPED)
    with pytest.raises(QueueStateError, match=ORPHANED):
        await queue.get()

    async def work(item: int) -> None:
        raise AssertionError("never called")  # pragma: no cover

    with pytest.raises(QueueStateError, match=ORPHANED):
        await queue.start_workers(work, 1)
    assert await queue.stop() == [0, 1, 2]  # from a task other than the host
    assert queue.status is QueueStatus.STOPPED
    assert queue.metrics["enqueued"] == 3
    assert queue.metrics["handed_back"] == 3
    await queue.join()  # nothing pending
    async with queue:  # usable again
        assert await queue.put(5)
        assert await queue.get() == 5


@pytest.mark.parametrize("first", ["status", "put", "join", "wait_stopped"])
async def test_whichever_call_notices_first_the_items_come_back(first: str) -> None:
    queue = WorkQueue[int](maxsize=10, concurrency_limit=2, logger=quiet())
    release = anyio.Event()
    processed: list[int] = []

    async def work(item: int) -> None:
        await release.wait()
        processed.append(item)

    async def host() -> None:
        await queue.start()
        await queue.process(work)
        for item in range(6):
            await queue.put(item)
        await settle()  # both workers hold an item

    await run_and_end(host)
    if first == "status":
        assert queue.status in (QueueStatus.STOPPING, QueueStatus.STOPPED)
    elif first == "put":
        with pytest.raises(QueueStateError, match=ORPHANED):
            await queue.put(99)
    elif first == "join":
        await queue.join()  # returns once everything is handed back
    back = await queue.wait_stopped()
    assert queue.status is QueueStatus.STOPPED
    assert queue.worker_count == 0
    release.set()
    await settle()
    assert processed == []  # the workers were cancelled, their items returned
    assert sorted(back) == list(range(6))
    assert sorted(queue.unprocessed) == list(range(6))
    metrics = queue.metrics
    assert metrics["enqueued"] == 6 == metrics["handed_back"]
    assert await queue.stop() == sorted(back, key=back.index)  # any task


async def test_the_warning_names_the_class_and_uses_the_public_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="cc.queues")
    queue = WorkQueue[int]()

    async def host() -> None:
        await queue.start()
        await queue.put(1)

    await run_and_end(host)
    with pytest.raises(QueueStateError, match=ORPHANED):
        await queue.put(2)
    assert await queue.stop() == [1]
    warnings = [r for r in caplog.records if r.name == "cc.queues"]
    assert len(warnings) == 1  # once, however many calls notice
    message = warnings[0].getMessage()
    assert message.startswith("WorkQueue: the task that started it has ended")
    assert "BoundedQueue" not in message


# Bare tasks exist on asyncio only: this test runs on its loops, not on trio.
_ASYNCIO_BACKENDS = [pytest.param(("asyncio", {}), id="asyncio")]
if sys.platform != "win32":  # uvloop does not exist on Windows
    _ASYNCIO_BACKENDS.append(
        pytest.param(("asyncio", {"use_uvloop": True}), id="asyncio+uvloop")
    )


@pytest.mark.parametrize("anyio_backend", _ASYNCIO_BACKENDS)
async def test_the_supervisor_notices_a_bare_asyncio_host(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A host outside any anyio task group (a bare asyncio task, as web
    # frameworks create for requests): the backend does not cancel the
    # workers, so the queue's supervisor notices, within its watch period,
    # with nobody calling the queue.
    import asyncio

    caplog.set_level(logging.WARNING, logger="cc.queues")
    queue = WorkQueue[int](maxsize=10, concurrency_limit=1, worker_idle_timeout=0.02)
    busy = anyio.Event()

    async def work(item: int) -> None:
        busy.set()
        await anyio.sleep_forever()

    async def host() -> None:
        await queue.start()
        await queue.process(work)
        for item in range(4):
            await queue.put(item)
        await busy.wait()

    await asyncio.get_running_loop().create_task(host())
    with anyio.fail_after(5):  # generous: the watch period is 20 ms
        await queue.wait_stopped()  # nobody asks: the supervisor notices
    assert sorted(queue.unprocessed) == [0, 1, 2, 3]
    assert queue.worker_count == 0
    assert any(
        "has ended without stopping it" in r.getMessage() for r in caplog.records
    )
    assert await queue.stop() == [0, 1, 2, 3]


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
