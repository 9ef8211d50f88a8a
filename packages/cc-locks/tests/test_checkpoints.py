"""cc's checkpoint rule in the task manager: no loop of calls starves the loop.

A loop of awaitable manager operations that never have to wait must let
other tasks run, and end at a cancellation or a deadline, within two
checkpoints: at most ``2 * CHECKPOINT_INTERVAL`` calls.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

from cc.locks import AsyncLockManager, get_async_lock_manager
from cc.primitives.lowlevel import CHECKPOINT_INTERVAL

pytestmark = pytest.mark.anyio
BOUND = 2 * CHECKPOINT_INTERVAL


async def _enter_context(manager: AsyncLockManager) -> None:
    async with manager.acquire("a", "b"):
        pass


async def _enter_lock(manager: AsyncLockManager) -> None:
    async with await manager.get_lock("a"):
        pass


async def _acquire_lock(manager: AsyncLockManager) -> None:
    lock = await manager.get_lock("a")
    await lock.acquire()
    await lock.arelease()


async def _open(manager: AsyncLockManager) -> None:
    async with manager:
        pass


OPERATIONS: dict[str, Callable[[AsyncLockManager], Awaitable[Any]]] = {
    "async with acquire()": _enter_context,
    "async with managed lock": _enter_lock,
    "managed lock acquire()": _acquire_lock,
    "register_lock": lambda m: m.register_lock(f"r{len(m.statistics())}", None),
    "register_locks": lambda m: m.register_locks({f"r{len(m.statistics())}": None}),
    "get_lock": lambda m: m.get_lock("a"),
    "get_lock_info": lambda m: m.get_lock_info("a"),
    "reset": lambda m: m.reset(),
    "get_lock_status": lambda m: m.get_lock_status(),
    "detect_potential_deadlocks": lambda m: m.detect_potential_deadlocks(),
    "async with manager": _open,
    "get_async_lock_manager": lambda m: get_async_lock_manager(),
}


@pytest.mark.parametrize("name", OPERATIONS)
async def test_a_loop_of_calls_lets_another_task_run(name: str) -> None:
    manager = AsyncLockManager({"a": 1, "b": 2})
    operation = OPERATIONS[name]
    ran: list[bool] = []

    async def other() -> None:
        ran.append(True)

    calls = 0
    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
        while not ran:
            await operation(manager)
            calls += 1
            assert calls <= BOUND, f"{name}: the other task never ran"
    assert calls >= 1


@pytest.mark.parametrize("name", OPERATIONS)
async def test_a_loop_of_calls_ends_at_its_deadline(name: str) -> None:
    manager = AsyncLockManager({"a": 1, "b": 2})
    operation = OPERATIONS[name]
    calls = 0
    with anyio.CancelScope() as scope:
        scope.cancel()  # a deadline that has passed
        while calls <= BOUND:
            await operation(manager)
            calls += 1
    assert scope.cancelled_caught, f"{name}: ran {calls} calls past its deadline"
    assert manager.held_locks() == []
    assert not any(s["is_locked"] for s in (await manager.get_lock_status()).values())
