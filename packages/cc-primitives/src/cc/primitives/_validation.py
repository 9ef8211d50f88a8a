"""Argument checks shared by the primitives, with messages that name the argument."""

from __future__ import annotations

import math

__all__ = ["check_int", "check_positive_number", "check_total_tokens", "shown"]

# An int with more digits than this is described, not printed.
_LONGEST_SHOWN = 30


def shown(value: object) -> str:
    """Return ``repr(value)``, or a short description of a huge int."""
    if isinstance(value, int) and abs(value) >= 10**_LONGEST_SHOWN:
        digits = math.floor(abs(value).bit_length() * math.log10(2)) + 1
        return f"{'a negative' if value < 0 else 'an'} int of about {digits} digits"
    return repr(value)


def check_int(name: str, value: object, *, minimum: int, or_none: bool = False) -> None:
    """Raise unless ``value`` is an ``int`` (not a bool) of at least ``minimum``.

    The messages begin as anyio's do ("initial_value must be an integer").

    :param or_none: whether ``None`` is allowed (and said to be)
    :raises TypeError: for a value that is not an integer
    :raises ValueError: for an integer below ``minimum``
    """
    if value is None and or_none:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        allowed = "an integer or None" if or_none else "an integer"
        raise TypeError(f"{name} must be {allowed}, not {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {shown(value)}")


def check_positive_number(name: str, value: object, *, allow_inf: bool) -> float:
    """Return ``value`` as a float if it is a positive real number.

    An int too large for a float counts as infinite: allowed as "forever"
    where ``allow_inf`` is true, refused like infinity otherwise.

    :raises TypeError: for a value that is not a number
    :raises ValueError: for zero, a negative number, NaN, or (unless allowed)
        infinity
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:  # an int beyond the float range
        number = math.inf if value > 0 else -math.inf
    if math.isnan(number) or number <= 0 or (math.isinf(number) and not allow_inf):
        allowed = "a positive number" if allow_inf else "a positive finite number"
        raise ValueError(f"{name} must be {allowed}, got {shown(value)}")
    return number


def check_total_tokens(value: object) -> float:
    """Return a valid capacity: an ``int >= 1`` or ``math.inf``.

    The value is checked before the type, as the reference documents: any
    number below 1 is a ``ValueError``; then anything but an int or
    ``math.inf`` (a float such as 2.5, NaN) is a ``TypeError``, as in anyio.

    :raises ValueError: for a number below 1
    :raises TypeError: for anything but an int or ``math.inf``
    """
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if is_number and value < 1:  # type: ignore[operator]
        raise ValueError(f"total_tokens must be >= 1, got {shown(value)}")
    if not is_number or (isinstance(value, float) and not math.isinf(value)):
        raise TypeError(f"total_tokens must be an int or math.inf, not {value!r}")
    return value  # type: ignore[return-value]
