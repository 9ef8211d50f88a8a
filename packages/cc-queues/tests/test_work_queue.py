"""WorkQueue: process, concurrency limit, rate limit, batch_process, lifecycle."""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing

import anyio
import pytest
from anyio.lowlevel import checkpoint

from cc.queues import QueueConfig, QueueStateError, QueueStatus, WorkQueue

from ._helpers import accounted, settle

pytestmark = pytest.mark.anyio


class InFlight:
    """Tracks how many calls of a worker function run at once."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0
        self.calls = 0

    async def work(self, item: int) -> int:
        self.now += 1
        self.calls += 1
        self.most = max(self.most, self.now)
        try:
            await anyio.sleep(0.001)
        finally:
            self.now -= 1
        return item


async def test_process_put_join_stop() -> None:
    done: list[int] = []

    async def work(item: int) -> None:
        done.append(item)

    async with WorkQueue[int](maxsize=4, concurrency_limit=2) as queue:
        assert queue.status is QueueStatus.PROCESSING
        await queue.process(work)
        assert queue.worker_count == 0  # workers start as items wait
        for item in range(20):
            assert await queue.put(item, timeout=math.inf)
        await queue.join()
        assert await queue.stop() == []
    assert sorted(done) == list(range(20))
    assert queue.status is QueueStatus.STOPPED
    assert queue.metrics["processed"] == 20


async def test_concurrency_limit_is_honoured_and_enforced() -> None:
    tracker = InFlight()
    async with WorkQueue[int](maxsize=50, concurrency_limit=3) as queue:
        await queue.process(tracker.work)  # defaults to concurrency_limit workers
        with pytest.raises(ValueError, match="exceed concurrency_limit=3"):
            await queue.process(tracker.work, num_workers=1)
        for item in range(40):
            await queue.put(item)
        assert queue.worker_count == 3  # one per waiting item, up to the cap
        await queue.join()
    assert tracker.calls == 40
    assert tracker.most == 3


async def test_workers_can_be_added_up_to_the_limit() -> None:
    tracker = InFlight()
    async with WorkQueue[int](concurrency_limit=4) as queue:
        await queue.process(tracker.work, num_workers=1)
        await queue.process(tracker.work, num_workers=3)
        with pytest.raises(ValueError, match="next to the 4 already granted"):
            await queue.process(tracker.work, num_workers=1)
        for item in range(30):
            await queue.put(item)
        assert queue.worker_count == 4
        await queue.join()
    assert tracker.most <= 4


async def test_without_a_limit_process_starts_one_worker_by_default() -> None:
    gate = anyio.Event()

    async def work(item: int) -> None:
        await gate.wait()

    async with WorkQueue[int]() as queue:
        await queue.process(work)
        for item in range(3):
            await queue.put(item)
        assert queue.worker_count == 1
        await queue.process(work, num_workers=5)
        assert queue.worker_count == 3  # as many as items wait: 2 more
        for item in range(3, 10):
            await queue.put(item)
        assert queue.worker_count == 6
        with pytest.raises(ValueError, match="num_workers must be >= 1"):
            await queue.process(work, num_workers=0)
        gate.set()
        await queue.join()


async def test_process_and_put_need_a_running_queue() -> None:
    async def work(item: int) -> None:
        pass

    queue = WorkQueue[int]()
    with pytest.raises(QueueStateError) as info:
        await queue.put(1)
    assert info.value.current_state is QueueStatus.IDLE
    with pytest.raises(QueueStateError):
        await queue.process(work)


async def test_put_applies_backpressure() -> None:
    async with WorkQueue[int](maxsize=1, timeout=0) as queue:
        assert await queue.put(1)
        assert queue.is_full
        assert not queue.is_empty
        assert queue.size == 1
        assert await queue.put(2) is False
        assert await queue.put(2, timeout=0.001) is False
        assert queue.metrics["backpressure_events"] == 2
        assert await queue.stop() == [1]
    assert queue.unprocessed == [1]


async def test_error_handler_in_process() -> None:
    handled: list[int] = []

    async def work(item: int) -> None:
        raise ValueError(item)

    async def on_error(exc: Exception, item: int) -> None:
        handled.append(item)

    async with WorkQueue[int]() as queue:
        await queue.process(work, error_handler=on_error)
        await queue.put(3)
        await queue.join()
    assert handled == [3]
    assert queue.metrics["errors"] == 1


async def test_stop_hands_back_and_async_with_exit_keeps_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="cc.queues")
    async with WorkQueue[int]() as queue:
        await queue.put(1)
        await queue.put(2)
    assert queue.unprocessed == [1, 2]
    assert caplog.records == []  # collected: nothing to warn about
    await queue.start()  # a restart clears them
    assert queue.unprocessed == []
    await queue.stop()


async def test_leaving_async_with_on_error_cancels_busy_workers() -> None:
    async def work(item: int) -> None:
        await anyio.sleep_forever()

    queue = WorkQueue[int]()
    with pytest.raises(LookupError):
        async with queue:
            await queue.process(work)
            await queue.put(1)
            await settle()
            raise LookupError("boom")
    assert queue.unprocessed == [1]
    assert accounted(queue)


async def test_stop_from_another_task_is_refused() -> None:
    async with WorkQueue[int]() as queue, anyio.create_task_group() as tg:

        async def intruder() -> None:
            with pytest.raises(QueueStateError, match="task that started"):
                await queue.stop()

        tg.start_soon(intruder)
    assert queue.status is QueueStatus.STOPPED


# -- batch_process ------------------------------------------------------------


async def test_batch_process_a_list_with_results() -> None:
    async def double(item: int) -> int:
        await checkpoint()
        return item * 2

    queue = WorkQueue[int](maxsize=3, concurrency_limit=2)
    summary = await queue.batch_process(list(range(10)), double, collect_results=True)
    assert (summary.total, summary.succeeded, summary.failed) == (10, 10, 0)
    assert summary.results == {i: i * 2 for i in range(10)}
    assert summary.errors == {}
    assert queue.status is QueueStatus.IDLE  # the batch ran on its own queue
    assert queue.metrics["enqueued"] == 10
    assert queue.metrics["processed"] == 10
    assert queue.worker_count == 0


async def test_batch_process_without_collect_results_keeps_only_counts() -> None:
    async def work(item: int) -> int:
        if item == 2:
            raise ValueError(item)
        return item

    queue = WorkQueue[int]()
    summary = await queue.batch_process(range(5), work, error_handler=_ignore)
    assert (summary.total, summary.succeeded, summary.failed) == (5, 4, 1)
    assert summary.results == {}
    assert summary.errors == {}


async def _ignore(exc: Exception, item: int) -> None:
    pass


async def test_batch_process_reports_errors_per_item() -> None:
    handled: list[tuple[int, str]] = []

    async def work(item: int) -> int:
        if item % 4 == 1:
            raise ValueError(f"bad {item}")
        return item

    async def on_error(exc: Exception, item: int) -> None:
        handled.append((item, str(exc)))

    queue = WorkQueue[int](concurrency_limit=3)
    summary = await queue.batch_process(
        range(12), work, error_handler=on_error, collect_results=True
    )
    assert summary.failed == 3
    assert summary.succeeded == 9
    assert sorted(handled) == [(1, "bad 1"), (5, "bad 5"), (9, "bad 9")]
    assert {i: str(e) for i, e in summary.errors.items()} == {
        1: "bad 1",
        5: "bad 5",
        9: "bad 9",
    }
    assert sorted(summary.results) == [0, 2, 3, 4, 6, 7, 8, 10, 11]
    assert queue.metrics["errors"] == 3


async def test_batch_process_logs_errors_without_a_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="cc.queues")

    async def work(item: str) -> None:
        raise ValueError(item)

    queue = WorkQueue[str]()
    summary = await queue.batch_process(["x"], work)
    assert summary.failed == 1
    (record,) = caplog.records
    assert record.getMessage() == "worker failed on item 'x'"
    assert record.exc_info is not None


async def test_batch_process_a_failing_handler_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="cc.queues")

    async def work(item: int) -> None:
        raise ValueError(item)

    async def broken(exc: Exception, item: int) -> None:
        raise RuntimeError("handler bug")

    progress: list[int] = []
    queue = WorkQueue[int]()
    summary = await queue.batch_process(
        [1, 2], work, error_handler=broken, on_progress=lambda d, t: progress.append(d)
    )
    assert summary.failed == 2
    assert progress == [1, 2]  # progress is reported even so
    messages = sorted(r.getMessage() for r in caplog.records)
    assert len(messages) == 2
    assert "error handler <function" in messages[0]
    assert messages[0].endswith("failed on item 1")
    assert messages[1].endswith("failed on item 2")
    assert all(
        isinstance(r.exc_info and r.exc_info[1], RuntimeError) for r in caplog.records
    )


async def test_batch_process_a_generator_reads_lazily_with_bounded_lookahead() -> None:
    maxsize, workers = 8, 3
    produced = 0
    finished = 0
    most_ahead = 0

    def numbers() -> Iterator[int]:
        nonlocal produced, most_ahead
        for item in range(2000):
            produced += 1
            most_ahead = max(most_ahead, produced - finished)
            yield item

    async def work(item: int) -> None:
        nonlocal finished
        await checkpoint()
        finished += 1

    queue = WorkQueue[int](maxsize=maxsize, concurrency_limit=workers)
    summary = await queue.batch_process(numbers(), work)
    assert summary.succeeded == 2000
    # Items held at once: the queue, one per worker, and the one being put.
    assert most_ahead <= maxsize + workers + 1


async def test_batch_process_an_async_generator_with_bounded_lookahead() -> None:
    maxsize, workers = 5, 2
    produced = 0
    finished = 0
    most_ahead = 0

    async def numbers() -> AsyncIterator[int]:
        nonlocal produced, most_ahead
        for item in range(1500):
            produced += 1
            most_ahead = max(most_ahead, produced - finished)
            yield item
            if item % 100 == 0:
                await checkpoint()

    async def work(item: int) -> int:
        nonlocal finished
        await checkpoint()
        finished += 1
        return item

    queue = WorkQueue[int](maxsize=maxsize, concurrency_limit=workers)
    summary = await queue.batch_process(numbers(), work, collect_results=True)
    assert summary.succeeded == 1500
    assert summary.results == {i: i for i in range(1500)}
    assert most_ahead <= maxsize + workers + 1


async def test_batch_process_reports_progress() -> None:
    calls: list[tuple[int, int | None]] = []

    async def work(item: int) -> None:
        if item == 3:
            raise ValueError(item)

    queue = WorkQueue[int](concurrency_limit=2)
    await queue.batch_process(
        [0, 1, 2, 3, 4], work, error_handler=_ignore, on_progress=_record(calls)
    )
    assert calls == [(done, 5) for done in range(1, 6)]

    calls.clear()
    await queue.batch_process(iter(range(3)), work, on_progress=_record(calls))
    assert calls == [(1, None), (2, None), (3, None)]


def _record(calls: list[tuple[int, int | None]]) -> object:
    def on_progress(done: int, total: int | None) -> None:
        calls.append((done, total))

    return on_progress


async def test_a_failing_progress_callback_is_logged_and_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="cc.queues")

    async def work(item: int) -> None:
        pass

    def broken(done: int, total: int | None) -> None:
        raise ZeroDivisionError

    queue = WorkQueue[int]()
    summary = await queue.batch_process(range(3), work, on_progress=broken)
    assert summary.succeeded == 3
    assert sum("progress callback" in r.getMessage() for r in caplog.records) == 3


async def test_batch_process_honours_the_concurrency_limit() -> None:
    tracker = InFlight()
    queue = WorkQueue[int](maxsize=10, concurrency_limit=4)
    summary = await queue.batch_process(range(60), tracker.work)
    assert summary.succeeded == 60
    assert tracker.most == 4
    with pytest.raises(ValueError, match="exceed concurrency_limit=4"):
        await queue.batch_process(range(3), tracker.work, num_workers=5)


async def test_batch_process_shares_the_limit_with_running_workers() -> None:
    tracker = InFlight()
    main_done: list[int] = []

    async def main_work(item: int) -> None:
        main_done.append(item)

    async with WorkQueue[int](concurrency_limit=3) as queue:
        await queue.process(main_work, num_workers=2)
        with pytest.raises(ValueError, match="next to the 2 already granted"):
            await queue.batch_process(range(3), tracker.work, num_workers=2)
        await queue.put(100)
        summary = await queue.batch_process(range(20), tracker.work, num_workers=1)
        await queue.join()
    assert summary.succeeded == 20
    assert tracker.most == 1
    assert main_done == [100]  # the main queue's items stay with its workers
    assert queue.metrics["enqueued"] == 21


async def test_cancelling_batch_process_hands_back_unfinished_items() -> None:
    started = anyio.Event()
    finished: list[int] = []

    async def work(item: int) -> None:
        if item == 2:
            started.set()
            await anyio.sleep_forever()
        finished.append(item)

    queue = WorkQueue[int](maxsize=4, concurrency_limit=1)
    async with anyio.create_task_group() as tg:

        async def run_batch() -> None:
            await queue.batch_process(range(100), work)

        tg.start_soon(run_batch)
        await started.wait()
        await settle()
        tg.cancel_scope.cancel()
    assert finished == [0, 1]
    # In hand, then the queue, then the one the feeder was putting.
    assert queue.unprocessed == [2, 3, 4, 5, 6, 7]
    metrics = queue.metrics
    assert metrics["handed_back"] == 6
    assert accounted(queue)
    assert queue.worker_count == 0
    assert await queue.stop() == []  # the idle main queue: nothing to stop
    assert queue.unprocessed == [2, 3, 4, 5, 6, 7]  # still there


async def test_an_error_from_the_iterable_stops_the_batch() -> None:
    done: list[int] = []

    def numbers() -> Iterator[int]:
        yield 1
        yield 2
        raise OSError("source failed")

    async def work(item: int) -> None:
        done.append(item)

    queue = WorkQueue[int](maxsize=10)
    with pytest.raises(OSError, match="source failed"):
        await queue.batch_process(numbers(), work)
    assert queue.metrics["enqueued"] == 2
    assert sorted(done + queue.unprocessed) == [1, 2]  # nothing lost
    assert accounted(queue)


async def test_batch_process_on_an_empty_iterable() -> None:
    async def work(item: int) -> None:
        raise AssertionError("never called")

    summary = await WorkQueue[int]().batch_process([], work)
    assert (summary.total, summary.succeeded, summary.failed) == (0, 0, 0)


# -- rate limit ---------------------------------------------------------------


def assert_window(starts: list[float], limit: int, window: float, began: float) -> None:
    """No more than ``limit`` starts were let through per ``window`` seconds.

    A worker observes its start a scheduling delay after the window let it
    through, so two observed starts can look closer than the window did on a
    loaded machine. Bound them from below instead: the (k*limit)-th start
    cannot be observed before ``began + k * window``.
    """
    observed = sorted(starts)
    for k in range(1, (len(observed) - 1) // limit + 1):
        assert observed[k * limit] - began >= k * window * 0.99, (k, observed)


async def test_rate_limit_caps_starts_per_sliding_window() -> None:
    starts: list[float] = []

    async def work(item: int) -> None:
        starts.append(anyio.current_time())

    queue = WorkQueue[int](concurrency_limit=4, rate_limit=3, rate_window=0.03)
    assert queue.rate_limit == (3, 0.03)
    began = anyio.current_time()
    await queue.batch_process(range(9), work)
    assert len(starts) == 9
    assert_window(starts, 3, 0.03, began)


async def test_rate_limit_applies_to_process_too() -> None:
    starts: list[float] = []

    async def work(item: int) -> None:
        starts.append(anyio.current_time())

    config = QueueConfig(queue_capacity=2, capacity_refresh_time=0.03)
    began = anyio.current_time()
    async with WorkQueue[int].from_config(config, rate_limited=True) as queue:
        await queue.process(work, num_workers=3)
        for item in range(6):
            await queue.put(item, timeout=math.inf)
        await queue.join()
    assert len(starts) == 6
    assert_window(starts, 2, 0.03, began)


async def test_stop_cancels_workers_waiting_for_their_rate_turn() -> None:
    done: list[int] = []

    async def work(item: int) -> None:
        done.append(item)

    queue = WorkQueue[int](concurrency_limit=2, rate_limit=1, rate_window=60)
    await queue.start()
    await queue.process(work)
    for item in range(4):
        await queue.put(item)
    await settle()
    # Item 0 or 1 (whichever worker reached the rate limiter first: its
    # checkpoint rule may let the other go ahead) started and finished; the
    # rest of 0, 1, 2 are in the workers' hands, waiting for their turn (60 s
    # away); 3 is queued.
    leftovers = await queue.stop(timeout=0.01)
    assert len(done) == 1 and done[0] in (0, 1)
    assert sorted(leftovers[:2]) == sorted({0, 1, 2} - set(done))
    assert leftovers[2:] == [3]
    assert queue.metrics["processed"] == 1
    assert accounted(queue)


async def test_metrics_add_up_across_batches_and_the_main_queue() -> None:
    counts: Counter[str] = Counter()
    seen_during_batch: list[dict[str, int]] = []

    async def work(item: int) -> None:
        counts["calls"] += 1
        seen_during_batch.append(queue.metrics)

    queue = WorkQueue[int]()
    await queue.batch_process(range(3), work)
    await queue.batch_process(range(4), work)
    async with queue:
        await queue.process(work)
        await queue.put(1)
        await queue.join()
    assert counts["calls"] == 8
    # While the second batch ran, its items were counted live (how many of
    # them the feeder had put when a worker looked is the scheduler's call).
    enqueued = [m["enqueued"] for m in seen_during_batch[3:7]]
    assert enqueued == sorted(enqueued)
    assert all(3 + n <= count <= 7 for n, count in enumerate(enqueued, 1))
    assert [m["processed"] for m in seen_during_batch[3:7]] == [3, 4, 5, 6]
    assert queue.metrics["enqueued"] == 8
    assert queue.metrics["processed"] == 8


# -- regressions ---------------------------------------------------------------


async def test_two_concurrent_batches_cannot_both_take_the_whole_limit() -> None:
    tracker = InFlight()
    queue = WorkQueue[int](maxsize=10, concurrency_limit=2)
    outcomes: list[object] = []

    async def run_batch() -> None:
        try:
            outcomes.append(await queue.batch_process(range(10), tracker.work))
        except ValueError as exc:
            outcomes.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run_batch)
        tg.start_soon(run_batch)
    assert tracker.most == 2  # never 4
    errors = [o for o in outcomes if isinstance(o, ValueError)]
    assert len(errors) == 1
    assert "exceed concurrency_limit=2" in str(errors[0])
    assert tracker.calls == 10
    assert queue.worker_count == 0
    # The limit is free again once the batch is over.
    summary = await queue.batch_process(range(4), tracker.work)
    assert summary.succeeded == 4


async def test_two_concurrent_process_calls_cannot_exceed_the_limit() -> None:
    tracker = InFlight()
    async with WorkQueue[int](maxsize=10, concurrency_limit=2) as queue:
        refused: list[ValueError] = []

        async def attach() -> None:
            try:
                await queue.process(tracker.work)
            except ValueError as exc:
                refused.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(attach)
            tg.start_soon(attach)
        assert len(refused) == 1
        for item in range(20):
            await queue.put(item, timeout=math.inf)
        await queue.join()
    assert tracker.most == 2
    assert tracker.calls == 20


async def test_a_process_call_refused_by_a_stopped_queue_frees_its_quota() -> None:
    queue = WorkQueue[int](concurrency_limit=1)
    with pytest.raises(QueueStateError):
        await queue.process(InFlight().work)
    async with queue:
        await queue.process(InFlight().work)  # the failed call reserved nothing
        await queue.put(1)
        assert queue.worker_count == 1
        await queue.join()


def _quiet(name: str) -> logging.Logger:
    logger = logging.getLogger(f"cc.queues.tests.{name}")
    logger.propagate = False
    logger.addHandler(logging.NullHandler())
    return logger


async def _forever(item: int) -> None:
    await anyio.sleep_forever()


async def test_a_cancelled_host_keeps_the_handed_back_items() -> None:
    queue = WorkQueue[int](maxsize=100, concurrency_limit=2, logger=_quiet("host"))
    with anyio.move_on_after(0.05) as deadline:
        async with queue:
            await queue.process(_forever)
            for item in range(20):
                await queue.put(item)
            await anyio.sleep_forever()
    assert deadline.cancelled_caught
    assert queue.status is QueueStatus.STOPPED
    assert queue.metrics["handed_back"] == 20
    assert sorted(queue.unprocessed) == list(range(20))
    assert accounted(queue)


async def test_a_cancelled_batch_hands_back_the_item_it_was_feeding() -> None:
    taken: list[int] = []

    def source() -> Iterator[int]:
        for item in range(100):
            taken.append(item)
            yield item

    queue = WorkQueue[int](maxsize=2, concurrency_limit=2, logger=_quiet("feed"))
    with anyio.move_on_after(0.05):
        await queue.batch_process(source(), _forever)
    assert len(taken) == 5  # two with the workers, two queued, one being fed
    back = queue.unprocessed
    assert sorted(back[:2]) == [0, 1]  # interrupted, in either order
    assert back[2:] == [2, 3, 4]  # queued, then the one being fed
    metrics = queue.metrics
    assert metrics["enqueued"] == 5
    assert metrics["handed_back"] == 5
    assert accounted(queue)


async def test_a_batch_stopped_from_its_async_source_hands_back_the_fed_item() -> None:
    queue = WorkQueue[int](maxsize=1, concurrency_limit=1, logger=_quiet("afeed"))

    async def source() -> AsyncIterator[int]:
        for item in range(10):
            yield item

    async with aclosing(source()) as items:
        with anyio.move_on_after(0.05):
            await queue.batch_process(items, _forever)
    assert queue.unprocessed == [0, 1, 2]  # in hand, queued, being fed
    assert accounted(queue)


async def test_an_interrupted_batch_with_nothing_to_hand_back_clears_unprocessed() -> (
    None
):
    queue = WorkQueue[int](maxsize=10, concurrency_limit=2, logger=_quiet("clear"))
    async with queue:
        await queue.process(_forever)
        for item in range(5):
            await queue.put(item)
        await settle()
        assert sorted(await queue.stop(timeout=0)) == list(range(5))

    def failing_source() -> Iterator[int]:
        raise ValueError("the source fails before its first item")
        yield 0  # pragma: no cover - makes this a generator

    with pytest.raises(ValueError, match="source fails"):
        await queue.batch_process(failing_source(), _forever)
    assert queue.unprocessed == []
    # A batch that finishes leaves .unprocessed alone.
    summary = await queue.batch_process([], _forever)
    assert summary.total == 0
    assert queue.unprocessed == []
