from __future__ import annotations

import anyio
import pytest
from anyio.lowlevel import checkpoint

from cc.primitives import Semaphore, SemaphoreStatistics

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("bad", [-1, -100])
def test_negative_initial_value_rejected(bad: int) -> None:
    with pytest.raises(ValueError, match="initial_value must be >= 0"):
        Semaphore(bad)


@pytest.mark.parametrize("bad", [1.5, "3", None, True])
def test_non_int_initial_value_rejected(bad: object) -> None:
    with pytest.raises(TypeError, match="initial_value must be an integer"):
        Semaphore(bad)  # type: ignore[arg-type]


def test_max_value_below_initial_rejected() -> None:
    with pytest.raises(
        ValueError, match="max_value must be equal to or higher than initial_value"
    ):
        Semaphore(2, max_value=1)
    with pytest.raises(ValueError, match="max_value must be >= 0"):
        Semaphore(0, max_value=-1)


async def test_acquire_release_and_value() -> None:
    sem = Semaphore(2)
    await sem.acquire()
    assert sem.value == 1
    async with sem:
        assert sem.value == 0
        assert sem.locked()
    assert sem.value == 1
    sem.release()
    assert sem.value == 2
    assert sem.max_value is None


async def test_release_past_max_value_raises() -> None:
    sem = Semaphore(1, max_value=1)
    with pytest.raises(ValueError, match="above max_value"):
        sem.release()
    assert sem.value == 1
    async with sem:
        pass
    assert sem.value == 1


async def test_unbounded_release_grows_value() -> None:
    sem = Semaphore(0)
    sem.release()
    sem.release()
    assert sem.value == 2


async def test_waiters_fifo_and_direct_handoff() -> None:
    sem = Semaphore(0)
    order: list[int] = []

    async def worker(n: int) -> None:
        await sem.acquire()
        order.append(n)

    async with anyio.create_task_group() as tg:
        for n in range(5):
            tg.start_soon(worker, n)
            await anyio.wait_all_tasks_blocked()  # parked, in this order
        assert sem.statistics() == SemaphoreStatistics(
            tasks_waiting=5, value=0, max_value=None
        )
        for _ in range(5):
            sem.release()
            # the token went to a waiter, not to the counter
            assert sem.value == 0
            with pytest.raises(anyio.WouldBlock):
                sem.acquire_nowait()
            # let the woken task run before the next release (trio runs
            # simultaneously woken tasks in no particular order)
            await anyio.wait_all_tasks_blocked()
    assert order == [0, 1, 2, 3, 4]


async def test_cancelled_waiter_does_not_take_a_token() -> None:
    sem = Semaphore(1)
    await sem.acquire()
    async with anyio.create_task_group() as tg:
        tg.start_soon(sem.acquire)
        await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    assert sem.statistics().tasks_waiting == 0
    sem.release()
    assert sem.value == 1


async def test_token_handed_to_cancelled_waiter_is_returned() -> None:
    sem = Semaphore(1, max_value=1)
    await sem.acquire()
    scope_box: list[anyio.CancelScope] = []

    async def waiter() -> None:
        with anyio.CancelScope() as scope:
            scope_box.append(scope)
            await sem.acquire()
            sem.release()

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        while sem.statistics().tasks_waiting != 1:  # parked, not just started
            await checkpoint()
        sem.release()  # hands the token to the waiter
        assert sem.value == 0  # handed over, not put back
        scope_box[0].cancel()
    assert sem.value == 1
    assert sem.statistics().tasks_waiting == 0


async def test_acquire_nowait() -> None:
    sem = Semaphore(1)
    sem.acquire_nowait()
    assert sem.value == 0
    with pytest.raises(anyio.WouldBlock):
        sem.acquire_nowait()
    assert sem.value == 0
    sem.release()


async def test_concurrency_bound_holds() -> None:
    sem = Semaphore(3)
    inside = peak = 0

    async def worker() -> None:
        nonlocal inside, peak
        async with sem:
            inside += 1
            peak = max(peak, inside)
            await checkpoint()
            await checkpoint()
            inside -= 1

    async with anyio.create_task_group() as tg:
        for _ in range(30):
            tg.start_soon(worker)
    assert peak == 3
    assert sem.value == 3


def test_repr() -> None:
    assert repr(Semaphore(2, max_value=4)) == "<Semaphore value=2/4 waiting=0>"
