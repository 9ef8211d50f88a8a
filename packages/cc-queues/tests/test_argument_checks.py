"""Bad arguments are refused at the boundary with a TypeError naming them."""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from anyio.lowlevel import checkpoint

from cc.primitives.lowlevel import CHECKPOINT_INTERVAL, checkpoint_due
from cc.queues import BoundedQueue, QueueConfig, QueueStateError, QueueStatus, WorkQueue

pytestmark = pytest.mark.anyio


async def _async(item: int) -> None:
    await checkpoint()


class _AsyncCallable:
    async def __call__(self, item: int) -> None:
        await checkpoint()


# -- constructors ---------------------------------------------------------------


@pytest.mark.parametrize("logger", ["x", 5, logging.getLogger, object()])
def test_bounded_queue_refuses_a_logger_that_is_not_a_logger(logger: Any) -> None:
    with pytest.raises(TypeError, match=r"\blogger\b"):
        BoundedQueue[int](logger=logger)


@pytest.mark.parametrize("logger", ["x", 5])
def test_work_queue_refuses_a_logger_that_is_not_a_logger(logger: Any) -> None:
    with pytest.raises(TypeError, match=r"\blogger\b"):
        WorkQueue[int](logger=logger)
    with pytest.raises(TypeError, match=r"\blogger\b"):
        WorkQueue[int].from_config(QueueConfig(), logger=logger)


def test_a_logger_or_none_is_accepted() -> None:
    logger = logging.getLogger("cc.queues.tests")
    assert BoundedQueue[int](logger=None) is not None
    assert BoundedQueue[int](logger=logger) is not None
    assert WorkQueue[int](logger=logger) is not None


@pytest.mark.parametrize("config", [{"queue_capacity": 3}, "x", None, 5])
def test_from_config_refuses_what_is_not_a_queue_config(config: Any) -> None:
    with pytest.raises(TypeError, match=r"\bconfig\b"):
        WorkQueue[int].from_config(config)


# -- a sync worker_func or error_handler: the work stops, one error ------------


class SyncWork:
    """A sync function where an async one is expected; counts its calls."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, item: int) -> None:
        self.calls.append(item)


def _errors_logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_sync_worker_func_stops_the_workers_with_one_type_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="cc.queues")
    sync = SyncWork()
    handled: list[int] = []

    async def on_error(exc: Exception, item: int) -> None:
        handled.append(item)  # pragma: no cover - a misuse is not an item error

    queue = BoundedQueue[int](maxsize=8)
    with pytest.raises(TypeError, match=r"\bworker_func\b.*returned NoneType"):
        async with queue:
            await queue.start_workers(sync, 3, on_error)  # type: ignore[arg-type]
            for item in range(6):
                await queue.put(item)
            await queue.join()  # cancelled: the work stopped
    assert sync.calls == [0]  # called once, never again
    assert handled == []
    assert _errors_logged(caplog) == []  # raised once, not logged per item
    metrics = queue.metrics
    assert metrics["errors"] == 1  # the item it was called with
    # Every other item put before the work stopped (a checkpoint among the
    # puts may let the worker fail early) is handed back: nothing lost.
    assert sorted(queue.unprocessed) == list(range(1, metrics["enqueued"]))
    assert metrics["handed_back"] == metrics["enqueued"] - 1
    assert metrics["enqueued"] == metrics["errors"] + metrics["handed_back"]
    assert queue.status is QueueStatus.STOPPED
    assert queue.worker_count == 0


async def test_stop_raises_the_type_error_of_a_sync_worker_func() -> None:
    sync = SyncWork()
    queue = BoundedQueue[int](maxsize=8)
    with pytest.raises(TypeError, match=r"\bworker_func\b"):
        await queue.start()
        try:
            await queue.start_workers(sync, 1)  # type: ignore[arg-type]
            await queue.put(1)
            await queue.put(2)
            await anyio.sleep_forever()  # cancelled by the failing worker
        finally:
            await queue.stop()  # raises the TypeError instead
    assert sync.calls == [1]
    assert queue.unprocessed == list(range(2, queue.metrics["enqueued"] + 1))
    with pytest.raises(QueueStateError, match="stopped"):
        await queue.put(3)
    await queue.start()  # usable again; the failure is not raised twice
    assert await queue.put(3)
    assert await queue.stop() == [3]


async def test_a_sync_error_handler_stops_the_workers_with_one_type_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="cc.queues")
    calls: list[int] = []

    async def fail(item: int) -> None:
        raise ValueError(item)

    def handler(exc: Exception, item: int) -> None:
        calls.append(item)

    queue = BoundedQueue[int](maxsize=8)
    with pytest.raises(TypeError, match=r"\berror_handler\b"):
        async with queue:
            await queue.start_workers(fail, 2, handler)  # type: ignore[arg-type]
            for item in range(5):
                await queue.put(item)
            await queue.join()
    assert calls == [0]
    assert _errors_logged(caplog) == []
    metrics = queue.metrics
    assert metrics["errors"] == 1
    assert sorted(queue.unprocessed) == list(range(1, metrics["enqueued"]))
    assert metrics["enqueued"] == metrics["errors"] + metrics["handed_back"]


async def test_process_with_a_sync_worker_func_raises_one_type_error() -> None:
    # Where cc's checkpoint rule falls decides which worker's start-rate turn
    # comes first; on one offset a worker's turn came just after another's
    # misuse had stopped the work, and it called the function again (a second
    # TypeError). So: every offset of the thread's budget, one by one.
    for offset in range(CHECKPOINT_INTERVAL):
        while not checkpoint_due():
            pass
        for _ in range(offset):
            checkpoint_due()
        sync = SyncWork()
        queue = WorkQueue[int](maxsize=8, concurrency_limit=4, rate_limit=100)
        with pytest.raises(TypeError, match=r"\bworker_func\b"):
            async with queue:
                await queue.process(sync)  # type: ignore[arg-type]
                for item in range(6):
                    await queue.put(item)
                await queue.join()
        # One call, then the work stopped: a worker whose item waited for its
        # start-rate turn meanwhile hands it back untouched (whichever
        # worker's turn came first made the one call).
        assert len(sync.calls) == 1, (offset, sync.calls)
        enqueued = range(queue.metrics["enqueued"])
        expected = [i for i in enqueued if i not in sync.calls]
        assert sorted(queue.unprocessed) == expected, offset
        assert queue.metrics["errors"] == 1, offset


@pytest.mark.parametrize("misuse", ["worker_func", "error_handler"])
async def test_batch_process_with_a_sync_function_raises_one_type_error(
    misuse: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="cc.queues")
    sync = SyncWork()

    async def fail(item: int) -> None:
        sync.calls.append(item)
        raise ValueError(item)

    def handler(exc: Exception, item: int) -> None:
        return None

    arguments: dict[str, Any] = (
        {"worker_func": sync}
        if misuse == "worker_func"
        else {"worker_func": fail, "error_handler": handler}
    )
    queue = WorkQueue[int](maxsize=4, concurrency_limit=2)
    with pytest.raises(TypeError, match=rf"\b{misuse}\b"):
        await queue.batch_process(range(100), collect_results=True, **arguments)
    assert sync.calls == [0]
    assert _errors_logged(caplog) == []
    metrics = queue.metrics
    assert metrics["errors"] == 1
    # The items read from the iterable and not processed are handed back.
    assert sorted(queue.unprocessed) == list(range(1, metrics["enqueued"]))
    assert metrics["enqueued"] == metrics["errors"] + metrics["handed_back"]


async def test_a_function_returning_an_awaitable_still_works() -> None:
    done: list[int] = []

    async def work(item: int) -> None:
        done.append(item)

    async with BoundedQueue[int](maxsize=4) as queue:
        await queue.start_workers(lambda item: work(item), 1)
        for item in range(3):
            await queue.put(item)
        await queue.join()
    assert done == [0, 1, 2]
    assert queue.metrics["processed"] == 3


@pytest.mark.parametrize(
    "func",
    [_async, functools.partial(_async), _AsyncCallable()],
    ids=["async def", "partial", "async __call__"],
)
async def test_async_functions_are_used_as_they_are(func: Any) -> None:
    async with BoundedQueue[int](maxsize=4) as queue:
        await queue.start_workers(func, 1)
        await queue.put(1)
        await queue.join()
    assert queue.metrics["processed"] == 1


async def test_process_refuses_a_worker_func_that_is_not_callable() -> None:
    async with WorkQueue[int](maxsize=4) as queue:
        with pytest.raises(TypeError, match=r"\bworker_func\b"):
            await queue.process(5)  # type: ignore[arg-type]
        assert queue.worker_count == 0


# -- batch_process -----------------------------------------------------------------


@pytest.mark.parametrize("items", [5, None, 1.5])
async def test_batch_process_refuses_items_that_are_not_iterable(items: Any) -> None:
    queue = WorkQueue[int]()
    with pytest.raises(TypeError, match=r"\bitems\b"):
        await queue.batch_process(items, _async)
    assert queue.metrics["enqueued"] == 0


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"worker_func": None}, "worker_func"),
        ({"worker_func": 5}, "worker_func"),
        ({"error_handler": 5}, "error_handler"),
        ({"on_progress": 5}, "on_progress"),
    ],
)
async def test_batch_process_refuses_what_is_not_callable(
    kwargs: dict[str, Any], word: str
) -> None:
    called: list[int] = []

    async def work(item: int) -> None:
        called.append(item)

    arguments: dict[str, Any] = {"worker_func": work, **kwargs}
    queue = WorkQueue[int]()
    with pytest.raises(TypeError, match=rf"\b{word}\b"):
        await queue.batch_process([1, 2], **arguments)
    assert called == []
    assert queue.metrics["enqueued"] == 0


async def test_batch_process_still_reads_iterables_lazily_and_counts_them() -> None:
    read: list[int] = []
    progress: list[tuple[int, int | None]] = []

    def numbers() -> Any:
        for item in range(3):
            read.append(item)
            yield item

    async def double(item: int) -> int:
        return item * 2

    queue = WorkQueue[int](maxsize=1)
    summary = await queue.batch_process(
        numbers(), double, collect_results=True, on_progress=lambda d, t: None
    )
    assert summary.results == {0: 0, 1: 2, 2: 4}
    assert read == [0, 1, 2]
    summary = await queue.batch_process(
        [5, 6],
        double,
        on_progress=lambda done, total: progress.append((done, total)),
    )
    assert summary.succeeded == 2
    assert progress == [(1, 2), (2, 2)]


async def test_batch_process_accepts_an_async_iterable() -> None:
    async def numbers() -> AsyncIterator[int]:
        for item in range(3):
            await anyio.lowlevel.checkpoint()
            yield item

    summary = await WorkQueue[int]().batch_process(numbers(), _async)
    assert summary.succeeded == 3


# -- huge numbers and flags --------------------------------------------------------

HUGE = 10**400  # too large for a float


async def test_a_timeout_too_large_for_a_float_means_forever() -> None:
    queue = BoundedQueue[int](maxsize=1, timeout=HUGE)
    results: list[bool] = []
    async with queue, anyio.create_task_group() as tg:
        assert await queue.put(1, timeout=HUGE)

        async def producer() -> None:
            results.append(await queue.put(2))  # the default: forever

        tg.start_soon(producer)
        await anyio.sleep(0.01)
        assert results == []  # still waiting, not refused
        assert await queue.get() == 1
        while not results:
            await checkpoint()
    assert results == [True]
    assert queue.unprocessed == [2]
    await queue.start()
    assert await queue.stop(timeout=HUGE) == []
    work = WorkQueue[int](timeout=HUGE)
    async with work:
        assert await work.put(1, timeout=HUGE)


@pytest.mark.parametrize("timeout", [-HUGE, -1, math.nan])
async def test_a_negative_or_nan_timeout_is_a_value_error_naming_it(
    timeout: Any,
) -> None:
    with pytest.raises(ValueError, match=r"\btimeout must be >= 0"):
        BoundedQueue[int](timeout=timeout)
    async with BoundedQueue[int]() as queue:
        with pytest.raises(ValueError, match=r"\btimeout must be >= 0"):
            await queue.put(1, timeout=timeout)
        with pytest.raises(ValueError, match=r"\btimeout must be >= 0"):
            await queue.stop(timeout=timeout)
        assert await queue.put(1)  # still usable
    assert queue.unprocessed == [1]


def test_a_rate_limit_too_large_for_a_float_is_a_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match=r"\brate_limit must be at most"):
        WorkQueue[int](rate_limit=HUGE)
    with pytest.raises(ValueError, match=r"\brate_window must be a positive finite"):
        WorkQueue[int](rate_limit=5, rate_window=HUGE)
    # Counts are ints, compared as ints: huge ones are fine.
    queue = WorkQueue[int](maxsize=HUGE, concurrency_limit=HUGE, rate_limit=10**300)
    assert queue.maxsize == HUGE
    assert queue.concurrency_limit == HUGE


@pytest.mark.parametrize("flag", ["yes", 1, None])
async def test_flags_must_be_bools(flag: Any) -> None:
    with pytest.raises(TypeError, match=r"\bcollect_results must be a bool"):
        await WorkQueue[int]().batch_process([1], _async, collect_results=flag)
    with pytest.raises(TypeError, match=r"\brate_limited must be a bool"):
        WorkQueue[int].from_config(QueueConfig(), rate_limited=flag)
