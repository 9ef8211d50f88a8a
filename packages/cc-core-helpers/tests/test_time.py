"""async_sleep and async_wait_for on every backend."""

from __future__ import annotations

import contextvars
import inspect
import math
from collections.abc import Generator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from cc.core_helpers import ValidationError, async_sleep, async_wait_for
from cc.primitives.lowlevel import CHECKPOINT_INTERVAL, checkpoint_due

pytestmark = pytest.mark.anyio

marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="unset")


class Work:
    """A piece of work that records whether it finished or was cancelled."""

    def __init__(self) -> None:
        self.started = False
        self.finished = False
        self.cancelled = False

    async def run(self, delay: float, result: str = "done") -> str:
        self.started = True
        try:
            await anyio.sleep(delay)
        except anyio.get_cancelled_exc_class():
            self.cancelled = True
            raise
        self.finished = True
        return result


# -- async_sleep ----------------------------------------------------------------


@pytest.mark.parametrize("delay", [0, 0.001, 1e-9])
async def test_sleep_returns(delay: float) -> None:
    assert await async_sleep(delay) is None


class Seconds(float):
    """A float subclass (like numpy.float64) is a number of seconds too."""


async def test_sleep_and_wait_for_accept_float_subclasses() -> None:
    await async_sleep(Seconds(0.001))
    assert await async_wait_for(Work().run(0.001), Seconds(5)) == "done"


async def test_sleep_is_cancellable() -> None:
    start = anyio.current_time()
    with anyio.move_on_after(0.01) as scope:
        await async_sleep(10)
    assert scope.cancelled_caught
    assert anyio.current_time() - start < 5


async def test_sleep_forever_until_cancelled() -> None:
    with anyio.move_on_after(0.01) as scope:
        await async_sleep(math.inf)
    assert scope.cancelled_caught


@pytest.mark.parametrize("delay", [-1, -0.001, -math.inf, math.nan])
async def test_sleep_rejects_a_negative_delay(delay: float) -> None:
    with pytest.raises(ValidationError, match="Sleep delay must be non-negative"):
        await async_sleep(delay)


@pytest.mark.parametrize("delay", ["1", None, True, [1]])
async def test_sleep_rejects_what_is_not_a_number(delay: Any) -> None:
    with pytest.raises(ValidationError, match="Sleep delay must be a number, got"):
        await async_sleep(delay)


# -- async_wait_for -------------------------------------------------------------


async def test_wait_for_returns_the_result_in_time() -> None:
    work = Work()
    assert await async_wait_for(work.run(0.001, "ok"), timeout=5) == "ok"
    assert work.finished and not work.cancelled


async def test_work_that_never_waits_is_never_timed_out() -> None:
    async def instant() -> str:
        return "instant"

    # Not even a zero timeout interrupts work that does not wait.
    assert await async_wait_for(instant(), 0) == "instant"
    assert await async_wait_for(instant(), 1) == "instant"


async def test_timeout_raises_the_builtin_timeout_error_and_cancels_the_work() -> None:
    work = Work()
    start = anyio.current_time()
    with pytest.raises(TimeoutError, match=r"timed out after 0\.02 seconds"):
        await async_wait_for(work.run(10), timeout=0.02)
    # The work was cancelled (not left running) before the error was raised.
    assert work.cancelled and not work.finished
    assert anyio.current_time() - start < 5


async def test_a_zero_timeout_times_out_work_that_waits() -> None:
    work = Work()
    with pytest.raises(TimeoutError):
        await async_wait_for(work.run(0), timeout=0)
    assert work.cancelled


async def test_no_limit() -> None:
    work = Work()
    assert await async_wait_for(work.run(0.001), None) == "done"
    assert await async_wait_for(Work().run(0.001), math.inf) == "done"
    assert work.finished


async def test_the_work_runs_in_the_calling_task_like_await() -> None:
    async def sets_marker() -> None:
        await anyio.lowlevel.checkpoint()
        marker.set("set by the work")

    await async_wait_for(sets_marker(), 5)
    assert marker.get() == "set by the work"


async def test_errors_of_the_work_propagate_as_themselves() -> None:
    boom = KeyError("boom")

    async def fails(wait: bool) -> None:
        if wait:
            await anyio.lowlevel.checkpoint()
        raise boom

    for wait in (False, True):
        with pytest.raises(KeyError) as caught:
            await async_wait_for(fails(wait), 5)
        assert caught.value is boom


async def test_a_timeout_error_of_the_work_is_not_confused_with_ours() -> None:
    own = TimeoutError("the work's own")

    async def times_out_itself() -> None:
        await anyio.lowlevel.checkpoint()
        raise own

    with pytest.raises(TimeoutError) as caught:
        await async_wait_for(times_out_itself(), 5)
    assert caught.value is own


async def test_work_that_swallows_the_cancellation_returns_its_result() -> None:
    async def stubborn() -> str:
        try:
            await anyio.sleep(10)
        except anyio.get_cancelled_exc_class():
            return "ignored the timeout"
        return "finished"  # pragma: no cover

    assert await async_wait_for(stubborn(), 0.01) == "ignored the timeout"


async def test_cancelling_the_caller_is_not_a_timeout() -> None:
    work = Work()
    with anyio.CancelScope() as outer:
        async with anyio.create_task_group() as tg:

            async def cancel_soon() -> None:
                await anyio.sleep(0.01)
                assert work.started
                outer.cancel()

            tg.start_soon(cancel_soon)
            await async_wait_for(work.run(10), timeout=5)
    assert outer.cancelled_caught
    assert work.cancelled


async def test_awaitables_that_are_not_coroutines() -> None:
    class Slow:
        def __await__(self) -> Generator[Any, None, str]:
            yield from anyio.sleep(10).__await__()
            return "slow"  # pragma: no cover

    class Quick:
        def __await__(self) -> Generator[Any, None, str]:
            yield from anyio.lowlevel.checkpoint().__await__()
            return "quick"

    assert await async_wait_for(Quick(), 5) == "quick"
    with pytest.raises(TimeoutError):
        await async_wait_for(Slow(), 0.01)


@pytest.mark.parametrize("bad", [-1, -0.5, -math.inf, math.nan])
async def test_wait_for_rejects_a_negative_timeout(bad: float) -> None:
    work = Work()
    with pytest.raises(ValidationError, match="Timeout must be non-negative"):
        await async_wait_for(coroutine := work.run(0), bad)
    assert inspect.getcoroutinestate(coroutine) == inspect.CORO_CLOSED
    assert not work.started


@pytest.mark.parametrize("bad", ["1", True, [1]])
async def test_wait_for_rejects_a_timeout_that_is_not_a_number(bad: Any) -> None:
    work = Work()
    with pytest.raises(
        ValidationError, match="Timeout must be a number of seconds or None"
    ):
        await async_wait_for(coroutine := work.run(0), bad)
    assert inspect.getcoroutinestate(coroutine) == inspect.CORO_CLOSED
    assert not work.started


async def test_wait_for_rejects_what_is_not_awaitable() -> None:
    with pytest.raises(ValidationError, match=r"needs an awaitable, got 42 \(int\)"):
        await async_wait_for(42, 1)  # type: ignore[arg-type]


async def test_closing_a_suspended_caller_closes_the_work() -> None:
    closed = False

    async def waits() -> None:
        nonlocal closed
        try:
            await anyio.sleep(10)
        except GeneratorExit:
            closed = True
            raise

    # Drive the caller by hand and close it while it waits, as happens to a
    # coroutine that is garbage collected. Spend the thread's checkpoint
    # budget up to its due call first, so that the caller runs straight into
    # the work (on the rule's checkpoint it would stop before starting it).
    while not checkpoint_due():
        pass
    caller = async_wait_for(waits(), 5)
    caller.send(None)
    caller.close()
    assert closed

    # And closed on the rule's checkpoint, before the work started: the
    # work is closed too (never awaited, and never a warning about it).
    while not checkpoint_due():
        pass
    for _ in range(CHECKPOINT_INTERVAL - 1):
        checkpoint_due()
    closed = False
    work = waits()
    caller = async_wait_for(work, 5)
    caller.send(None)
    caller.close()
    assert inspect.getcoroutinestate(work) == inspect.CORO_CLOSED
    assert not closed  # closed before it ever ran
