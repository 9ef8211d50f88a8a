"""async_gather: order, structure, failures, limit, validation, on every backend."""

from __future__ import annotations

import contextvars
import inspect
import logging
import math
import types
from collections.abc import Awaitable, Callable, Generator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from cc.core_helpers import ValidationError, async_gather
from cc.primitives import ConcurrencyError

pytestmark = pytest.mark.anyio

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")


class Halt(BaseException):
    """A BaseException that is neither an Exception nor a cancellation."""


class Flight:
    """Counts jobs in flight and remembers the peak and every cancellation."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self.started: list[int] = []
        self.finished: list[int] = []
        self.cancelled: list[int] = []
        self._waiters: list[tuple[int, anyio.Event]] = []

    async def wait_started(self, count: int) -> None:
        """Wait until ``count`` jobs have started."""
        if len(self.started) < count:
            event = anyio.Event()
            self._waiters.append((count, event))
            await event.wait()

    async def job(
        self, n: int, delay: float = 0.0, gate: anyio.Event | None = None
    ) -> int:
        self.started.append(n)
        for count, event in self._waiters:
            if len(self.started) >= count:
                event.set()
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            if gate is None:
                await anyio.sleep(delay)
            else:
                await gate.wait()
        except anyio.get_cancelled_exc_class():
            self.cancelled.append(n)
            raise
        finally:
            self.now -= 1
        self.finished.append(n)
        return n


async def wait_until(predicate: Callable[[], bool]) -> None:
    with anyio.fail_after(5):
        while not predicate():
            await anyio.lowlevel.checkpoint()


def closed(*coroutines: Any) -> bool:
    """Whether the coroutines were closed (never run, and no warning when freed)."""
    return all(inspect.getcoroutinestate(c) == inspect.CORO_CLOSED for c in coroutines)


# -- results ------------------------------------------------------------------


async def test_results_follow_argument_order_not_completion_order() -> None:
    events = [anyio.Event() for _ in range(4)]
    completed: list[int] = []

    async def waits_for_its_turn(n: int) -> str:
        await events[n].wait()
        completed.append(n)
        return f"r{n}"

    async def release_in_reverse() -> str:
        for event in reversed(events):
            event.set()
            await anyio.sleep(0.001)
        return "driver"

    results = await async_gather(
        *(waits_for_its_turn(n) for n in range(4)), release_in_reverse()
    )
    assert completed == [3, 2, 1, 0]
    assert results == ["r0", "r1", "r2", "r3", "driver"]


async def test_awaitables_that_never_wait_and_ones_that_do_mix() -> None:
    async def at_once(n: int) -> int:
        return n

    async def after_a_while(n: int) -> int:
        await anyio.sleep(0.001)
        return n

    jobs = [at_once(n) if n % 2 else after_a_while(n) for n in range(30)]
    assert await async_gather(*jobs) == list(range(30))


async def test_every_awaitable_is_in_flight_at_once_without_limit() -> None:
    # Each one waits until all have started: this deadlocks unless all run
    # concurrently.
    count = 200
    started = 0
    everyone_in = anyio.Event()

    async def rendezvous(n: int) -> int:
        nonlocal started
        started += 1
        if started == count:
            everyone_in.set()
        await everyone_in.wait()
        return n

    with anyio.fail_after(10):
        results = await async_gather(*(rendezvous(n) for n in range(count)))
    assert results == list(range(count))


async def test_awaitables_that_wait_many_times() -> None:
    async def chatty(n: int) -> int:
        for _ in range(n):
            await anyio.lowlevel.checkpoint()
        return n

    assert await async_gather(*(chatty(n) for n in range(10))) == list(range(10))


async def test_awaitables_that_are_not_coroutines() -> None:
    class Ready:
        """An awaitable whose iterator is a plain iterator (no send/throw)."""

        def __await__(self) -> Any:
            return iter(())

    class Delayed:
        def __await__(self) -> Generator[Any, None, str]:
            yield from anyio.sleep(0.001).__await__()
            return "delayed"

    @types.coroutine
    def legacy() -> Generator[Any, None, str]:
        yield from anyio.lowlevel.checkpoint().__await__()
        return "legacy"

    async def plain() -> str:
        return "plain"

    results = await async_gather(Ready(), Delayed(), legacy(), plain())
    assert results == [None, "delayed", "legacy", "plain"]


async def test_a_single_awaitable() -> None:
    async def one() -> int:
        await anyio.lowlevel.checkpoint()
        return 1

    async def instant() -> int:
        return 2

    assert await async_gather(one()) == [1]
    assert await async_gather(instant()) == [2]


async def test_each_awaitable_gets_its_own_copy_of_the_context() -> None:
    request_id.set("caller")
    seen: list[str] = []
    kept: list[str] = []

    async def tags(value: str, wait: bool) -> None:
        seen.append(request_id.get())
        request_id.set(value)
        if wait:
            await anyio.sleep(0.001)
        kept.append(request_id.get())

    # Some finish at once (in the calling task), some wait (so later ones run
    # in worker tasks): none sees another's value, nor leaks its own.
    jobs = [tags(f"job{n}", wait=n % 3 == 0) for n in range(12)]
    await async_gather(*jobs)
    await async_gather(tags("lone", True))
    assert seen == ["caller"] * 13
    assert sorted(kept) == sorted([f"job{n}" for n in range(12)] + ["lone"])
    assert request_id.get() == "caller"


# -- failures -----------------------------------------------------------------


async def test_first_failure_propagates_as_itself_and_cancels_the_rest() -> None:
    flight = Flight()
    boom = ValueError("boom")

    async def fails_once_the_others_run() -> None:
        await flight.wait_started(3)
        raise boom

    with pytest.raises(ValueError, match="boom") as caught:
        await async_gather(
            flight.job(0, 10),
            flight.job(1, 10),
            flight.job(2, 10),
            fails_once_the_others_run(),
        )
    # Raised as itself, not in a group, and only once the others had been
    # cancelled (not merely abandoned): nothing is left running.
    assert caught.value is boom
    assert sorted(flight.cancelled) == [0, 1, 2]
    assert flight.now == 0
    assert flight.finished == []


async def test_nothing_is_left_running_after_a_failure() -> None:
    before = len(anyio.get_running_tasks())

    async def fails() -> None:
        await anyio.sleep(0.001)
        raise KeyError("k")

    flight = Flight()
    with pytest.raises(KeyError):
        await async_gather(*(flight.job(n, 10) for n in range(20)), fails())
    assert len(anyio.get_running_tasks()) == before
    assert sorted(flight.cancelled) == list(range(20))


async def test_awaitables_not_started_before_a_failure_never_run() -> None:
    flight = Flight()

    async def fails() -> None:
        raise RuntimeError("first")

    # With limit=1 the failure happens before the others start: they must be
    # closed (no "never awaited" warning, which this suite turns into errors).
    others = [flight.job(n) for n in range(5)]
    with pytest.raises(RuntimeError, match="first"):
        await async_gather(fails(), *others, limit=1)
    assert closed(*others)
    assert flight.started == []


async def test_later_failures_are_noted_on_the_first_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="cc.core_helpers")
    first, second = ValueError("first"), TypeError("second")
    first.__notes__ = ["a note of its own"]
    flight = Flight()

    async def fails_first() -> None:
        await flight.wait_started(1)
        raise first

    async def fails_when_cancelled() -> None:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            raise second from None

    async def fails_in_cleanup() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            raise LookupError("cleanup failed")

    with pytest.raises(ValueError, match="first") as caught:
        await async_gather(
            fails_when_cancelled(), fails_in_cleanup(), flight.job(0, 10), fails_first()
        )
    assert caught.value is first
    assert flight.cancelled == [0]
    assert len(first.__notes__) == 2
    assert first.__notes__[0] == "a note of its own"
    note = first.__notes__[1]
    assert "2 other failure(s)" in note
    assert "TypeError('second')" in note and "LookupError('cleanup failed')" in note
    logged = [r.exc_info[1] for r in caplog.records if r.exc_info]
    assert second in logged
    assert any(isinstance(e, LookupError) for e in logged)


async def test_an_awaitable_that_ignores_its_cancellation_does_not_hide_a_failure() -> (
    None
):
    flight = Flight()

    async def stubborn() -> str:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            flight.cancelled.append(-1)
        return "returned anyway"

    async def fails() -> None:
        await flight.wait_started(1)
        raise ValueError("failure")

    with pytest.raises(ValueError, match="failure"):
        await async_gather(stubborn(), flight.job(0, 10), fails())
    assert sorted(flight.cancelled) == [-1, 0]


async def test_a_base_exception_wins_over_an_earlier_exception() -> None:
    waiting = anyio.Event()

    async def fails() -> None:
        await waiting.wait()
        raise ValueError("ordinary")

    async def halts_while_cancelled() -> None:
        try:
            waiting.set()
            await anyio.sleep_forever()
        finally:
            raise Halt

    async def starts_first() -> None:
        await anyio.lowlevel.checkpoint()

    with pytest.raises(Halt) as caught:
        await async_gather(halts_while_cancelled(), starts_first(), fails())
    assert "ValueError('ordinary')" in "\n".join(caught.value.__notes__)


async def test_many_later_failures_are_summarised() -> None:
    go = anyio.Event()

    async def fails(n: int) -> None:
        await go.wait()
        raise ValueError(n)

    async def starter() -> None:
        await anyio.sleep(0.001)
        go.set()

    # They fail in one event loop iteration, in an order the backend chooses.
    with pytest.raises(ValueError, match=r"^\d") as caught:
        await async_gather(*(fails(n) for n in range(8)), starter())
    note = caught.value.__notes__[0]
    assert "7 other failure(s)" in note
    assert "and 2 more" in note
    assert repr(caught.value) not in note


async def test_a_stray_cancellation_propagates_as_itself() -> None:
    # A cancellation exception that escaped its own cancel scope: nobody
    # cancelled async_gather, yet a result is missing, so it must not return.
    cancelled = anyio.get_cancelled_exc_class()
    flight = Flight()

    async def leaks_a_cancellation() -> None:
        caught: BaseException | None = None
        with anyio.CancelScope() as scope:
            scope.cancel()
            try:
                await anyio.sleep(1)
            except cancelled as exc:
                caught = exc
        assert caught is not None
        await flight.wait_started(1)
        raise caught

    with pytest.raises(cancelled):
        await async_gather(flight.job(0, 10), leaks_a_cancellation())
    assert flight.cancelled == [0]


async def test_exceptions_take_their_place_with_return_exceptions() -> None:
    flight = Flight()
    boom = ValueError("boom")

    async def fails() -> None:
        await anyio.lowlevel.checkpoint()
        raise boom

    async def fails_at_once() -> None:
        raise KeyError("k")

    results = await async_gather(
        flight.job(0, 0.01),
        fails(),
        flight.job(2),
        fails_at_once(),
        return_exceptions=True,
    )
    assert results[0] == 0 and results[2] == 2
    assert results[1] is boom
    assert isinstance(results[3], KeyError)
    assert flight.cancelled == []
    assert sorted(flight.finished) == [0, 2]

    lone = await async_gather(fails(), return_exceptions=True)
    assert lone == [boom]


async def test_base_exceptions_are_never_results() -> None:
    flight = Flight()

    async def halts() -> None:
        await flight.wait_started(1)
        raise Halt

    with pytest.raises(Halt):
        await async_gather(flight.job(0, 10), halts(), return_exceptions=True)
    assert flight.cancelled == [0]

    async def halts_alone() -> None:
        raise Halt

    with pytest.raises(Halt):
        await async_gather(halts_alone(), return_exceptions=True)


async def test_a_lone_awaitable_failure_propagates_as_itself() -> None:
    boom = OSError("lone")

    async def fails() -> None:
        await anyio.lowlevel.checkpoint()
        raise boom

    with pytest.raises(OSError, match="lone") as caught:
        await async_gather(fails())
    assert caught.value is boom


async def test_nested_gathers_cancel_every_level() -> None:
    flight = Flight()

    async def fails_deep_down() -> None:
        await flight.wait_started(4)
        raise ValueError("deep")

    async def level(n: int) -> list[Any]:
        return await async_gather(flight.job(n, 10), flight.job(n + 1, 10))

    with pytest.raises(ValueError, match="deep"):
        await async_gather(level(0), level(2), async_gather(fails_deep_down()))
    assert sorted(flight.cancelled) == [0, 1, 2, 3]
    assert flight.now == 0


# -- cancellation from outside --------------------------------------------------


async def test_cancelling_the_caller_cancels_every_awaitable() -> None:
    flight = Flight()
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:

            async def cancel_when_running() -> None:
                await flight.wait_started(5)
                scope.cancel()

            tg.start_soon(cancel_when_running)
            await async_gather(*(flight.job(n, 10) for n in range(5)))
    assert scope.cancelled_caught
    assert sorted(flight.cancelled) == list(range(5))
    assert flight.now == 0


async def test_a_timeout_around_it_cancels_every_awaitable() -> None:
    flight = Flight()
    with anyio.move_on_after(0.05) as scope:
        await async_gather(*(flight.job(n, 10) for n in range(3)), limit=2)
    assert scope.cancelled_caught
    assert sorted(flight.cancelled) == [0, 1]
    assert sorted(flight.started) == [0, 1]


async def test_cancelling_a_lone_awaitable() -> None:
    flight = Flight()
    with anyio.move_on_after(0.01):
        await async_gather(flight.job(0, 10))
    assert flight.cancelled == [0]


# -- limit ----------------------------------------------------------------------


async def gather_gated(count: int, limit: int) -> tuple[list[int], Flight]:
    """Gather ``count`` jobs that finish one by one, in order, when released.

    Before releasing job k, check that exactly as many jobs as the limit
    allows are in flight: never more, and no fewer (the pool keeps up).
    """
    flight = Flight()
    gates = [anyio.Event() for _ in range(count)]

    async def release_in_order() -> None:
        for k in range(count):
            # Once the jobs released so far are done, the pool refills.
            await wait_until(
                lambda k=k: (
                    len(flight.finished) == k
                    and len(flight.started) == min(k + limit, count)
                )
            )
            assert flight.now == min(limit, count - k)
            gates[k].set()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(release_in_order)
            results = await async_gather(
                *(flight.job(n, gate=gates[n]) for n in range(count)), limit=limit
            )
    return results, flight


@pytest.mark.parametrize("limit", [1, 3, 7])
async def test_limit_caps_the_awaitables_in_flight(limit: int) -> None:
    results, flight = await gather_gated(20, limit)
    assert results == list(range(20))
    assert flight.peak == limit
    # They are claimed in argument order: the first `limit` at once (their
    # tasks start in the order the backend picks, which trio varies), then
    # one by one as earlier ones finish.
    assert sorted(flight.started[:limit]) == list(range(limit))
    assert flight.started[limit:] == list(range(limit, 20))


async def test_limit_larger_than_the_number_of_awaitables() -> None:
    results, flight = await gather_gated(4, 100)
    assert results == [0, 1, 2, 3]
    assert flight.peak == 4


async def test_limit_with_awaitables_that_never_wait() -> None:
    async def instant(n: int) -> int:
        return n

    assert await async_gather(*(instant(n) for n in range(50)), limit=2) == list(
        range(50)
    )


# -- bad input --------------------------------------------------------------------


async def test_no_awaitable_is_an_error() -> None:
    with pytest.raises(
        ValidationError, match="At least one awaitable must be provided"
    ):
        await async_gather()


async def test_validation_error_is_a_value_error_and_a_concurrency_error() -> None:
    with pytest.raises(ValueError, match="At least one"):
        await async_gather()
    with pytest.raises(ConcurrencyError, match="At least one"):
        await async_gather()


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2", math.inf])
async def test_bad_limit(bad: Any) -> None:
    flight = Flight()
    jobs = [flight.job(0), flight.job(1)]
    with pytest.raises(ValidationError, match=r"limit must be None or an integer >= 1"):
        await async_gather(*jobs, limit=bad)
    assert closed(*jobs)  # no "never awaited" warning
    assert flight.started == []


async def test_an_argument_that_is_not_awaitable() -> None:
    flight = Flight()
    with pytest.raises(
        ValidationError, match=r"argument 1 is not awaitable: 42 \(int\)"
    ):
        await async_gather(job := flight.job(0), 42)  # type: ignore[call-overload]
    assert closed(job)
    assert flight.started == []


async def test_a_plain_generator_is_not_awaitable() -> None:
    def gen() -> Generator[int, None, None]:
        yield 1

    with pytest.raises(ValidationError, match="argument 0 is not awaitable"):
        await async_gather(gen())  # type: ignore[call-overload]


async def test_the_same_awaitable_twice() -> None:
    flight = Flight()
    job: Awaitable[int] = flight.job(0)
    with pytest.raises(ValidationError, match="same awaitable as arguments 0 and 2"):
        await async_gather(job, other := flight.job(1), job)
    assert closed(job, other)
    assert flight.started == []
