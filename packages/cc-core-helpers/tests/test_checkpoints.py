"""cc's checkpoint rule in the helpers: no loop of helper calls starves the loop.

The rule (written once, in :mod:`cc.primitives.lowlevel` and the primitives
guide): a loop of cc async calls that never have to wait still lets the
other tasks run, and still ends at a cancellation or a passed deadline,
within ``2 * CHECKPOINT_INTERVAL`` calls. One test per public async helper,
with work that finishes without waiting (the case that would never yield),
on asyncio, uvloop and trio.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import pytest

from cc.core_helpers import async_gather, async_map, async_sleep, async_wait_for
from cc.primitives.lowlevel import CHECKPOINT_INTERVAL

pytestmark = pytest.mark.anyio

BOUND = 2 * CHECKPOINT_INTERVAL


async def instant(value: Any = None) -> Any:
    return value


async def nothing() -> AsyncIterator[int]:
    return
    yield  # an async generator that yields nothing


async def iterate(results: Any) -> list[Any]:
    return [result async for result in results]


async def enter_and_exit() -> None:
    async with async_map(instant, [], limit=1):
        pass


ONE_MAP = async_map(instant, [], limit=1)  # closing it again and again


CALLS: list[Any] = [
    pytest.param(lambda: async_wait_for(instant(), 1), id="wait_for"),
    pytest.param(lambda: async_wait_for(instant(), 0), id="wait_for-0"),
    pytest.param(lambda: async_wait_for(instant(), None), id="wait_for-None"),
    pytest.param(lambda: async_sleep(0), id="sleep-0"),
    pytest.param(lambda: async_gather(instant()), id="gather"),
    pytest.param(
        lambda: async_gather(instant(), instant(), limit=1), id="gather-limit"
    ),
    pytest.param(lambda: async_map(instant, [1, 2], limit=1), id="map"),
    pytest.param(lambda: async_map(instant, [], limit=1), id="map-empty"),
    pytest.param(lambda: async_map(instant, nothing(), limit=1), id="map-empty-async"),
    pytest.param(lambda: iterate(async_map(instant, [1], limit=1)), id="map-iterated"),
    pytest.param(
        lambda: iterate(async_map(instant, [], limit=1)), id="map-iterated-empty"
    ),
    pytest.param(enter_and_exit, id="map-async-with"),
    pytest.param(ONE_MAP.aclose, id="map-aclose"),
]
Call = Callable[[], Awaitable[Any]]


async def call_until_another_task_runs(call: Call) -> None:
    """Call ``call`` in a loop until a task started before the loop has run."""
    ran = False
    calls = 0

    async def other() -> None:
        nonlocal ran
        ran = True

    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
        while not ran:
            await call()
            calls += 1
            assert calls <= BOUND, "the other task never ran"


@pytest.mark.parametrize("call", CALLS)
async def test_a_loop_of_calls_lets_other_tasks_run(call: Call) -> None:
    await call_until_another_task_runs(call)


@pytest.mark.parametrize("call", CALLS)
async def test_a_loop_of_calls_ends_at_a_passed_deadline(call: Call) -> None:
    calls = 0
    with anyio.CancelScope(deadline=anyio.current_time()) as scope:
        while calls <= BOUND:
            await call()
            calls += 1
    assert scope.cancelled_caught, f"{calls} calls did not honour the deadline"


@pytest.mark.parametrize("call", CALLS)
async def test_a_loop_of_calls_ends_at_a_cancellation(call: Call) -> None:
    calls = 0
    with anyio.CancelScope() as scope:
        scope.cancel()
        while calls <= BOUND:
            await call()
            calls += 1
    assert scope.cancelled_caught, f"{calls} calls did not honour the cancellation"


async def test_handing_out_a_window_of_results_follows_the_rule() -> None:
    count = 4 * BOUND
    results = async_map(instant, range(count), limit=count)
    seen = [await anext(results)]  # runs the whole window in one step

    async def hand_out_one() -> None:
        seen.append(await anext(results))

    await call_until_another_task_runs(hand_out_one)
    with anyio.CancelScope() as scope:
        scope.cancel()
        for _ in range(BOUND + 1):
            seen.append(await anext(results))
    assert scope.cancelled_caught
    # The cancelled step took nothing: every result is still handed out, once.
    seen += [result async for result in results]
    assert seen == list(range(count))
