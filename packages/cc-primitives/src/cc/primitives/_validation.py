"""Argument checks shared by the primitives, with messages that name the argument."""

from __future__ import annotations

import math

__all__ = ["check_int", "check_positive_number"]


def check_int(name: str, value: object, *, minimum: int) -> None:
    """Raise unless ``value`` is an ``int`` (not a bool) of at least ``minimum``.

    :raises TypeError: for a value that is not an integer
    :raises ValueError: for an integer below ``minimum``
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def check_positive_number(name: str, value: object, *, allow_inf: bool) -> float:
    """Return ``value`` as a float if it is a positive real number.

    :raises TypeError: for a value that is not a number
    :raises ValueError: for zero, a negative number, NaN, or (unless allowed)
        infinity
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    number = float(value)
    if math.isnan(number) or number <= 0 or (math.isinf(number) and not allow_inf):
        allowed = "a positive number" if allow_inf else "a positive finite number"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return number
