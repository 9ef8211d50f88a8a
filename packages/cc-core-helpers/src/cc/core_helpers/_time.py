"""async_sleep and async_wait_for: waiting for a while, and waiting at most a while."""

from __future__ import annotations

import math
import sys
import time
import types
from collections.abc import Awaitable, Generator
from types import CoroutineType
from typing import Any, Protocol, TypeVar, cast

import anyio

from cc.core_helpers._errors import ValidationError
from cc.core_helpers._validation import (
    check_seconds,
    checkpoint_closing,
    close_coroutines,
    describe,
    is_awaitable,
)
from cc.primitives.lowlevel import checkpoint_due

__all__ = ["async_sleep", "async_wait_for"]

_T = TypeVar("_T")

# The largest finite float. Comparing with it (not with math.inf) keeps ints
# too large for a float (10**400) off the fast paths: anyio would raise
# OverflowError turning them into a deadline; check_seconds makes them inf.
_LONGEST = sys.float_info.max


# async_wait_for drives the awaitable step by step: ``await`` would hide whether
# it finished at once or had to wait, and work that finishes without waiting
# needs no timer. The first ``send(None)`` finishes it or yields what it waits
# for; resume() then hands that to the event loop unchanged and relays all the
# event loop sends or throws, exactly as ``await`` would, in the same task.


class Steps(Protocol):
    """What the event loop drives a task's coroutine through (send/throw/close)."""

    def send(self, value: Any, /) -> Any: ...

    def throw(self, exc: BaseException, /) -> Any: ...

    def close(self) -> None: ...


def _delegate(iterator: Any) -> Generator[Any, Any, Any]:
    # "yield from" gives any __await__ iterator (even one without send/throw)
    # the full generator protocol, with exactly the semantics of "await".
    return (yield from iterator)


def step_iterator(awaitable: object) -> Steps:
    """Return an object with ``send``/``throw``/``close`` that runs ``awaitable``.

    The caller has checked that ``awaitable`` is awaitable.
    """
    if type(awaitable) is CoroutineType:
        return awaitable  # the common case, checked first
    if type(awaitable) is types.GeneratorType:
        # A generator-based coroutine (@types.coroutine) is its own iterator.
        return awaitable
    return _delegate(cast("Awaitable[Any]", awaitable).__await__())


@types.coroutine
def resume(steps: Steps, pending: Any) -> Generator[Any, Any, Any]:
    """Continue ``steps``, which has just yielded ``pending``, to completion.

    Awaiting the result behaves exactly like having awaited the original
    awaitable from the start.
    """
    send = steps.send
    throw = steps.throw
    while True:
        try:
            sent = yield pending
        except GeneratorExit:
            steps.close()
            raise
        except BaseException as exc:
            try:
                pending = throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                pending = send(sent)
            except StopIteration as stop:
                return stop.value


async def async_sleep(delay: float) -> None:
    """Pause the calling task for ``delay`` seconds.

    The sleep is a cancellation point: cancelling the task (or a cancel scope
    around the call) ends it at once. ``async_sleep(0)`` just lets other tasks
    run; ``math.inf``, or a number too large for a float (``10**400``),
    sleeps until cancelled.

    :param delay: how long to sleep, in seconds (a real number ``>= 0``: an
        int, a float, a :class:`~fractions.Fraction`)
    :raises ValidationError: if ``delay`` is negative or NaN ("Sleep delay must
        be non-negative") or not a real number (a bool is not one)

    >>> import anyio
    >>> from cc.core_helpers import async_sleep
    >>> async def main() -> str:
    ...     await async_sleep(0.01)
    ...     return "rested"
    >>> anyio.run(main)
    'rested'
    >>> anyio.run(main, backend="trio")
    'rested'
    """
    # The common case (a plain number in the float range) costs two checks.
    if (type(delay) is float or type(delay) is int) and 0 <= delay <= _LONGEST:
        await anyio.sleep(delay)
    else:
        await anyio.sleep(check_seconds("Sleep delay", delay))


# The reference API takes the timeout as a parameter, like asyncio.wait_for.
async def async_wait_for(awaitable: Awaitable[_T], timeout: float | None) -> _T:  # noqa: ASYNC109
    """Await ``awaitable``, giving up after ``timeout`` seconds.

    When the time is up, the awaited work is *cancelled* (and has finished
    being cancelled when this raises), then the builtin :class:`TimeoutError`
    is raised. Like every timeout in anyio, asyncio and trio, it can only
    interrupt the work where the work waits: an awaitable that finishes
    without ever waiting returns its result whatever the timeout, and costs no
    timer at all. ``None``, ``math.inf`` or a number too large for a float
    (``10**400``) means no limit.

    The work runs in the calling task, as with ``await``: nothing is spawned,
    and a cancellation of the calling task reaches the work directly. Like
    every cc operation it follows cc's checkpoint rule (see
    :mod:`cc.primitives.lowlevel`): a loop of calls whose work never waits
    still lets other tasks run and still ends at a cancellation, because
    every :data:`~cc.primitives.lowlevel.CHECKPOINT_INTERVAL`-th call or so
    starts with a checkpoint (before the work starts, outside the time
    limit).

    :param awaitable: the coroutine (or other awaitable) to wait for
    :param timeout: the limit in seconds (a real number ``>= 0``), or
        ``None`` for none
    :return: the awaitable's result
    :raises ValidationError: if ``timeout`` is negative or NaN ("Timeout must
        be non-negative"), not a number or ``None``, or if ``awaitable`` is not
        awaitable
    :raises TimeoutError: if the limit passes before the work finishes

    >>> import anyio
    >>> from cc.core_helpers import async_sleep, async_wait_for
    >>> async def slow() -> str:
    ...     await async_sleep(10)
    ...     return "done"
    >>> async def main() -> str:
    ...     try:
    ...         return await async_wait_for(slow(), timeout=0.01)
    ...     except TimeoutError:
    ...         return "timed out"
    >>> anyio.run(main)
    'timed out'
    >>> anyio.run(main, backend="trio")
    'timed out'
    """
    # The checks are ordered so that the common case (a coroutine and a
    # finite number of seconds) costs a couple of type comparisons.
    if type(awaitable) is not CoroutineType and not is_awaitable(awaitable):
        raise ValidationError(
            f"async_wait_for needs an awaitable, got {describe(awaitable)}"
        )
    if (type(timeout) is float or type(timeout) is int) and 0 <= timeout <= _LONGEST:
        seconds: float = timeout
    else:
        try:
            seconds = check_seconds("Timeout", timeout, none_allowed=True)
        except ValidationError:
            close_coroutines((awaitable,))
            raise
        if seconds == math.inf:
            if checkpoint_due():
                await checkpoint_closing((awaitable,))
            return await awaitable
    if checkpoint_due():
        await checkpoint_closing((awaitable,))
    steps = step_iterator(awaitable)
    started = time.perf_counter()
    with anyio.CancelScope() as scope:
        try:
            pending = steps.send(None)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        # The work has to wait, so it needs a deadline now. It is counted from
        # the call: the time spent before the first wait is taken off
        # (measured on the real clock, so that a trio MockClock, which does not
        # move during synchronous code, only loses those microseconds).
        elapsed = time.perf_counter() - started
        scope.deadline = anyio.current_time() + max(seconds - elapsed, 0.0)
        return await resume(steps, pending)  # type: ignore[no-any-return]
    # Only reached when the scope swallowed its own cancellation: time is up.
    raise TimeoutError(f"async_wait_for timed out after {timeout!r} seconds")
