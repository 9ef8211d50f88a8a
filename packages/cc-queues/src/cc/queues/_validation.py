"""Argument checks with messages that name the argument and what is allowed."""

from __future__ import annotations

import functools
import inspect
import logging
import math
import reprlib
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = [
    "NotAwaitableError",
    "NotStartedError",
    "brief",
    "check_async_callable",
    "check_bool",
    "check_float_range",
    "check_callable",
    "check_count",
    "check_logger",
    "check_timeout",
]

_F = TypeVar("_F", bound=Callable[..., Awaitable[Any]])


def check_count(name: str, value: object) -> int:
    """Return ``value`` if it is an ``int`` (not a bool) of at least 1.

    :raises TypeError: for a value that is not an integer
    :raises ValueError: for an integer below 1
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def check_timeout(name: str, value: object) -> float:
    """Return ``value`` as a float if it is zero or a positive number (or inf).

    An integer too large for a float (``10**400``) means forever:
    :data:`math.inf`.

    :raises TypeError: for a value that is not a real number
    :raises ValueError: for a negative number or NaN
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(
            f"{name} must be a number of seconds, not {type(value).__name__}"
        )
    try:
        number = float(value)
    except OverflowError:  # an int beyond a float's range
        number = math.inf if value > 0 else -math.inf
    if math.isnan(number) or number < 0:
        raise ValueError(
            f"{name} must be >= 0 seconds (math.inf waits forever), got {brief(value)}"
        )
    return number


def check_float_range(name: str, value: int) -> float:
    """Return the int ``value`` as a float, or refuse it if it is too large.

    :raises ValueError: for an int beyond the range of a float
    """
    try:
        return float(value)
    except OverflowError:
        raise ValueError(
            f"{name} must be at most {sys.float_info.max:.3g}, got {brief(value)}"
        ) from None


def check_bool(name: str, value: object) -> bool:
    """Return ``value`` if it is a bool.

    :raises TypeError: for anything else (a truthy string is a mistake here)
    """
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {type(value).__name__}")
    return value


def brief(value: object) -> str:
    """Return the repr of ``value``, shortened for an error message."""
    return reprlib.repr(value)


def check_logger(name: str, value: object) -> logging.Logger | None:
    """Return ``value`` if it is a :class:`logging.Logger` or ``None``.

    :raises TypeError: for anything else
    """
    if value is not None and not isinstance(value, logging.Logger):
        raise TypeError(
            f"{name} must be a logging.Logger or None, not {type(value).__name__}"
        )
    return value


def check_callable(name: str, value: object) -> None:
    """Check that ``value`` is callable.

    :raises TypeError: if it is not
    """
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {value!r}")


def _is_async(func: object) -> bool:
    if inspect.iscoroutinefunction(func):
        return True
    call = getattr(type(func), "__call__", None)  # noqa: B004
    return inspect.iscoroutinefunction(call)


class NotAwaitableError(TypeError):
    """A function that must be async returned something that is not awaitable.

    Raised by the adapter of :func:`check_async_callable`. It is a misuse of
    the API, not a failure of one item, so the queue's workers never report
    it to an error handler: they stop the work and raise it to the caller.
    """


class NotStartedError(Exception):
    """An item's turn came after the work was stopped by a misuse: hand it back.

    Raised by the start-rate wrapper of a :class:`WorkQueue` (before the
    worker function is called, so the item is untouched); never seen by users.
    """


def check_async_callable(name: str, func: _F) -> _F:
    """Return ``func`` if it is an async function, else a checking adapter.

    An ``async def`` function (also behind :func:`functools.partial`, a bound
    method, or an object whose ``__call__`` is ``async def``) is returned as
    it is. Any other callable may still return awaitables (a lambda returning
    a coroutine): it is wrapped so that each call checks that it did, and a
    call that returned something else (a sync function) raises
    :class:`NotAwaitableError` (a :class:`TypeError`) naming ``name``.

    :raises TypeError: if ``func`` is not callable
    """
    check_callable(name, func)
    if _is_async(func):
        return func

    @functools.wraps(func)
    async def checked(*args: Any) -> Any:
        result = func(*args)
        if not inspect.isawaitable(result):
            raise NotAwaitableError(
                f"{name} must be an async function (or return an awaitable); "
                f"{func!r} returned {type(result).__name__}"
            )
        return await result

    return checked  # type: ignore[return-value]
