"""Argument checks shared by the helpers, and closing what a helper will never run.

Every message says what is allowed. A coroutine a helper was given but will
never run (refused, or not started because of a cancellation) is closed, so
that Python does not warn that it was never awaited.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import numbers
import operator
from collections.abc import Iterable
from types import CoroutineType
from typing import Any

from cc.core_helpers._errors import ValidationError
from cc.primitives.lowlevel import checkpoint

__all__ = [
    "check_flag",
    "check_limit",
    "check_seconds",
    "checkpoint_closing",
    "close_coroutines",
    "describe",
    "is_awaitable",
    "short_repr",
]


def short_repr(value: object) -> str:
    """Return ``repr(value)``, cut to 60 characters, for an error message.

    Never raises: an int too long to print (``10**5000``) or an object whose
    ``__repr__`` fails is shown by its type instead.
    """
    try:
        text = repr(value)
    except Exception:
        return f"<{type(value).__name__} object>"
    if len(text) > 60:
        text = text[:57] + "..."
    return text


def describe(value: object) -> str:
    """Return a short description of ``value`` (and its type) for an error message."""
    return f"{short_repr(value)} ({type(value).__name__})"


def check_seconds(what: str, value: object, *, none_allowed: bool = False) -> float:
    """Return ``value`` as a float if it is a non-negative number of seconds.

    Any real number is accepted (``int``, ``float`` and their subclasses,
    :class:`fractions.Fraction`); ``math.inf`` means no end, and so does a
    number too large for a float (``10**400``), which is returned as
    ``math.inf`` rather than raising :class:`OverflowError`. NaN, booleans
    and everything else are refused.

    :param what: how the message names the value, e.g. ``"Sleep delay"``
    :param none_allowed: accept ``None`` too, returned as ``math.inf``
    :raises ValidationError: for anything else
    """
    if value is None and none_allowed:
        return math.inf
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        expected = "a number of seconds or None" if none_allowed else "a number"
        raise ValidationError(f"{what} must be {expected}, got {describe(value)}")
    try:
        seconds = float(value)
    except OverflowError:  # an int (or Fraction) beyond the float range
        seconds = -math.inf if value < 0 else math.inf
    if math.isnan(seconds) or seconds < 0:
        raise ValidationError(f"{what} must be non-negative, got {short_repr(value)}")
    return seconds


def check_limit(value: object, *, allow_none: bool) -> int | float:
    """Return the concurrency ``limit`` (``math.inf`` for ``None``).

    Integers of any size are accepted, and so are integer types that are not
    ``int`` (anything with ``__index__``, such as numpy's); booleans are not.

    :raises ValidationError: unless ``value`` is an integer of at least 1
        (or ``None`` where allowed)
    """
    if value is None and allow_none:
        return math.inf
    number = -1
    if not isinstance(value, bool):
        with contextlib.suppress(TypeError):  # not an integer: refused below
            number = operator.index(value)  # type: ignore[arg-type]
    if number < 1:
        expected = "None or an integer >= 1" if allow_none else "an integer >= 1"
        raise ValidationError(f"limit must be {expected}, got {describe(value)}")
    return number


def check_flag(name: str, value: object) -> bool:
    """Return ``value`` if it is a bool.

    A truthy string such as ``"False"`` must not silently mean ``True``.

    :raises ValidationError: naming ``name`` for anything but ``True``/``False``
    """
    if value is True or value is False:
        return value
    raise ValidationError(f"{name} must be True or False, got {describe(value)}")


def is_awaitable(value: object) -> bool:
    """Return whether ``await value`` is allowed (coroutines checked first, fast)."""
    return type(value) is CoroutineType or inspect.isawaitable(value)


def close_coroutines(values: Iterable[Any]) -> None:
    """Close every coroutine object in ``values``."""
    for value in values:
        if inspect.iscoroutine(value):
            value.close()


async def checkpoint_closing(unstarted: Iterable[Any] = ()) -> None:
    """Await a full checkpoint; if it raises, close the ``unstarted`` coroutines."""
    try:
        await checkpoint()
    except BaseException:
        close_coroutines(unstarted)
        raise
