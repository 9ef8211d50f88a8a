"""Argument checks shared by the helpers, with messages that say what is allowed."""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable
from types import CoroutineType
from typing import Any

from cc.core_helpers._errors import ValidationError

__all__ = [
    "check_limit",
    "check_seconds",
    "close_coroutines",
    "describe",
    "is_awaitable",
]


def describe(value: object) -> str:
    """Return a short description of ``value`` for an error message."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def check_seconds(what: str, value: object, *, none_allowed: bool = False) -> float:
    """Return ``value`` as a float if it is a non-negative number of seconds.

    ``math.inf`` is allowed (no limit); NaN and booleans are not.

    :param what: how the message names the value, e.g. ``"Sleep delay"``
    :param none_allowed: accept ``None`` too, returned as ``math.inf``
    :raises ValidationError: for anything else
    """
    if value is None and none_allowed:
        return math.inf
    if isinstance(value, bool) or not isinstance(value, int | float):
        expected = "a number of seconds or None" if none_allowed else "a number"
        raise ValidationError(f"{what} must be {expected}, got {describe(value)}")
    seconds = float(value)
    if math.isnan(seconds) or seconds < 0:
        raise ValidationError(f"{what} must be non-negative, got {value!r}")
    return seconds


def check_limit(value: object, *, allow_none: bool) -> float:
    """Return the concurrency ``limit`` (``math.inf`` for ``None``).

    :raises ValidationError: unless ``value`` is an integer of at least 1
        (or ``None`` where allowed)
    """
    if value is None and allow_none:
        return math.inf
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        expected = "None or an integer >= 1" if allow_none else "an integer >= 1"
        raise ValidationError(f"limit must be {expected}, got {describe(value)}")
    return value


def is_awaitable(value: object) -> bool:
    """Return whether ``await value`` is allowed (coroutines checked first, fast)."""
    return type(value) is CoroutineType or inspect.isawaitable(value)


def close_coroutines(values: Iterable[Any]) -> None:
    """Close every coroutine object in ``values``.

    Called when a helper refuses its arguments: the coroutines will never run,
    and closing them stops Python from warning that they were never awaited.
    """
    for value in values:
        if inspect.iscoroutine(value):
            value.close()
