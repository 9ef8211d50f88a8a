"""async_map: awaited and iterated, limit, order, failures, early exit, validation."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import aclosing
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from cc.core_helpers import AsyncMap, ValidationError, async_map

pytestmark = pytest.mark.anyio

# A call that must still be running when the test cancels it sleeps forever:
# no delay, however long, is safe on a loaded machine. Deadlines below are
# hang guards only, far above what any run needs (and below pytest's timeout).
FOREVER = math.inf
HANG_GUARD = 30.0


class Calls:
    """An async function to map that records what happens to every call.

    A call first waits until its ``wait_until`` condition (if any) holds,
    then sleeps for its delay (1 ms by default) or, when ``gates`` are given,
    until its gate is set.
    """

    def __init__(
        self,
        delays: dict[int, float] | None = None,
        gates: list[anyio.Event] | None = None,
    ) -> None:
        self.delays = delays or {}
        self.gates = gates
        self.now = 0
        self.peak = 0
        self.started: list[int] = []
        self.finished: list[int] = []
        self.cancelled: list[int] = []
        self.fail_on: dict[int, BaseException] = {}
        self.wait_until: dict[int, Callable[[], bool]] = {}

    async def __call__(self, n: int) -> int:
        self.started.append(n)
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            if n in self.wait_until:
                await wait_until(self.wait_until[n])
            if self.gates is None:
                await anyio.sleep(self.delays.get(n, 0.001))
            else:
                await self.gates[n].wait()
            if n in self.fail_on:
                raise self.fail_on[n]
        except anyio.get_cancelled_exc_class():
            self.cancelled.append(n)
            raise
        finally:
            self.now -= 1
        self.finished.append(n)
        return n * 10


async def wait_until(predicate: Callable[[], bool]) -> None:
    with anyio.fail_after(HANG_GUARD):
        while not predicate():
            await anyio.lowlevel.checkpoint()


async def cancel_once(scope: anyio.CancelScope, predicate: Callable[[], bool]) -> None:
    await wait_until(predicate)
    scope.cancel()


class Source:
    """A sync iterable that counts how many items were taken from it."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.taken = 0

    def __iter__(self) -> Iterator[int]:
        for n in range(self.count):
            self.taken += 1
            yield n


async def arange(count: int, *, wait: bool = False) -> AsyncIterator[int]:
    for n in range(count):
        if wait:
            await anyio.lowlevel.checkpoint()
        yield n


# -- awaited --------------------------------------------------------------------


class Reversed:
    """Within each group of ``size`` items, the later ones finish first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.done: dict[int, anyio.Event] = {}
        self.finished: list[int] = []

    def _event(self, n: int) -> anyio.Event:
        return self.done.setdefault(n, anyio.Event())

    async def __call__(self, n: int) -> str:
        if (n + 1) % self.size:
            await self._event(n + 1).wait()
        self.finished.append(n)
        self._event(n).set()
        return f"r{n}"


async def test_awaited_results_are_in_input_order() -> None:
    func = Reversed(6)
    assert await async_map(func, range(6), limit=6) == [f"r{n}" for n in range(6)]
    assert func.finished == [5, 4, 3, 2, 1, 0]


@pytest.mark.parametrize("limit", [1, 2, 5])
async def test_awaited_limit_caps_the_calls_in_flight(limit: int) -> None:
    count = 15
    gates = [anyio.Event() for _ in range(count)]
    calls = Calls(gates=gates)

    async def release_in_order() -> None:
        # Before releasing call k, exactly `limit` calls (or all that are
        # left) are in flight: never more, and the pool keeps up.
        for k in range(count):
            with anyio.fail_after(HANG_GUARD):
                while not (
                    len(calls.finished) == k
                    and len(calls.started) == min(k + limit, count)
                ):
                    await anyio.lowlevel.checkpoint()
            assert calls.now == min(limit, count - k)
            gates[k].set()

    with anyio.fail_after(HANG_GUARD):
        async with anyio.create_task_group() as tg:
            tg.start_soon(release_in_order)
            results = await async_map(calls, range(count), limit=limit)
    assert results == [n * 10 for n in range(count)]
    assert calls.peak == limit
    # Claimed in input order: the first `limit` at once (the backend picks
    # which task starts first), then one by one as earlier ones finish.
    assert sorted(calls.started[:limit]) == list(range(limit))
    assert calls.started[limit:] == list(range(limit, count))


async def test_awaited_keeps_limit_calls_in_flight_all_the_time() -> None:
    # One slow call does not hold the others back when awaited: call 0 can
    # only finish once the 19 others have, through the two other slots.
    finished: list[int] = []
    others_done = anyio.Event()

    async def call(n: int) -> int:
        if n == 0:
            await others_done.wait()
        else:
            await anyio.lowlevel.checkpoint()
        finished.append(n)
        if len(finished) == 19:
            others_done.set()
        return n

    with anyio.fail_after(HANG_GUARD):
        assert await async_map(call, range(20), limit=3) == list(range(20))
    assert finished[-1] == 0


async def test_async_iterable_source() -> None:
    calls = Calls(dict.fromkeys(range(5), 0.01))
    assert await async_map(calls, arange(5, wait=True), limit=2) == [
        0,
        10,
        20,
        30,
        40,
    ]
    assert calls.peak == 2


async def test_functions_that_never_wait() -> None:
    async def double(n: int) -> int:
        return n * 2

    assert await async_map(double, range(100), limit=4) == [n * 2 for n in range(100)]
    assert [r async for r in async_map(double, arange(10), limit=3)] == list(
        range(0, 20, 2)
    )


async def test_empty_input() -> None:
    calls = Calls()
    assert await async_map(calls, [], limit=3) == []
    assert [r async for r in async_map(calls, arange(0), limit=3)] == []
    assert calls.started == []


async def test_a_lazy_endless_source_with_async_for() -> None:
    def naturals() -> Iterator[int]:
        n = 0
        while True:
            yield n
            n += 1

    calls = Calls()
    seen = []
    async for result in async_map(calls, naturals(), limit=4):
        seen.append(result)
        if len(seen) == 10:
            break
    assert seen == [n * 10 for n in range(10)]
    assert len(calls.started) <= 12  # pulled in windows of 4, never ahead


# -- iterated -------------------------------------------------------------------


async def test_iterated_results_are_in_input_order() -> None:
    func = Reversed(3)
    results = [r async for r in async_map(func, range(9), limit=3)]
    assert results == [f"r{n}" for n in range(9)]
    assert func.finished == [2, 1, 0, 5, 4, 3, 8, 7, 6]


@pytest.mark.parametrize("limit", [1, 3, 4])
async def test_iteration_holds_at_most_limit_results(limit: int) -> None:
    source = Source(11)
    calls = Calls(dict.fromkeys(range(11), 0.01))
    consumed = 0
    async for _ in async_map(calls, source, limit=limit):
        consumed += 1
        # Nothing runs while the loop body runs...
        assert calls.now == 0
        # ...and at most `limit` items were taken beyond what was consumed.
        assert source.taken - consumed < limit
        assert len(calls.started) - consumed < limit
    assert consumed == 11
    assert calls.peak == limit


async def test_breaking_out_early_leaves_nothing_running() -> None:
    before = len(anyio.get_running_tasks())
    source = Source(100)
    calls = Calls()
    async for result in async_map(calls, source, limit=5):
        if result == 20:
            break
    # No cancel scope or task is left behind: the rest of this test (and
    # the backend's own checks at the end of it) would fail otherwise.
    assert len(anyio.get_running_tasks()) == before
    assert calls.now == 0
    assert calls.cancelled == []
    assert source.taken == 5
    with anyio.fail_after(HANG_GUARD):
        await anyio.sleep(0.001)


async def test_raising_in_the_loop_body_leaves_nothing_running() -> None:
    calls = Calls()

    async def consume() -> None:
        async for result in async_map(calls, range(10), limit=3):
            if result == 10:
                raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        await consume()
    assert calls.now == 0
    assert calls.cancelled == []


async def test_aclose_ends_the_iteration() -> None:
    calls = Calls()
    results = async_map(calls, range(10), limit=3)
    iterator = aiter(results)
    assert await anext(iterator) == 0
    await results.aclose()
    await results.aclose()  # harmless
    with pytest.raises(StopAsyncIteration):
        await anext(iterator)
    assert sorted(calls.started) == [0, 1, 2]


async def test_async_with_and_aclosing() -> None:
    async with async_map(Calls(), range(10), limit=2) as results:
        first = [await anext(results), await anext(results), await anext(results)]
    assert first == [0, 10, 20]
    with pytest.raises(StopAsyncIteration):
        await anext(results)

    async with aclosing(async_map(Calls(), range(10), limit=2)) as results:
        async for result in results:
            if result == 30:
                break
    assert [r async for r in results] == []


async def test_next_without_aiter() -> None:
    results = async_map(Calls(), range(2), limit=2)
    assert await results.__anext__() == 0
    assert await results.__anext__() == 10
    with pytest.raises(StopAsyncIteration):
        await results.__anext__()


# -- failures -------------------------------------------------------------------


async def test_awaited_failure_cancels_calls_in_flight_and_propagates_as_itself() -> (
    None
):
    calls = Calls({n: FOREVER for n in range(5)} | {2: 0})
    boom = ValueError("boom")
    calls.fail_on[2] = boom
    calls.wait_until[2] = lambda: len(calls.started) == 5
    with pytest.raises(ValueError, match="boom") as caught:
        await async_map(calls, range(50), limit=5)
    assert caught.value is boom
    assert sorted(calls.cancelled) == [0, 1, 3, 4]
    assert calls.now == 0
    assert sorted(calls.started) == [0, 1, 2, 3, 4]  # nothing new started after it


async def test_iterated_failure_cancels_the_window_and_ends_the_iteration() -> None:
    calls = Calls({4: FOREVER, 5: 0})
    calls.fail_on[5] = KeyError("five")
    calls.wait_until[5] = lambda: 3 in calls.finished
    results = async_map(calls, range(20), limit=3)
    seen = []

    async def consume() -> None:
        async for result in results:
            seen.append(result)

    with pytest.raises(KeyError, match="five"):
        await consume()
    assert seen == [0, 10, 20]
    assert calls.cancelled == [4]
    assert calls.now == 0
    with pytest.raises(StopAsyncIteration):
        await anext(results)


async def test_exceptions_take_their_place_with_return_exceptions() -> None:
    calls = Calls()
    boom = ValueError("boom")
    calls.fail_on[1] = boom
    assert await async_map(calls, range(4), limit=2, return_exceptions=True) == [
        0,
        boom,
        20,
        30,
    ]
    iterated = [
        r async for r in async_map(calls, range(3), limit=2, return_exceptions=True)
    ]
    assert iterated == [0, boom, 20]
    assert calls.cancelled == []


async def test_a_sync_function_is_an_error_even_with_return_exceptions() -> None:
    def not_async(n: int) -> int:
        return n

    with pytest.raises(
        ValidationError, match=r"func must return an awaitable.*1 \(int\)"
    ):
        await async_map(not_async, [1], limit=2, return_exceptions=True)  # type: ignore[arg-type]


async def test_a_function_that_raises_before_returning_a_coroutine() -> None:
    def raises(n: int) -> Any:
        raise ArithmeticError(n)

    results = await async_map(raises, [1, 2], limit=2, return_exceptions=True)
    assert [type(r) for r in results] == [ArithmeticError, ArithmeticError]


async def test_a_failing_source_propagates_even_with_return_exceptions() -> None:
    def broken() -> Iterator[int]:
        yield 0
        raise OSError("source broke")

    async def abroken() -> AsyncIterator[int]:
        yield 0
        raise OSError("async source broke")

    calls = Calls()
    with pytest.raises(OSError, match="source broke"):
        await async_map(calls, broken(), limit=2, return_exceptions=True)
    with pytest.raises(OSError, match="async source broke"):
        await async_map(calls, abroken(), limit=2, return_exceptions=True)


async def test_cancelling_the_caller_cancels_the_calls() -> None:
    calls = Calls(dict.fromkeys(range(10), FOREVER))
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(cancel_once, scope, lambda: len(calls.started) == 4)
            await async_map(calls, arange(10), limit=4)
    assert scope.cancelled_caught
    assert sorted(calls.cancelled) == [0, 1, 2, 3]
    assert calls.now == 0


async def test_cancelled_iteration_is_over() -> None:
    calls = Calls(dict.fromkeys(range(10), FOREVER))
    results = async_map(calls, range(10), limit=2)
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(cancel_once, scope, lambda: len(calls.started) == 2)
            await anext(aiter(results))
    assert sorted(calls.cancelled) == [0, 1]
    with pytest.raises(StopAsyncIteration):
        await anext(results)


# -- single use -----------------------------------------------------------------


async def test_it_can_be_consumed_only_once() -> None:
    results = async_map(Calls(), range(2), limit=2)
    assert await results == [0, 10]
    with pytest.raises(RuntimeError, match="only once; it is already awaited"):
        await results
    with pytest.raises(RuntimeError, match="has been awaited"):
        aiter(results)
    with pytest.raises(RuntimeError, match="has been awaited"):
        await results.__anext__()

    iterated = async_map(Calls(), range(2), limit=2)
    assert await anext(aiter(iterated)) == 0
    with pytest.raises(RuntimeError, match="only once; it is already iterating"):
        await iterated


async def test_iterating_from_two_tasks_at_once_is_an_error() -> None:
    gates = [anyio.Event() for _ in range(4)]
    calls = Calls(gates=gates)
    results = async_map(calls, range(4), limit=2)
    errors: list[str] = []
    for gate in gates[1:]:
        gate.set()

    async def second_consumer() -> None:
        # The first window runs (its call 0 waits for gates[0]) meanwhile.
        await wait_until(lambda: calls.started != [])
        for attempt in (results.__anext__(), results.aclose()):
            try:
                await attempt
            except RuntimeError as exc:
                errors.append(str(exc))
        gates[0].set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(second_consumer)
        assert await anext(aiter(results)) == 0
    assert errors == [
        "async_map: __anext__ is already running in another task",
        "async_map: cannot close it while __anext__ is running",
    ]


async def test_repr() -> None:
    async def fetch(n: int) -> int:
        return n

    results = async_map(fetch, range(2), limit=2)
    assert repr(results) == "<AsyncMap test_repr.<locals>.fetch limit=2 not started>"
    assert isinstance(results, AsyncMap)
    await results


# -- bad input ------------------------------------------------------------------


@pytest.mark.parametrize("limit", [0, -1, None, 1.5, True, "3", math.inf])
async def test_bad_limit(limit: Any) -> None:
    with pytest.raises(ValidationError, match=r"limit must be an integer >= 1, got"):
        async_map(Calls(), range(3), limit=limit)


async def test_func_must_be_callable() -> None:
    with pytest.raises(ValidationError, match=r"func must be callable.*'nope' \(str\)"):
        async_map("nope", range(3), limit=1)  # type: ignore[call-overload]


async def test_iterable_must_be_iterable() -> None:
    with pytest.raises(
        ValidationError, match=r"iterable must be an iterable or an async"
    ):
        async_map(Calls(), 42, limit=1)  # type: ignore[call-overload]
