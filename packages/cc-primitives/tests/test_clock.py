"""The cheap clock and events: always the running event loop's, as anyio's."""

from __future__ import annotations

import sys

import anyio
import pytest
import trio.testing

import cc.primitives._backend
from cc.primitives._backend import current_time, new_event

pytestmark = pytest.mark.anyio


async def test_it_reads_what_anyio_reads() -> None:
    before = anyio.current_time()
    now = current_time()
    after = anyio.current_time()
    assert before <= now <= after


def test_each_run_in_a_thread_gets_its_own_loop_s_clock() -> None:
    """asyncio, then trio on a virtual clock, then asyncio again, in one
    thread: a clock left from the previous run is noticed and replaced."""

    async def read() -> tuple[float, float]:
        return current_time(), anyio.current_time()

    def check(now: float, anyio_now: float) -> None:
        assert abs(now - anyio_now) < 1.0

    check(*anyio.run(read))
    virtual = trio.testing.MockClock()
    virtual.jump(1000.0)
    now, anyio_now = anyio.run(read, backend="trio", backend_options={"clock": virtual})
    assert now == anyio_now == 1000.0  # the run's own (virtual) clock, exactly
    check(*anyio.run(read, backend_options={"use_uvloop": True}))
    check(*anyio.run(read))


def test_outside_an_event_loop_it_raises() -> None:
    with pytest.raises(RuntimeError):
        current_time()


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_a_backend_it_does_not_know_is_asked_through_anyio(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    per_thread = cc.primitives._backend._per_thread
    monkeypatch.setitem(sys.modules, "trio", None)  # as if trio were unknown
    monkeypatch.setattr(per_thread, "clock", None)  # stale: not callable
    monkeypatch.delattr(per_thread, "event")
    cc.primitives._backend._find_backend()
    assert per_thread.clock is anyio.current_time
    assert per_thread.event is anyio.Event
    monkeypatch.undo()
    before = anyio.current_time()
    assert before <= current_time() <= anyio.current_time()


def test_events_belong_to_the_loop_that_runs_now() -> None:
    """An event made after the thread changed backend is the new backend's."""

    async def make_and_use() -> bool:
        event = new_event()
        assert type(event) is type(anyio.Event())
        async with anyio.create_task_group() as tg:
            tg.start_soon(event.wait)
            await anyio.wait_all_tasks_blocked()
            event.set()
        return event.is_set()

    assert anyio.run(make_and_use)
    assert anyio.run(make_and_use, backend="trio")
    assert anyio.run(make_and_use, backend_options={"use_uvloop": True})
    assert anyio.run(make_and_use)


def test_outside_an_event_loop_no_event_is_made() -> None:
    with pytest.raises(RuntimeError):
        new_event()
