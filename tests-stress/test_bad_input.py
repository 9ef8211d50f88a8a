# The tables below keep one call per line, however long: a row reads as one.
# ruff: noqa: E501
"""Bad input to every public constructor and method: the documented error, named.

One table row per call: wrong types, negative, zero, NaN, infinite, huge and
``None`` values, a sync function where an async one is expected, and a few
misuses (releasing what is not held). Each row names the error the API
documents (``TypeError``, ``ValueError``, ``RuntimeError``, ``KeyError``,
cc's ``ValidationError`` or pydantic's ``ValidationError``) and a word the
message must contain, as a whole word: the argument's name, or what was
misused. A row with no error is a valid extreme (huge, infinite, zero) that
must simply work. Every row runs under a time limit, so nothing may hang:
calls that need no event loop run in a thread that must finish, the others
under ``anyio.fail_after`` on every backend. A bare ``AttributeError``, a
``TypeError`` from deep inside (which names no argument) or an error of
another type fails the row.

A row may carry ``bug="..."``: a known bug, run as ``xfail(strict=True)``
with that reason, so that the fix shows up as a failure to clean up. None is
open now: the rows of the bugs this table found pass since their fixes.

Generated junk (hypothesis) then goes through the numeric and typed
arguments: each is accepted exactly when it is valid, and refused with the
documented error naming the argument otherwise.
"""

from __future__ import annotations

import asyncio
import math
import numbers
import re
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

import anyio
import hypothesis
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cc.core_helpers import (
    ValidationError,
    async_gather,
    async_map,
    async_run,
    async_sleep,
    async_wait_for,
)
from cc.locks import AsyncLockManager, LockManager
from cc.primitives import CapacityLimiter, Condition, Lock, RateLimiter, Semaphore
from cc.queues import BoundedQueue, QueueConfig, QueueStateError, WorkQueue

CASE_LIMIT = 5.0
NAN = math.nan
INF = math.inf
HUGE = 10**100
BEYOND_FLOAT = 10**400  # an int no float can hold: as a duration, forever


@dataclass(frozen=True)
class Case:
    """One call and what it must do."""

    id: str
    call: Callable[[], Any]
    error: type[BaseException] | None
    word: str = ""  # a whole word the message must contain
    bug: str | None = None


def _params(cases: list[Case]) -> list[Any]:
    params = []
    for case in cases:
        marks = [pytest.mark.xfail(strict=True, reason=case.bug)] if case.bug else []
        params.append(pytest.param(case, id=case.id, marks=marks))
    return params


def _check(case: Case, error: BaseException | None, value: Any) -> None:
    if case.error is None:
        assert error is None, f"{case.id}: a valid extreme raised {error!r}"
        return
    assert error is not None, f"{case.id}: nothing raised (returned {value!r})"
    assert type(error) is not AttributeError, f"{case.id}: bare {error!r}"
    assert isinstance(error, case.error), (
        f"{case.id}: raised {type(error).__name__}: {error}, "
        f"documented: {case.error.__name__}"
    )
    word = rf"(?<![\w]){re.escape(case.word)}(?![\w])"
    assert re.search(word, str(error), re.IGNORECASE), (
        f"{case.id}: the message does not name {case.word!r}: {error}"
    )


# -- helpers the rows use ------------------------------------------------------


async def _async_value(value: Any = 1) -> Any:
    await anyio.lowlevel.checkpoint()
    return value


async def _sleeps_until_cancelled(delay: Any) -> None:
    """Sleep ``delay`` (meaning forever): only the cancel scope may end it."""
    with anyio.move_on_after(0.01) as scope:
        await async_sleep(delay)
    assert scope.cancelled_caught, f"async_sleep({delay!r}) returned early"


def _sync_function(*args: Any) -> None:
    return None


async def _async_function(*args: Any) -> None:
    return None


def _coroutine() -> Any:
    return _async_value()


async def _running_queue(action: Callable[[BoundedQueue[int]], Awaitable[Any]]) -> Any:
    async with BoundedQueue[int](maxsize=4) as queue:
        return await action(queue)


async def _running_work_queue(
    action: Callable[[WorkQueue[int]], Awaitable[Any]], **kwargs: Any
) -> Any:
    queue = WorkQueue[int](maxsize=4, concurrency_limit=2, **kwargs)
    async with queue:
        return await action(queue)


async def _sync_worker_is_refused() -> None:
    """Start a sync worker function: its first call stops the work, raised once."""
    async with BoundedQueue[int](maxsize=4) as queue:
        await queue.start_workers(_sync_function, 1)
        await queue.put(1)
        await queue.join()  # cancelled; leaving the block raises the TypeError


async def _lock_release_unlocked() -> None:
    Lock().release()


async def _lock_exit_after_handing_it_on() -> None:
    """Exit a Lock's block after release() handed the lock to a waiter.

    The exit must refuse (naming the new owner) and leave that owner's hold
    alone.
    """
    lock = Lock()
    refused: RuntimeError | None = None
    async with anyio.create_task_group() as tg:
        try:
            async with lock:
                tg.start_soon(lock.acquire)
                await anyio.wait_all_tasks_blocked()
                lock.release()
        except RuntimeError as error:
            refused = error
        assert lock.statistics().depth == 1, "the new owner's hold was touched"
        tg.cancel_scope.cancel()
    if refused is not None:
        raise refused


async def _condition_wait_unlocked() -> None:
    await Condition().wait()


async def _limiter_release_unheld() -> None:
    CapacityLimiter(1).release()


def _wait_for_thread_held_lock(seconds: float) -> None:
    """Wait up to ``seconds`` for a lock a thread holds for 50 ms: must succeed."""
    manager = LockManager({"a": 1})
    held = threading.Event()

    def hold() -> None:
        with manager.acquire("a", timeout=None):
            held.set()
            time.sleep(0.05)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        held.wait(CASE_LIMIT)
        with manager.acquire("a", timeout=seconds):
            pass
    finally:
        holder.join(CASE_LIMIT)


def _thread_manager() -> LockManager:
    return LockManager({"a": 1, "b": 2})


def _acquire_now(manager: LockManager, *names: Any, **kwargs: Any) -> None:
    with manager.acquire(*names, **kwargs):
        pass


async def _async_acquire(*names: Any, **kwargs: Any) -> None:
    manager = AsyncLockManager({"a": 1, "b": 2})
    async with manager.acquire(*names, **kwargs):
        pass


async def _async_acquire_held(seconds: Any) -> None:
    """Wait up to ``seconds`` for a lock another task holds for 50 ms."""
    manager = AsyncLockManager({"a": 1})
    held = anyio.Event()

    async def hold() -> None:
        async with manager.acquire("a"):
            held.set()
            await anyio.sleep(0.05)

    async with anyio.create_task_group() as tg:
        tg.start_soon(hold)
        await held.wait()
        async with manager.acquire("a", timeout=seconds):
            pass


def _config(**fields: Any) -> QueueConfig:
    return QueueConfig(**fields)


# -- the table -------------------------------------------------------------------

SYNC_CASES = [
    # cc.primitives ---------------------------------------------------------
    Case("Semaphore initial_value=-1", lambda: Semaphore(-1), ValueError, "initial_value"),
    Case("Semaphore initial_value=1.5", lambda: Semaphore(1.5), TypeError, "initial_value"),
    Case("Semaphore initial_value=nan", lambda: Semaphore(NAN), TypeError, "initial_value"),
    Case("Semaphore initial_value=inf", lambda: Semaphore(INF), TypeError, "initial_value"),
    Case("Semaphore initial_value=None", lambda: Semaphore(None), TypeError, "initial_value"),
    Case("Semaphore initial_value='2'", lambda: Semaphore("2"), TypeError, "initial_value"),
    Case("Semaphore initial_value=True", lambda: Semaphore(True), TypeError, "initial_value"),
    Case("Semaphore max_value=-1", lambda: Semaphore(0, max_value=-1), ValueError, "max_value"),
    Case("Semaphore max_value<initial", lambda: Semaphore(2, max_value=1), ValueError, "max_value"),
    Case("Semaphore max_value=2.0", lambda: Semaphore(1, max_value=2.0), TypeError, "max_value"),
    Case("Semaphore max_value='3'", lambda: Semaphore(1, max_value="3"), TypeError, "max_value"),
    Case("Semaphore release above max_value", lambda: Semaphore(1, max_value=1).release(), ValueError, "max_value"),
    Case("Semaphore huge initial_value", lambda: Semaphore(HUGE), None),
    Case("Semaphore initial_value=10**400", lambda: Semaphore(BEYOND_FLOAT), None),
    Case("CapacityLimiter total_tokens=0", lambda: CapacityLimiter(0), ValueError, "total_tokens"),
    Case("CapacityLimiter total_tokens=-1", lambda: CapacityLimiter(-1), ValueError, "total_tokens"),
    Case("CapacityLimiter total_tokens=-inf", lambda: CapacityLimiter(-INF), ValueError, "total_tokens"),
    Case("CapacityLimiter total_tokens=0.5", lambda: CapacityLimiter(0.5), ValueError, "total_tokens"),
    Case("CapacityLimiter total_tokens=-10**400", lambda: CapacityLimiter(-BEYOND_FLOAT), ValueError, "total_tokens"),
    Case("CapacityLimiter total_tokens=1.5", lambda: CapacityLimiter(1.5), TypeError, "total_tokens"),
    Case("CapacityLimiter total_tokens=2.0", lambda: CapacityLimiter(2.0), TypeError, "total_tokens"),
    Case("CapacityLimiter total_tokens=nan", lambda: CapacityLimiter(NAN), TypeError, "total_tokens"),
    Case("CapacityLimiter total_tokens=None", lambda: CapacityLimiter(None), TypeError, "total_tokens"),
    Case("CapacityLimiter total_tokens='3'", lambda: CapacityLimiter("3"), TypeError, "total_tokens"),
    Case("CapacityLimiter total_tokens=True", lambda: CapacityLimiter(True), TypeError, "total_tokens"),
    Case("CapacityLimiter set total_tokens=0", lambda: setattr(CapacityLimiter(2), "total_tokens", 0), ValueError, "total_tokens"),
    Case("CapacityLimiter set total_tokens='x'", lambda: setattr(CapacityLimiter(2), "total_tokens", "x"), TypeError, "total_tokens"),
    Case("CapacityLimiter total_tokens=inf", lambda: CapacityLimiter(INF), None),
    Case("CapacityLimiter huge total_tokens", lambda: CapacityLimiter(HUGE), None),
    Case("CapacityLimiter total_tokens=10**400", lambda: CapacityLimiter(BEYOND_FLOAT), None),
    Case("Condition lock='x'", lambda: Condition("x"), TypeError, "lock"),
    Case("Condition lock=asyncio.Lock()", lambda: Condition(asyncio.Lock()), TypeError, "lock"),
    Case("Condition lock=threading.Lock()", lambda: Condition(threading.Lock()), TypeError, "lock"),
    Case("RateLimiter rate=0", lambda: RateLimiter(0), ValueError, "rate"),
    Case("RateLimiter rate=-1", lambda: RateLimiter(-1), ValueError, "rate"),
    Case("RateLimiter rate=nan", lambda: RateLimiter(NAN), ValueError, "rate"),
    Case("RateLimiter rate=inf", lambda: RateLimiter(INF), ValueError, "rate"),
    Case("RateLimiter rate=None", lambda: RateLimiter(None), TypeError, "rate"),
    Case("RateLimiter rate='5'", lambda: RateLimiter("5"), TypeError, "rate"),
    Case("RateLimiter rate=True", lambda: RateLimiter(True), TypeError, "rate"),
    Case("RateLimiter period=0", lambda: RateLimiter(1, 0), ValueError, "period"),
    Case("RateLimiter period=-1", lambda: RateLimiter(1, -1), ValueError, "period"),
    Case("RateLimiter period=nan", lambda: RateLimiter(1, NAN), ValueError, "period"),
    Case("RateLimiter period=inf", lambda: RateLimiter(1, INF), ValueError, "period"),
    Case("RateLimiter period='1'", lambda: RateLimiter(1, "1"), TypeError, "period"),
    Case("RateLimiter rate=10**400", lambda: RateLimiter(BEYOND_FLOAT), ValueError, "rate"),
    Case("RateLimiter period=10**400", lambda: RateLimiter(1, BEYOND_FLOAT), ValueError, "period"),
    Case("RateLimiter huge rate", lambda: RateLimiter(1e300), None),
    # cc.queues ---------------------------------------------------------------
    Case("QueueConfig queue_capacity=0", lambda: _config(queue_capacity=0), pydantic.ValidationError, "queue_capacity"),
    Case("QueueConfig queue_capacity=-1", lambda: _config(queue_capacity=-1), pydantic.ValidationError, "queue_capacity"),
    Case("QueueConfig queue_capacity=None", lambda: _config(queue_capacity=None), pydantic.ValidationError, "queue_capacity"),
    Case("QueueConfig queue_capacity='x'", lambda: _config(queue_capacity="x"), pydantic.ValidationError, "queue_capacity"),
    Case("QueueConfig queue_capacity=True", lambda: _config(queue_capacity=True), pydantic.ValidationError, "queue_capacity"),
    Case("QueueConfig queue_capacity=1.5", lambda: _config(queue_capacity=1.5), pydantic.ValidationError, "queue_capacity"),
    Case("QueueConfig queue_capacity=inf", lambda: _config(queue_capacity=INF), pydantic.ValidationError, "queue_capacity"),
    Case("QueueConfig capacity_refresh_time=0", lambda: _config(capacity_refresh_time=0), pydantic.ValidationError, "capacity_refresh_time"),
    Case("QueueConfig capacity_refresh_time=-1", lambda: _config(capacity_refresh_time=-1), pydantic.ValidationError, "capacity_refresh_time"),
    Case("QueueConfig capacity_refresh_time=nan", lambda: _config(capacity_refresh_time=NAN), pydantic.ValidationError, "capacity_refresh_time"),
    Case("QueueConfig capacity_refresh_time=inf", lambda: _config(capacity_refresh_time=INF), pydantic.ValidationError, "capacity_refresh_time"),
    Case("QueueConfig capacity_refresh_time='x'", lambda: _config(capacity_refresh_time="x"), pydantic.ValidationError, "capacity_refresh_time"),
    Case("QueueConfig capacity_refresh_time=None", lambda: _config(capacity_refresh_time=None), pydantic.ValidationError, "capacity_refresh_time"),
    Case("QueueConfig concurrency_limit=0", lambda: _config(concurrency_limit=0), pydantic.ValidationError, "concurrency_limit"),
    Case("QueueConfig concurrency_limit=True", lambda: _config(concurrency_limit=True), pydantic.ValidationError, "concurrency_limit"),
    Case("QueueConfig concurrency_limit='x'", lambda: _config(concurrency_limit="x"), pydantic.ValidationError, "concurrency_limit"),
    Case("QueueConfig unknown field", lambda: _config(queue_size=10), pydantic.ValidationError, "queue_size"),
    Case("QueueConfig huge queue_capacity", lambda: _config(queue_capacity=HUGE), None),
    Case("BoundedQueue maxsize=0", lambda: BoundedQueue(0), ValueError, "maxsize"),
    Case("BoundedQueue maxsize=-1", lambda: BoundedQueue(-1), ValueError, "maxsize"),
    Case("BoundedQueue maxsize=1.5", lambda: BoundedQueue(1.5), TypeError, "maxsize"),
    Case("BoundedQueue maxsize=inf", lambda: BoundedQueue(INF), TypeError, "maxsize"),
    Case("BoundedQueue maxsize=None", lambda: BoundedQueue(None), TypeError, "maxsize"),
    Case("BoundedQueue maxsize='10'", lambda: BoundedQueue("10"), TypeError, "maxsize"),
    Case("BoundedQueue maxsize=True", lambda: BoundedQueue(True), TypeError, "maxsize"),
    Case("BoundedQueue timeout=-1", lambda: BoundedQueue(1, -1), ValueError, "timeout"),
    Case("BoundedQueue timeout=nan", lambda: BoundedQueue(1, NAN), ValueError, "timeout"),
    Case("BoundedQueue timeout=None", lambda: BoundedQueue(1, None), TypeError, "timeout"),
    Case("BoundedQueue timeout='1'", lambda: BoundedQueue(1, "1"), TypeError, "timeout"),
    Case("BoundedQueue huge maxsize, timeout=inf", lambda: BoundedQueue(HUGE, INF), None),
    Case("BoundedQueue timeout=10**400", lambda: BoundedQueue(1, 10**400), None),
    Case("BoundedQueue timeout=-10**400", lambda: BoundedQueue(1, -(10**400)), ValueError, "timeout"),
    Case("WorkQueue maxsize=0", lambda: WorkQueue(0), ValueError, "maxsize"),
    Case("WorkQueue timeout=-1", lambda: WorkQueue(timeout=-1), ValueError, "timeout"),
    Case("WorkQueue concurrency_limit=0", lambda: WorkQueue(concurrency_limit=0), ValueError, "concurrency_limit"),
    Case("WorkQueue concurrency_limit=-1", lambda: WorkQueue(concurrency_limit=-1), ValueError, "concurrency_limit"),
    Case("WorkQueue concurrency_limit=1.5", lambda: WorkQueue(concurrency_limit=1.5), TypeError, "concurrency_limit"),
    Case("WorkQueue concurrency_limit='2'", lambda: WorkQueue(concurrency_limit="2"), TypeError, "concurrency_limit"),
    Case("WorkQueue concurrency_limit=True", lambda: WorkQueue(concurrency_limit=True), TypeError, "concurrency_limit"),
    Case("WorkQueue rate_limit=0", lambda: WorkQueue(rate_limit=0), ValueError, "rate_limit"),
    Case("WorkQueue rate_limit='5'", lambda: WorkQueue(rate_limit="5"), TypeError, "rate_limit"),
    Case("WorkQueue rate_window=0", lambda: WorkQueue(rate_limit=5, rate_window=0), ValueError, "rate_window"),
    Case("WorkQueue rate_window=-1", lambda: WorkQueue(rate_limit=5, rate_window=-1), ValueError, "rate_window"),
    Case("WorkQueue rate_window=nan", lambda: WorkQueue(rate_limit=5, rate_window=NAN), ValueError, "rate_window"),
    Case("WorkQueue rate_window=inf", lambda: WorkQueue(rate_limit=5, rate_window=INF), ValueError, "rate_window"),
    Case("WorkQueue rate_window='1'", lambda: WorkQueue(rate_limit=5, rate_window="1"), TypeError, "rate_window"),
    Case("WorkQueue logger='x'", lambda: WorkQueue(logger="x"), TypeError, "logger"),
    Case("WorkQueue.from_config(dict)", lambda: WorkQueue.from_config({"queue_capacity": 3}), TypeError, "config"),
    Case("WorkQueue.from_config timeout=-1", lambda: WorkQueue.from_config(QueueConfig(), timeout=-1), ValueError, "timeout"),
    Case("WorkQueue huge limits", lambda: WorkQueue(maxsize=HUGE, concurrency_limit=HUGE, rate_limit=HUGE), None),
    Case("WorkQueue rate_limit=10**400", lambda: WorkQueue(rate_limit=10**400), ValueError, "rate_limit"),
    Case("WorkQueue rate_window=10**400", lambda: WorkQueue(rate_limit=1, rate_window=10**400), ValueError, "rate_window"),
    Case("WorkQueue timeout=10**400", lambda: WorkQueue(timeout=10**400, concurrency_limit=10**400), None),
    Case("WorkQueue.from_config rate_limited='yes'", lambda: WorkQueue.from_config(QueueConfig(), rate_limited="yes"), TypeError, "rate_limited"),
    # cc.locks ------------------------------------------------------------------
    Case("LockManager policy='strict'", lambda: LockManager(policy="strict"), ValueError, "policy"),
    Case("LockManager policy=None", lambda: LockManager(policy=None), ValueError, "policy"),
    Case("LockManager long_hold_threshold=-1", lambda: LockManager(long_hold_threshold=-1), ValueError, "long_hold_threshold"),
    Case("LockManager long_hold_threshold=nan", lambda: LockManager(long_hold_threshold=NAN), ValueError, "long_hold_threshold"),
    Case("LockManager long_hold_threshold='x'", lambda: LockManager(long_hold_threshold="x"), ValueError, "long_hold_threshold"),
    Case("LockManager backend='redis://'", lambda: LockManager(backend="redis://"), TypeError, "backend"),
    Case("LockManager hierarchy=5", lambda: LockManager(5), TypeError, "hierarchy"),
    Case("LockManager hierarchy='ab'", lambda: LockManager("ab"), TypeError, "hierarchy"),
    Case("LockManager order='x'", lambda: LockManager({"a": "x"}), TypeError, "order"),
    Case("LockManager order=1.5", lambda: LockManager({"a": 1.5}), TypeError, "order"),
    Case("LockManager order=True", lambda: LockManager({"a": True}), TypeError, "order"),
    Case("LockManager order=nan", lambda: LockManager([("a", NAN)]), TypeError, "order"),
    Case("LockManager name=''", lambda: LockManager({"": 1}), ValueError, "name"),
    Case("LockManager name=5", lambda: LockManager({5: 1}), TypeError, "name"),
    Case("LockManager duplicate order", lambda: LockManager({"a": 1, "b": 1}), ValueError, "order"),
    Case("LockManager description=5", lambda: LockManager([("a", 1, 5)]), TypeError, "description"),
    Case("LockManager entry=('a',)", lambda: LockManager([("a",)]), TypeError, "lock"),
    Case("LockManager huge order", lambda: LockManager({"a": HUGE}), None),
    Case("register_lock name=None", lambda: LockManager().register_lock(None, 1), TypeError, "name"),
    Case("register_lock order='1'", lambda: LockManager().register_lock("a", "1"), TypeError, "order"),
    Case("register_lock lock='x'", lambda: LockManager().register_lock("a", 1, lock="x"), TypeError, "lock"),
    Case("register_lock twice", lambda: _thread_manager().register_lock("a", 9), ValueError, "already"),
    Case("acquire() without names", lambda: _thread_manager().acquire(), ValueError, "name"),
    Case("acquire unknown name", lambda: _thread_manager().acquire("nope"), KeyError, "nope"),
    Case("acquire timeout=-1", lambda: _acquire_now(_thread_manager(), "a", timeout=-1), ValueError, "timeout"),
    Case("acquire timeout=nan", lambda: _acquire_now(_thread_manager(), "a", timeout=NAN), ValueError, "timeout"),
    Case("acquire timeout='1'", lambda: _acquire_now(_thread_manager(), "a", timeout="1"), TypeError, "timeout"),
    Case("acquire name=['a']", lambda: _acquire_now(_thread_manager(), ["a"]), TypeError, "name"),
    Case("acquire huge timeout, free lock", lambda: _acquire_now(_thread_manager(), "a", timeout=1e300), None),
    Case("acquire huge timeout, held lock", lambda: _wait_for_thread_held_lock(1e10), None),
    Case("acquire timeout=10**400, free lock", lambda: _acquire_now(_thread_manager(), "a", timeout=BEYOND_FLOAT), None),
    Case("acquire timeout=10**400, held lock", lambda: _wait_for_thread_held_lock(BEYOND_FLOAT), None),
    Case("acquire blocking='False'", lambda: _thread_manager().acquire("a", blocking="False"), TypeError, "blocking"),
    Case("acquire blocking=None", lambda: _thread_manager().acquire("a", blocking=None), TypeError, "blocking"),
    Case("LockManager long_hold_threshold=10**400", lambda: _acquire_now(LockManager({"a": 1}, long_hold_threshold=BEYOND_FLOAT), "a"), None),
    Case("ManagedLock.acquire timeout=10**400", lambda: _thread_manager().get_lock("a").acquire(timeout=BEYOND_FLOAT), None),
    Case("ManagedLock.acquire blocking=None", lambda: _thread_manager().get_lock("a").acquire(None), TypeError, "blocking"),
    Case("get_lock unknown name", lambda: _thread_manager().get_lock("nope"), KeyError, "nope"),
    Case("ManagedLock.acquire timeout=-5", lambda: _thread_manager().get_lock("a").acquire(timeout=-5), ValueError, "timeout"),
    Case("ManagedLock.acquire blocking=False, timeout=1", lambda: _thread_manager().get_lock("a").acquire(False, 1), ValueError, "timeout"),
    Case("ManagedLock.release unheld", lambda: _thread_manager().get_lock("a").release(), RuntimeError, "not held"),
    Case("AsyncLockManager policy='x'", lambda: AsyncLockManager(policy="x"), ValueError, "policy"),
    Case("AsyncLockManager order='x'", lambda: AsyncLockManager({"a": "x"}), TypeError, "order"),
    # cc.core_helpers (sync entry point) ---------------------------------------
    Case("async_run main=5", lambda: async_run(5), ValidationError, "main"),
    Case("async_run main=coroutine", lambda: async_run(_coroutine()), ValidationError, "main"),
    Case("async_run main=sync function", lambda: async_run(_sync_function), ValidationError, "main"),
    Case("async_run backend='curio'", lambda: async_run(_async_function, backend="curio"), ValidationError, "backend"),
    Case("async_run backend=None", lambda: async_run(_async_function, backend=None), ValidationError, "backend"),
    Case("async_run backend_options=5", lambda: async_run(_async_function, backend_options=5), ValidationError, "backend_options"),
    Case("async_run debug on trio", lambda: async_run(_async_function, backend="trio", debug=True), ValidationError, "debug"),
    Case("async_run debug='False'", lambda: async_run(_async_function, debug="False"), ValidationError, "debug"),
]  # fmt: skip

ASYNC_CASES = [
    # cc.primitives -------------------------------------------------------------
    Case("Lock.release unlocked", _lock_release_unlocked, RuntimeError, "not locked"),
    Case("Lock exit after handing it on", _lock_exit_after_handing_it_on, RuntimeError, "another task"),
    Case("Condition.wait without the lock", _condition_wait_unlocked, RuntimeError, "wait"),
    Case("Condition.notify n=-1", lambda: Condition().notify(-1), ValueError, "n"),
    Case("Condition.notify n='1'", lambda: Condition().notify("1"), TypeError, "n"),
    Case("Condition.notify n=1.5", lambda: Condition().notify(1.5), TypeError, "n"),
    Case("Condition.notify n=None", lambda: Condition().notify(None), TypeError, "n"),
    Case("CapacityLimiter.release unheld", _limiter_release_unheld, RuntimeError, "tokens"),
    Case("CapacityLimiter borrower=[]", lambda: CapacityLimiter(1).acquire_on_behalf_of([]), TypeError, "borrower"),
    Case("RateLimiter.acquire amount=0", lambda: RateLimiter(5).acquire(0), ValueError, "amount"),
    Case("RateLimiter.acquire amount=-1", lambda: RateLimiter(5).acquire(-1), ValueError, "amount"),
    Case("RateLimiter.acquire amount=nan", lambda: RateLimiter(5).acquire(NAN), ValueError, "amount"),
    Case("RateLimiter.acquire amount=inf", lambda: RateLimiter(5).acquire(INF), ValueError, "amount"),
    Case("RateLimiter.acquire amount>rate", lambda: RateLimiter(5).acquire(6), ValueError, "amount"),
    Case("RateLimiter.acquire amount=10**400", lambda: RateLimiter(5).acquire(BEYOND_FLOAT), ValueError, "amount"),
    Case("RateLimiter.acquire amount='1'", lambda: RateLimiter(5).acquire("1"), TypeError, "amount"),
    Case("RateLimiter.acquire amount=None", lambda: RateLimiter(5).acquire(None), TypeError, "amount"),
    Case("RateLimiter.try_acquire amount=0", lambda: _async_value(RateLimiter(5).try_acquire(0)), ValueError, "amount"),
    Case("RateLimiter.has_capacity amount=-1", lambda: _async_value(RateLimiter(5).has_capacity(-1)), ValueError, "amount"),
    Case("RateLimiter huge period", lambda: RateLimiter(1, period=1e300).acquire(), None),
    # cc.queues -------------------------------------------------------------------
    Case("BoundedQueue.put when idle", lambda: BoundedQueue[int]().put(1), QueueStateError, "put"),
    Case("BoundedQueue.get when idle", lambda: BoundedQueue[int]().get(), QueueStateError, "get"),
    Case("BoundedQueue.put timeout=-1", lambda: _running_queue(lambda q: q.put(1, timeout=-1)), ValueError, "timeout"),
    Case("BoundedQueue.put timeout=nan", lambda: _running_queue(lambda q: q.put(1, timeout=NAN)), ValueError, "timeout"),
    Case("BoundedQueue.put timeout='1'", lambda: _running_queue(lambda q: q.put(1, timeout="1")), TypeError, "timeout"),
    Case("BoundedQueue.put huge timeout", lambda: _running_queue(lambda q: q.put(1, timeout=1e300)), None),
    Case("BoundedQueue.put timeout=10**400", lambda: _running_queue(lambda q: q.put(1, timeout=10**400)), None),
    Case("BoundedQueue.stop timeout=10**400", lambda: _running_queue(lambda q: q.stop(timeout=10**400)), None),
    Case("BoundedQueue.stop timeout=-1", lambda: _running_queue(lambda q: q.stop(timeout=-1)), ValueError, "timeout"),
    Case("BoundedQueue.stop timeout='0'", lambda: BoundedQueue[int]().stop(timeout="0"), TypeError, "timeout"),
    Case("BoundedQueue.task_done too often", lambda: _running_queue(lambda q: _async_value(q.task_done())), ValueError, "task_done"),
    Case("start_workers worker_func=None", lambda: _running_queue(lambda q: q.start_workers(None, 1)), TypeError, "worker_func"),
    Case("start_workers num_workers=0", lambda: _running_queue(lambda q: q.start_workers(_async_function, 0)), ValueError, "num_workers"),
    Case("start_workers num_workers='2'", lambda: _running_queue(lambda q: q.start_workers(_async_function, "2")), TypeError, "num_workers"),
    Case("start_workers num_workers=1.5", lambda: _running_queue(lambda q: q.start_workers(_async_function, 1.5)), TypeError, "num_workers"),
    Case("start_workers error_handler=5", lambda: _running_queue(lambda q: q.start_workers(_async_function, 1, 5)), TypeError, "error_handler"),
    Case("start_workers sync worker_func", _sync_worker_is_refused, TypeError, "worker_func"),
    Case("WorkQueue.process num_workers=0", lambda: _running_work_queue(lambda q: q.process(_async_function, 0)), ValueError, "num_workers"),
    Case("WorkQueue.process above the limit", lambda: _running_work_queue(lambda q: q.process(_async_function, 3)), ValueError, "concurrency_limit"),
    Case("WorkQueue.process worker_func=None", lambda: _running_work_queue(lambda q: q.process(None)), TypeError, "worker_func"),
    Case("WorkQueue.batch_process num_workers=0", lambda: WorkQueue[int]().batch_process([1], _async_function, 0), ValueError, "num_workers"),
    Case("WorkQueue.batch_process items=5", lambda: WorkQueue[int]().batch_process(5, _async_function), TypeError, "items"),
    Case("WorkQueue.batch_process worker_func=None", lambda: WorkQueue[int]().batch_process([1], None), TypeError, "worker_func"),
    Case("WorkQueue.batch_process sync worker_func", lambda: WorkQueue[int]().batch_process([1, 2], _sync_function), TypeError, "worker_func"),
    Case("WorkQueue.batch_process collect_results='no'", lambda: WorkQueue[int]().batch_process([1], _async_function, collect_results="no"), TypeError, "collect_results"),
    # cc.locks ------------------------------------------------------------------------
    Case("AsyncLockManager.acquire() without names", lambda: _async_acquire(), ValueError, "name"),
    Case("AsyncLockManager.acquire unknown name", lambda: _async_acquire("nope"), KeyError, "nope"),
    Case("AsyncLockManager.acquire timeout=-1", lambda: _async_acquire("a", timeout=-1), ValueError, "timeout"),
    Case("AsyncLockManager.acquire timeout=nan", lambda: _async_acquire("a", timeout=NAN), ValueError, "timeout"),
    Case("AsyncLockManager.acquire timeout='1'", lambda: _async_acquire("a", timeout="1"), TypeError, "timeout"),
    Case("AsyncLockManager.acquire huge timeout", lambda: _async_acquire("a", timeout=1e300), None),
    Case("AsyncLockManager.acquire timeout=10**400, held lock", lambda: _async_acquire_held(BEYOND_FLOAT), None),
    Case("AsyncLockManager.acquire blocking='False'", lambda: _async_acquire("a", blocking="False"), TypeError, "blocking"),
    Case("AsyncLockManager long_hold_threshold=10**400", lambda: AsyncLockManager(long_hold_threshold=BEYOND_FLOAT).get_lock_status(), None),
    Case("AsyncLockManager.register_lock name=None", lambda: AsyncLockManager().register_lock(None, 1), TypeError, "name"),
    Case("AsyncLockManager lock=threading.Lock()", lambda: AsyncLockManager().register_lock("b", 2, lock=threading.Lock()), TypeError, "lock"),
    Case("AsyncLockManager.register_lock lock='x'", lambda: AsyncLockManager().register_lock("a", 1, lock="x"), TypeError, "lock"),
    Case("AsyncLockManager.get_lock unknown", lambda: AsyncLockManager().get_lock("nope"), KeyError, "nope"),
    # cc.core_helpers ---------------------------------------------------------------
    Case("async_gather()", lambda: async_gather(), ValidationError, "awaitable"),
    Case("async_gather(5)", lambda: async_gather(5), ValidationError, "argument"),
    Case("async_gather(None)", lambda: async_gather(None), ValidationError, "argument"),
    Case("async_gather(async function)", lambda: async_gather(_async_function), ValidationError, "argument"),
    Case("async_gather(sync call result)", lambda: async_gather(_coroutine(), _sync_function()), ValidationError, "argument"),
    Case("async_gather limit=0", lambda: async_gather(_coroutine(), limit=0), ValidationError, "limit"),
    Case("async_gather limit=-1", lambda: async_gather(_coroutine(), limit=-1), ValidationError, "limit"),
    Case("async_gather limit=1.5", lambda: async_gather(_coroutine(), limit=1.5), ValidationError, "limit"),
    Case("async_gather limit=nan", lambda: async_gather(_coroutine(), limit=NAN), ValidationError, "limit"),
    Case("async_gather limit=inf", lambda: async_gather(_coroutine(), limit=INF), ValidationError, "limit"),
    Case("async_gather limit='2'", lambda: async_gather(_coroutine(), limit="2"), ValidationError, "limit"),
    Case("async_gather limit=True", lambda: async_gather(_coroutine(), limit=True), ValidationError, "limit"),
    Case("async_gather huge limit", lambda: async_gather(_coroutine(), _coroutine(), limit=HUGE), None),
    Case("async_gather limit beyond float", lambda: async_gather(_coroutine(), _coroutine(), limit=BEYOND_FLOAT), None),
    Case("async_gather return_exceptions='False'", lambda: async_gather(_coroutine(), return_exceptions="False"), ValidationError, "return_exceptions"),
    Case("async_gather return_exceptions=None", lambda: async_gather(_coroutine(), return_exceptions=None), ValidationError, "return_exceptions"),
    Case("async_map func=None", lambda: async_map(None, [1], limit=1), ValidationError, "func"),
    Case("async_map sync func", lambda: async_map(_sync_function, [1], limit=1), ValidationError, "func"),
    Case("async_map iterable=5", lambda: async_map(_async_function, 5, limit=1), ValidationError, "iterable"),
    Case("async_map iterable=None", lambda: async_map(_async_function, None, limit=1), ValidationError, "iterable"),
    Case("async_map limit=0", lambda: async_map(_async_function, [1], limit=0), ValidationError, "limit"),
    Case("async_map limit=None", lambda: async_map(_async_function, [1], limit=None), ValidationError, "limit"),
    Case("async_map limit=inf", lambda: async_map(_async_function, [1], limit=INF), ValidationError, "limit"),
    Case("async_map limit='2'", lambda: async_map(_async_function, [1], limit="2"), ValidationError, "limit"),
    Case("async_map huge limit", lambda: async_map(_async_function, [1, 2], limit=HUGE), None),
    Case("async_map limit beyond float", lambda: async_map(_async_function, [1, 2], limit=BEYOND_FLOAT), None),
    Case("async_map limit=True", lambda: async_map(_async_function, [1], limit=True), ValidationError, "limit"),
    Case("async_map return_exceptions='yes'", lambda: async_map(_async_function, [1], limit=1, return_exceptions="yes"), ValidationError, "return_exceptions"),
    Case("async_wait_for timeout=-1", lambda: async_wait_for(_coroutine(), -1), ValidationError, "timeout"),
    Case("async_wait_for timeout=nan", lambda: async_wait_for(_coroutine(), NAN), ValidationError, "timeout"),
    Case("async_wait_for timeout='1'", lambda: async_wait_for(_coroutine(), "1"), ValidationError, "timeout"),
    Case("async_wait_for timeout=True", lambda: async_wait_for(_coroutine(), True), ValidationError, "timeout"),
    Case("async_wait_for awaitable=5", lambda: async_wait_for(5, 1), ValidationError, "awaitable"),
    Case("async_wait_for async function", lambda: async_wait_for(_async_function, 1), ValidationError, "awaitable"),
    Case("async_wait_for huge timeout", lambda: async_wait_for(_coroutine(), 1e300), None),
    Case("async_wait_for timeout beyond float", lambda: async_wait_for(_coroutine(), BEYOND_FLOAT), None),
    Case("async_wait_for timeout=Decimal", lambda: async_wait_for(_coroutine(), Decimal("1")), ValidationError, "timeout"),
    Case("async_wait_for timeout=-0.0", lambda: async_wait_for(_async_function(), -0.0), None),
    Case("async_wait_for timeout=0", lambda: async_wait_for(_coroutine(), 0), TimeoutError, "timed"),
    Case("async_sleep delay=-1", lambda: async_sleep(-1), ValidationError, "delay"),
    Case("async_sleep delay=nan", lambda: async_sleep(NAN), ValidationError, "delay"),
    Case("async_sleep delay='1'", lambda: async_sleep("1"), ValidationError, "delay"),
    Case("async_sleep delay=None", lambda: async_sleep(None), ValidationError, "delay"),
    Case("async_sleep delay=True", lambda: async_sleep(True), ValidationError, "delay"),
    Case("async_sleep delay=0", lambda: async_sleep(0), None),
    Case("async_sleep delay=-0.0", lambda: async_sleep(-0.0), None),
    Case("async_sleep delay=Fraction", lambda: async_sleep(Fraction(1, 1000)), None),
    Case("async_sleep delay=Decimal", lambda: async_sleep(Decimal("0.001")), ValidationError, "delay"),
    Case("async_sleep delay beyond float", lambda: _sleeps_until_cancelled(BEYOND_FLOAT), None),
]  # fmt: skip


@pytest.mark.parametrize("case", _params(SYNC_CASES))
def test_bad_input_sync(case: Case, kit: Any) -> None:
    """Run a call that needs no event loop in a thread that must finish."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = case.call()
        except BaseException as error:  # handed to the test below
            outcome["error"] = error

    thread = threading.Thread(target=run, name=f"bad input: {case.id}", daemon=True)
    thread.start()
    thread.join(CASE_LIMIT)
    assert not thread.is_alive(), f"{case.id}: hung for {CASE_LIMIT} s"
    _check(case, outcome.get("error"), outcome.get("value"))
    kit.report.check("bad input: documented error naming the argument")
    kit.report.fault("bad inputs fed to the API")


@pytest.mark.anyio
@pytest.mark.parametrize("case", _params(ASYNC_CASES))
async def test_bad_input_async(case: Case, kit: Any) -> None:
    """Run a call in the event loop under a time limit."""
    error: BaseException | None = None
    value: Any = None
    try:
        with anyio.fail_after(CASE_LIMIT):
            value = case.call()
            if isinstance(value, Awaitable):
                value = await value
    except TimeoutError as exc:
        if case.error is not TimeoutError:
            raise AssertionError(f"{case.id}: hung for {CASE_LIMIT} s") from exc
        error = exc
    except BaseException as exc:  # checked below
        error = exc
    _check(case, error, value)
    kit.report.check("bad input: documented error naming the argument")
    kit.report.fault("bad inputs fed to the API")


# -- junk values, generated ------------------------------------------------------

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=3),
    st.lists(st.integers(), max_size=2),
    st.complex_numbers(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True),
    st.fractions(),
)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_duration(value: object) -> bool:
    """Return whether ``value`` is a real number of seconds >= 0 (huge: forever)."""
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and not (isinstance(value, float) and math.isnan(value))
        and not value < 0
    )


async def _sleeps_at_most_briefly(delay: Any) -> None:
    with anyio.move_on_after(0.001):
        await async_sleep(delay)


async def _waits_for_at_once(seconds: Any) -> None:
    await async_wait_for(_async_function(), seconds)


async def _gathers_two(limit: Any) -> None:
    await async_gather(_async_function(), _async_value(), limit=limit)


@dataclass(frozen=True)
class Target:
    """An argument to feed junk: the call, the documented errors, the rule."""

    id: str
    call: Callable[[Any], Any]
    errors: tuple[type[BaseException], ...]
    word: str
    valid: Callable[[Any], bool] | None  # None: only the errors are checked


TARGETS = [
    Target("Semaphore initial_value", Semaphore, (TypeError, ValueError), "initial_value",
           lambda v: _is_int(v) and v >= 0),
    Target("CapacityLimiter total_tokens", CapacityLimiter, (TypeError, ValueError), "total_tokens",
           lambda v: (_is_int(v) and v >= 1) or (isinstance(v, float) and v == INF)),
    Target("RateLimiter rate", RateLimiter, (TypeError, ValueError), "rate",
           lambda v: _is_real(v) and math.isfinite(v) and v > 0),
    Target("RateLimiter period", lambda v: RateLimiter(1, v), (TypeError, ValueError), "period",
           lambda v: _is_real(v) and math.isfinite(v) and v > 0),
    Target("BoundedQueue maxsize", BoundedQueue, (TypeError, ValueError), "maxsize",
           lambda v: _is_int(v) and v >= 1),
    Target("BoundedQueue timeout", lambda v: BoundedQueue(1, v), (TypeError, ValueError), "timeout",
           lambda v: _is_real(v) and not math.isnan(v) and v >= 0),
    Target("WorkQueue concurrency_limit", lambda v: WorkQueue(concurrency_limit=v), (TypeError, ValueError), "concurrency_limit",
           lambda v: v is None or (_is_int(v) and v >= 1)),
    Target("WorkQueue rate_window", lambda v: WorkQueue(rate_limit=1, rate_window=v), (TypeError, ValueError), "rate_window",
           lambda v: _is_real(v) and math.isfinite(v) and v > 0),
    Target("QueueConfig queue_capacity", lambda v: QueueConfig(queue_capacity=v), (pydantic.ValidationError,), "queue_capacity", None),
    Target("QueueConfig capacity_refresh_time", lambda v: QueueConfig(capacity_refresh_time=v), (pydantic.ValidationError,), "capacity_refresh_time", None),
    Target("LockManager long_hold_threshold", lambda v: LockManager(long_hold_threshold=v), (ValueError,), "long_hold_threshold", None),
    Target("LockManager order", lambda v: LockManager().register_lock("a", v), (TypeError,), "order",
           lambda v: v is None or _is_int(v)),
    Target("LockManager.acquire timeout", lambda v: _acquire_now(_thread_manager(), "a", timeout=v), (TypeError, ValueError), "timeout",
           lambda v: v is None or (isinstance(v, numbers.Real) and not isinstance(v, bool) and not math.isnan(v) and v >= 0)),
    Target("LockManager.acquire name", lambda v: _acquire_now(_thread_manager(), v), (TypeError, KeyError), "lock", None),
    Target("async_sleep delay", lambda v: anyio.run(_sleeps_at_most_briefly, v), (ValidationError,), "delay",
           _is_duration),
    Target("async_wait_for timeout", lambda v: anyio.run(_waits_for_at_once, v), (ValidationError,), "Timeout",
           lambda v: v is None or _is_duration(v)),
    Target("async_gather limit", lambda v: anyio.run(_gathers_two, v), (ValidationError,), "limit",
           lambda v: v is None or (_is_int(v) and v >= 1)),
    Target("async_map limit", lambda v: async_map(_async_function, [1], limit=v), (ValidationError,), "limit",
           lambda v: _is_int(v) and v >= 1),
]  # fmt: skip


@pytest.mark.parametrize("target", [pytest.param(t, id=t.id) for t in TARGETS])
def test_junk_values_get_the_documented_error(target: Target, kit: Any) -> None:
    """Generated junk: accepted exactly when valid, else the documented error."""
    checked = 0

    @settings(max_examples=120, database=None, deadline=None)
    @given(value=JUNK)
    def feed(value: Any) -> None:
        nonlocal checked
        refused: BaseException | None = None
        try:
            target.call(value)
        except target.errors as error:
            refused = error
        if refused is not None:
            assert re.search(rf"(?<![\w]){target.word}(?![\w])", str(refused)), (
                f"{target.id}={value!r}: the message does not name it: {refused}"
            )
        accepted = refused is None
        if target.valid is not None:
            assert accepted == target.valid(value), (
                f"{target.id}={value!r}: {'accepted' if accepted else 'refused'}"
            )
        checked += 1

    hypothesis.seed(kit.seed)(feed)()
    kit.report.check("generated junk: accepted exactly when valid", checked)
    kit.report.fault("generated junk values fed to the API", checked)
