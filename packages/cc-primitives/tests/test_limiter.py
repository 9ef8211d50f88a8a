from __future__ import annotations

import math
import re

import anyio
import pytest
from anyio.lowlevel import checkpoint

from cc.primitives import CapacityLimiter, current_task_key, task_name

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("bad", [0, -1, 0.5, 0.999, -math.inf, -(10**400)])
def test_total_tokens_below_one_is_a_value_error_before_any_type_error(
    bad: float,
) -> None:
    with pytest.raises(ValueError, match="total_tokens must be >= 1, got"):
        CapacityLimiter(bad)
    limiter = CapacityLimiter(2)
    with pytest.raises(ValueError, match="total_tokens must be >= 1"):
        limiter.total_tokens = bad
    assert limiter.total_tokens == 2


def test_a_huge_int_capacity_is_valid_and_an_error_shows_it_briefly() -> None:
    assert CapacityLimiter(10**400).total_tokens == 10**400
    with pytest.raises(ValueError, match=r"a negative int of about 401 digits$"):
        CapacityLimiter(-(10**400))


@pytest.mark.parametrize("bad", [2.5, 2.0, 1.5, "3", None, True, math.nan])
def test_total_tokens_wrong_type_rejected(bad: object) -> None:
    with pytest.raises(TypeError, match=r"total_tokens must be an int or math\.inf"):
        CapacityLimiter(bad)  # type: ignore[arg-type]


async def test_borrow_and_return() -> None:
    limiter = CapacityLimiter(2)
    async with limiter:
        assert limiter.borrowed_tokens == 1
        assert limiter.available_tokens == 1
    assert limiter.borrowed_tokens == 0
    assert limiter.available_tokens == 2


async def test_infinite_capacity() -> None:
    limiter = CapacityLimiter(math.inf)
    async with limiter:
        assert limiter.available_tokens == math.inf


async def test_borrowing_twice_is_an_error() -> None:
    limiter = CapacityLimiter(5)
    async with limiter:
        with pytest.raises(RuntimeError, match="is already holding one"):
            await limiter.acquire()
        with pytest.raises(RuntimeError, match="is already holding one"):
            limiter.acquire_nowait()
    assert limiter.borrowed_tokens == 0


async def test_release_without_token_is_an_error() -> None:
    limiter = CapacityLimiter(1)
    with pytest.raises(RuntimeError, match="isn't holding any"):
        limiter.release()
    with pytest.raises(RuntimeError, match=r"this borrower \('job-7'\) isn't holding"):
        limiter.release_on_behalf_of("job-7")


async def test_exit_after_an_inner_release_raises_and_leaves_the_new_holder_alone() -> (
    None
):
    """#12: the token released inside the block went to B; the exit must not
    take B's token (there is none of A's left to give back)."""
    limiter = CapacityLimiter(1)
    b_inside = anyio.Event()
    b_may_leave = anyio.Event()

    async def b() -> None:
        async with limiter:
            b_inside.set()
            await b_may_leave.wait()

    async with anyio.create_task_group() as tg:
        me = re.escape(repr(task_name(current_task_key())))
        with pytest.raises(RuntimeError, match=f"^this borrower \\({me}\\) isn't"):
            async with limiter:
                tg.start_soon(b, name="B")
                await anyio.wait_all_tasks_blocked()
                limiter.release()  # hands the token to B
                await b_inside.wait()
        assert limiter.statistics().borrower_names == ("B",)
        assert limiter.borrowed_tokens == 1
        b_may_leave.set()
    assert limiter.borrowed_tokens == 0


async def test_acquire_on_behalf_of() -> None:
    limiter = CapacityLimiter(2)
    await limiter.acquire_on_behalf_of("a")
    limiter.acquire_on_behalf_of_nowait("b")
    with pytest.raises(anyio.WouldBlock):
        limiter.acquire_on_behalf_of_nowait("c")
    assert sorted(limiter.statistics().borrowers) == ["a", "b"]  # type: ignore[type-var]
    assert sorted(limiter.statistics().borrower_names) == ["a", "b"]
    limiter.release_on_behalf_of("a")
    limiter.release_on_behalf_of("b")
    assert limiter.borrowed_tokens == 0


async def test_waiters_fifo() -> None:
    limiter = CapacityLimiter(1)
    order: list[int] = []

    async def worker(n: int) -> None:
        async with limiter:
            order.append(n)
            await checkpoint()

    async with anyio.create_task_group() as tg:
        await limiter.acquire()
        for n in range(6):
            tg.start_soon(worker, n)
            await anyio.wait_all_tasks_blocked()
        assert limiter.statistics().tasks_waiting == 6
        limiter.release()
    assert order == list(range(6))


async def test_raising_total_tokens_wakes_waiters() -> None:
    limiter = CapacityLimiter(1)
    running = 0
    peak = 0
    release = anyio.Event()

    async def worker() -> None:
        nonlocal running, peak
        async with limiter:
            running += 1
            peak = max(peak, running)
            await release.wait()
            running -= 1

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(worker)
        await anyio.wait_all_tasks_blocked()
        assert running == 1
        limiter.total_tokens = 3
        await anyio.wait_all_tasks_blocked()
        assert running == 3
        with pytest.raises(ValueError, match="total_tokens must be >= 1"):
            limiter.total_tokens = 0
        assert limiter.total_tokens == 3
        release.set()
    assert peak == 3
    assert limiter.borrowed_tokens == 0


async def test_lowering_total_tokens_does_not_evict() -> None:
    limiter = CapacityLimiter(2)
    await limiter.acquire_on_behalf_of("a")
    await limiter.acquire_on_behalf_of("b")
    limiter.total_tokens = 1
    assert limiter.available_tokens == 0
    limiter.release_on_behalf_of("a")
    assert limiter.available_tokens == 0
    limiter.release_on_behalf_of("b")
    assert limiter.available_tokens == 1


async def test_cancelled_waiter_leaves_no_trace() -> None:
    limiter = CapacityLimiter(1)
    await limiter.acquire_on_behalf_of("holder")
    async with anyio.create_task_group() as tg:
        tg.start_soon(limiter.acquire)
        while limiter.statistics().tasks_waiting != 1:  # parked: counted, not timed
            await checkpoint()
        tg.cancel_scope.cancel()
    assert limiter.statistics().tasks_waiting == 0
    limiter.release_on_behalf_of("holder")
    assert limiter.borrowed_tokens == 0


async def test_token_granted_to_cancelled_waiter_is_passed_on() -> None:
    limiter = CapacityLimiter(1)
    await limiter.acquire_on_behalf_of("holder")
    scope_box: list[anyio.CancelScope] = []

    async def waiter() -> None:
        with anyio.CancelScope() as scope:
            scope_box.append(scope)
            await limiter.acquire_on_behalf_of("waiter")
            limiter.release_on_behalf_of("waiter")

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        limiter.release_on_behalf_of("holder")
        scope_box[0].cancel()
    assert limiter.borrowed_tokens == 0
    assert limiter.statistics().tasks_waiting == 0


async def test_release_wakes_next_waiter() -> None:
    limiter = CapacityLimiter(1)
    done = anyio.Event()

    async def waiter() -> None:
        async with limiter:
            done.set()

    async with anyio.create_task_group() as tg:
        await limiter.acquire()
        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        limiter.release()
        await done.wait()


def test_repr() -> None:
    assert repr(CapacityLimiter(3)) == "<CapacityLimiter borrowed=0/3 waiting=0>"


async def test_unhashable_borrower_is_named() -> None:
    limiter = CapacityLimiter(1)
    with pytest.raises(TypeError, match="borrower must be hashable"):
        await limiter.acquire_on_behalf_of([])
    with pytest.raises(TypeError, match="borrower must be hashable"):
        limiter.acquire_on_behalf_of_nowait({})
    with pytest.raises(TypeError, match="borrower must be hashable"):
        limiter.release_on_behalf_of([])
    assert limiter.borrowed_tokens == 0
