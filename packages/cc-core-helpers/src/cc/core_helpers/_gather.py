"""async_gather: await several awaitables concurrently, structured."""

from __future__ import annotations

import math
from collections.abc import Awaitable
from typing import Any, Literal, TypeVar, overload

from cc.core_helpers._errors import ValidationError
from cc.core_helpers._pool import JobPool
from cc.core_helpers._validation import (
    check_flag,
    check_limit,
    checkpoint_closing,
    close_coroutines,
    describe,
    is_awaitable,
)
from cc.primitives.lowlevel import checkpoint_due

__all__ = ["async_gather"]

_T = TypeVar("_T")


@overload
async def async_gather(
    *awaitables: Awaitable[_T],
    return_exceptions: Literal[False] = False,
    limit: int | None = None,
) -> list[_T]: ...


@overload
async def async_gather(
    *awaitables: Awaitable[_T],
    return_exceptions: bool,
    limit: int | None = None,
) -> list[_T | Exception]: ...


async def async_gather(
    *awaitables: Awaitable[Any],
    return_exceptions: bool = False,
    limit: int | None = None,
) -> list[Any]:
    """Await every awaitable concurrently and return their results in order.

    Unlike :func:`asyncio.gather` (which raises at once and leaves the
    others running, unsupervised), this is *structured*: when it returns or
    raises, none of the awaitables is still running. If one fails (and
    ``return_exceptions`` is false), the others are cancelled, and it raises
    once they have finished being cancelled. If the calling task is
    cancelled, every awaitable is cancelled too.

    Error semantics, with ``return_exceptions=False``:

    * The first failure propagates *as itself*, never wrapped in an exception
      group, so ``except ValueError:`` around the call works as it does
      around ``asyncio.gather``.
    * If other awaitables fail too (at the same moment, or while they are
      being cancelled), the first failure is still the one raised, on every
      backend; the others get a note on the raised exception
      (``__notes__``, shown in its traceback) and are logged at DEBUG level
      on the ``cc.core_helpers`` logger. Which one is "first" follows the
      order the failures happened in, not the argument order. A failure that
      is not an :class:`Exception` (``KeyboardInterrupt``, ``SystemExit``)
      wins over ordinary exceptions.

    With ``return_exceptions=True``, an awaitable's :class:`Exception` takes
    its place in the result list and the others carry on. Cancellation and
    other :class:`BaseException` are never returned as results; they
    propagate as above.

    Each awaitable runs in a task of its own, in a task group the call owns,
    never in the calling task, so whatever is tied to a task (a
    :class:`~cc.primitives.Lock` the caller holds, a
    :class:`~cc.primitives.CapacityLimiter` token, what
    :func:`anyio.get_current_task` reports, the :mod:`contextvars` it sets)
    is the awaitable's own. With ``limit``, a task is started for an
    awaitable only when it may run. Awaitables never started (an earlier one
    failed) are closed, so Python does not warn about them.

    :param awaitables: coroutines, tasks or other awaitables; each at most once
    :param return_exceptions: put exceptions in the result list instead of
        raising the first one
    :param limit: run at most this many awaitables at a time (``None``, the
        default, for no limit); the rest start as earlier ones finish, in
        argument order
    :return: the results, in the order of ``awaitables``
    :raises ValidationError: if no awaitable is given ("At least one awaitable
        must be provided"), if an argument is not awaitable or is given twice,
        if ``limit`` is not ``None`` or an integer of at least 1, or if
        ``return_exceptions`` is not a bool
    :raises Exception: the first failure, as itself (see above)

    >>> import anyio
    >>> from cc.core_helpers import async_gather, async_sleep
    >>> async def double(n: int, delay: float) -> int:
    ...     await async_sleep(delay)
    ...     return n * 2
    >>> async def main() -> list[int]:
    ...     return await async_gather(double(1, 0.03), double(2, 0.01), double(3, 0))
    >>> anyio.run(main)
    [2, 4, 6]
    >>> anyio.run(main, backend="trio")
    [2, 4, 6]
    """
    if not awaitables:
        raise ValidationError("At least one awaitable must be provided")
    try:
        limit_value = check_limit(limit, allow_none=True)
        check_flag("return_exceptions", return_exceptions)
        seen: dict[int, int] = {}
        for position, awaitable in enumerate(awaitables):
            if not is_awaitable(awaitable):
                raise ValidationError(
                    f"async_gather argument {position} is not awaitable: "
                    f"{describe(awaitable)}"
                )
            first = seen.setdefault(id(awaitable), position)
            if first != position:
                raise ValidationError(
                    f"async_gather got the same awaitable as arguments {first} and "
                    f"{position}; pass each awaitable once"
                )
    except ValidationError:
        close_coroutines(awaitables)
        raise
    if checkpoint_due():
        await checkpoint_closing(awaitables)
    source = iter(awaitables)
    pool = JobPool(
        source,
        name="async_gather",
        limit=limit_value,
        return_exceptions=return_exceptions,
    )
    try:
        return await pool.next_results(math.inf)
    finally:
        # Awaitables never started (the gather failed or was cancelled first)
        # never run: close them, so that Python does not warn about them.
        close_coroutines(source)
