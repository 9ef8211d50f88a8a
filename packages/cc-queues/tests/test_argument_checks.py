"""Bad arguments are refused at the boundary with a TypeError naming them."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from anyio.lowlevel import checkpoint

from cc.queues import BoundedQueue, QueueConfig, WorkQueue

pytestmark = pytest.mark.anyio


def _sync(item: int) -> None:
    return None


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


# -- a sync worker_func ----------------------------------------------------------


async def test_start_workers_reports_a_sync_worker_func_by_name() -> None:
    reported: list[Exception] = []

    async def on_error(exc: Exception, item: int) -> None:
        reported.append(exc)

    async with BoundedQueue[int](maxsize=4) as queue:
        await queue.start_workers(_sync, 1, on_error)  # type: ignore[arg-type]
        await queue.put(1)
        await queue.join()
    assert len(reported) == 1
    assert isinstance(reported[0], TypeError)
    assert "worker_func" in str(reported[0])
    assert queue.metrics["errors"] == 1


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


async def test_a_sync_error_handler_is_reported_by_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="cc.queues")

    async def fail(item: int) -> None:
        raise ValueError(item)

    def handler(exc: Exception, item: int) -> None:
        return None

    async with BoundedQueue[int](maxsize=4) as queue:
        await queue.start_workers(fail, 1, handler)  # type: ignore[arg-type]
        await queue.put(1)
        await queue.join()
    failures = [r for r in caplog.records if r.exc_info]
    assert failures
    assert "error_handler" in str(failures[0].exc_info[1])  # type: ignore[index]


async def test_process_reports_a_sync_worker_func_by_name() -> None:
    reported: list[Exception] = []

    async def on_error(exc: Exception, item: int) -> None:
        reported.append(exc)

    async with WorkQueue[int](maxsize=4, rate_limit=100) as queue:
        await queue.process(_sync, 1, on_error)  # type: ignore[arg-type]
        await queue.put(1)
        await queue.join()
    assert isinstance(reported[0], TypeError)
    assert "worker_func" in str(reported[0])


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


async def test_batch_process_reports_a_sync_worker_func_by_name() -> None:
    queue = WorkQueue[int](concurrency_limit=2)
    summary = await queue.batch_process(
        [1, 2],
        _sync,  # type: ignore[arg-type]
        collect_results=True,
        error_handler=_quiet_handler,
    )
    assert summary.failed == 2
    assert all(isinstance(e, TypeError) for e in summary.errors.values())
    assert all("worker_func" in str(e) for e in summary.errors.values())


async def _quiet_handler(exc: Exception, item: int) -> None:
    return None


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
