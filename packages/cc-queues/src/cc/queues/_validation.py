"""Argument checks with messages that name the argument and what is allowed."""

from __future__ import annotations

import math

__all__ = ["check_count", "check_timeout"]


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

    :raises TypeError: for a value that is not a real number
    :raises ValueError: for a negative number or NaN
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(
            f"{name} must be a number of seconds, not {type(value).__name__}"
        )
    number = float(value)
    if math.isnan(number) or number < 0:
        raise ValueError(
            f"{name} must be >= 0 seconds (math.inf waits forever), got {value!r}"
        )
    return number
