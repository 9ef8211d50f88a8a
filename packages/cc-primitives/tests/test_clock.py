"""The cheap clock RateLimiter reads: always the running event loop's time."""

from __future__ import annotations

import sys

import anyio
import pytest
import trio.testing

import cc.primitives._clock
from cc.primitives._clock import current_time

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
    monkeypatch.setitem(sys.modules, "trio", None)  # as if trio were unknown
    monkeypatch.delattr(cc.primitives._clock._per_thread, "clock", raising=False)
    assert cc.primitives._clock._find_clock() is anyio.current_time
    monkeypatch.undo()
    before = anyio.current_time()
    assert before <= current_time() <= anyio.current_time()
