"""Property-based tests: tokens and ownership are conserved under random
acquire / release / cancel / timeout sequences, on every backend."""

from __future__ import annotations

from dataclasses import dataclass

import anyio
import pytest
from anyio.lowlevel import checkpoint
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cc.primitives import CapacityLimiter, Lock, Semaphore

pytestmark = pytest.mark.anyio


@dataclass
class Plan:
    """What one task does: wait `delay` checkpoints, try to acquire with a
    deadline of `patience` checkpoints (None: no deadline), hold for `hold`
    checkpoints, possibly re-entering, and maybe get cancelled from outside."""

    delay: int
    patience: int | None
    hold: int
    reentry: int
    cancel_after: int | None


plans = st.lists(
    st.builds(
        Plan,
        delay=st.integers(0, 5),
        patience=st.none() | st.integers(0, 8),
        hold=st.integers(0, 5),
        reentry=st.integers(0, 3),
        cancel_after=st.none() | st.integers(0, 12),
    ),
    min_size=1,
    max_size=12,
)

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


async def _checkpoints(n: int) -> None:
    for _ in range(n):
        await checkpoint()


async def _run_plans(plans: list[Plan], body: object) -> None:
    async def one(plan: Plan) -> None:
        with anyio.CancelScope() as outer:
            if plan.cancel_after is not None:

                async def canceller() -> None:
                    await _checkpoints(plan.cancel_after or 0)
                    outer.cancel()

                async with anyio.create_task_group() as inner:
                    inner.start_soon(canceller)
                    await body(plan)  # type: ignore[operator]
                    inner.cancel_scope.cancel()
            else:
                await body(plan)  # type: ignore[operator]

    # A hang would be a bug (a stranded waiter): fail loudly instead.
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for plan in plans:
                tg.start_soon(one, plan)


class Holding:
    """Whether the task currently holds what it acquired (set the moment
    acquire() returns, so that a cancellation arriving right after cannot
    make the test itself leak the token)."""

    def __init__(self) -> None:
        self.held = False


async def _acquire_with_patience(plan: Plan, acquire: object, holding: Holding) -> None:
    """Run acquire() under the plan's deadline of `patience` checkpoints."""
    if plan.patience is None:
        await acquire()  # type: ignore[operator]
        holding.held = True
        return
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:

            async def deadline() -> None:
                await _checkpoints(plan.patience or 0)
                scope.cancel()

            tg.start_soon(deadline)
            await acquire()  # type: ignore[operator]
            holding.held = True
            tg.cancel_scope.cancel()


@given(plans=plans, capacity=st.integers(1, 4))
@SETTINGS
async def test_semaphore_tokens_conserved(plans: list[Plan], capacity: int) -> None:
    sem = Semaphore(capacity, max_value=capacity)
    holders = 0

    async def body(plan: Plan) -> None:
        nonlocal holders
        holding = Holding()
        try:
            await _checkpoints(plan.delay)
            await _acquire_with_patience(plan, sem.acquire, holding)
            if holding.held:
                holders += 1
                try:
                    assert holders <= capacity
                    await _checkpoints(plan.hold)
                finally:
                    holders -= 1
        finally:
            if holding.held:
                sem.release()

    await _run_plans(plans, body)
    assert sem.value == capacity
    assert sem.statistics().tasks_waiting == 0
    assert holders == 0


@given(plans=plans, capacity=st.integers(1, 4))
@SETTINGS
async def test_capacity_limiter_tokens_conserved(
    plans: list[Plan], capacity: int
) -> None:
    limiter = CapacityLimiter(capacity)

    async def body(plan: Plan) -> None:
        holding = Holding()
        try:
            await _checkpoints(plan.delay)
            await _acquire_with_patience(plan, limiter.acquire, holding)
            if holding.held:
                assert limiter.borrowed_tokens <= capacity
                await _checkpoints(plan.hold)
        finally:
            if holding.held:
                limiter.release()

    await _run_plans(plans, body)
    assert limiter.borrowed_tokens == 0
    assert limiter.statistics().tasks_waiting == 0


@given(plans=plans)
@SETTINGS
async def test_lock_ownership_conserved(plans: list[Plan]) -> None:
    lock = Lock()
    inside = 0

    async def body(plan: Plan) -> None:
        nonlocal inside
        holding = Holding()
        try:
            await _checkpoints(plan.delay)
            await _acquire_with_patience(plan, lock.acquire, holding)
            if holding.held:
                reentered = 0
                try:
                    for _ in range(plan.reentry):
                        # never waits, but may be the rule's checkpoint, where
                        # a cancellation lands
                        await lock.acquire()
                        reentered += 1
                    inside += 1
                    try:
                        assert inside == 1
                        assert lock.statistics().depth == plan.reentry + 1
                        await _checkpoints(plan.hold)
                    finally:
                        inside -= 1
                finally:
                    for _ in range(reentered):
                        lock.release()
        finally:
            if holding.held:
                lock.release()

    await _run_plans(plans, body)
    assert not lock.locked()
    assert lock.statistics().tasks_waiting == 0
