"""Declared lock hierarchies and the arguments of the managers, checked at the door.

:func:`parse_hierarchy` turns every accepted form of a hierarchy into
``(name, order, description, lock)`` entries; the ``check_*`` functions
refuse bad arguments with the documented error, naming the argument.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any, Literal, Union

__all__ = [
    "Entry",
    "LockHierarchy",
    "Policy",
    "check_blocking",
    "check_entry",
    "check_name",
    "check_policy",
    "check_seconds",
    "check_threshold",
    "parse_hierarchy",
]

#: What a manager does about an acquisition order that can deadlock.
Policy = Literal["raise", "warn", "off"]
_POLICIES: tuple[str, ...] = ("raise", "warn", "off")

#: A declared lock hierarchy, as :meth:`register_locks` accepts it.
LockHierarchy = Union[Mapping[str, Any], Iterable[Any]]  # noqa: UP007 (runtime alias on 3.10)

#: One lock to register: name, order, description and an existing lock (or None).
Entry = tuple[str, Union[int, None], str, Any]  # noqa: UP007


def check_policy(policy: object) -> None:
    """Raise :class:`ValueError` unless ``policy`` is one of the three policies."""
    if policy not in _POLICIES:
        raise ValueError(
            f"policy must be one of {', '.join(map(repr, _POLICIES))}, not {policy!r}"
        )


def check_seconds(value: Any, name: str = "timeout", forever: str = "None") -> float:
    """Return ``value``, a number of seconds >= 0, as a float.

    A number too large for a float (``10**400``) is ``math.inf``: as a
    duration it means as long as it takes. The caller handles its own
    "forever" value (``forever``, named in the messages) before calling this.

    :raises TypeError: for anything but a real number (a bool is not one)
    :raises ValueError: for a negative number or NaN
    """
    if value.__class__ is not float and (
        isinstance(value, bool) or not isinstance(value, numbers.Real)
    ):
        raise TypeError(
            f"{name} must be a number of seconds or {forever}, "
            f"not {type(value).__name__} ({value!r})"
        )
    if value < 0 or value != value:  # negative, or NaN
        raise ValueError(
            f"{name} must be a number of seconds >= 0 or {forever}, not {value!r}"
        )
    try:
        return float(value)
    except OverflowError:  # an int (or Fraction) beyond any float
        return math.inf


def check_threshold(threshold: Any) -> float:
    """Return ``long_hold_threshold`` as a float, ``inf`` for ``None``.

    :raises ValueError: for anything but ``None`` or a number >= 0
    """
    if threshold is None:
        return math.inf
    try:
        return check_seconds(threshold, "long_hold_threshold")
    except TypeError as exc:
        raise ValueError(str(exc)) from None


def check_blocking(blocking: object) -> None:
    """Raise :class:`TypeError` unless ``blocking`` is ``True`` or ``False``."""
    if blocking is not True and blocking is not False:
        raise TypeError(
            f"blocking must be a bool, not {type(blocking).__name__} ({blocking!r})"
        )


def check_name(name: object) -> None:
    """Raise :class:`TypeError` unless ``name`` can be a lock's name (a str)."""
    if not isinstance(name, str):
        raise TypeError(
            f"a lock name must be a str, not {type(name).__name__} ({name!r})"
        )


def check_entry(name: object, order: object, description: object) -> None:
    """Raise :class:`TypeError` or :class:`ValueError` for a bad registration."""
    if not isinstance(name, str):
        raise TypeError(f"a lock name must be a str, not {type(name).__name__}")
    if not name:
        raise ValueError("a lock name must not be empty")
    if order is not None and (isinstance(order, bool) or not isinstance(order, int)):
        raise TypeError(
            f"the order of lock {name!r} must be an int or None, "
            f"not {type(order).__name__}"
        )
    if not isinstance(description, str):
        raise TypeError(
            f"the description of lock {name!r} must be a str, "
            f"not {type(description).__name__}"
        )


def _entry_from_value(name: object, value: object) -> Entry:
    """One entry of a mapping hierarchy: ``name: order``, ``(order, desc)``..."""
    if value is None or isinstance(value, int):
        order, description = value, ""
    elif isinstance(value, tuple) and 1 <= len(value) <= 2:
        order = value[0]
        description = value[1] if len(value) == 2 else ""
    elif isinstance(value, Mapping):
        unknown = set(value) - {"order", "description"}
        if unknown or "order" not in value:
            raise ValueError(
                f"the entry of lock {name!r} must have the key 'order' and "
                f"optionally 'description'; got keys {sorted(map(str, value))}"
            )
        order, description = value["order"], value.get("description", "")
    else:
        raise TypeError(
            f"the entry of lock {name!r} must be an order (int or None), an "
            f"(order, description) tuple or a mapping, not {type(value).__name__}"
        )
    check_entry(name, order, description)
    return (name, order, description, None)  # type: ignore[return-value]


def _entry_from_item(item: object) -> Entry:
    """One entry of a sequence hierarchy: ``(name, order[, desc])`` or a dict."""
    if isinstance(item, tuple) and 2 <= len(item) <= 3:
        name, order = item[0], item[1]
        description = item[2] if len(item) == 3 else ""
    elif isinstance(item, Mapping):
        unknown = set(item) - {"name", "order", "description"}
        if unknown or "name" not in item or "order" not in item:
            raise ValueError(
                "each lock of a hierarchy list must have the keys 'name' and "
                f"'order' and optionally 'description'; got keys "
                f"{sorted(map(str, item))}"
            )
        name, order = item["name"], item["order"]
        description = item.get("description", "")
    else:
        raise TypeError(
            "each lock of a hierarchy list must be a (name, order) or "
            "(name, order, description) tuple or a mapping, "
            f"not {type(item).__name__}"
        )
    check_entry(name, order, description)
    return (name, order, description, None)


def parse_hierarchy(hierarchy: LockHierarchy) -> list[Entry]:
    """Turn any accepted hierarchy form into ``(name, order, desc, None)`` entries.

    >>> parse_hierarchy({"db": 10, "cache": (20, "the cache")})
    [('db', 10, '', None), ('cache', 20, 'the cache', None)]
    """
    if isinstance(hierarchy, Mapping):
        return [_entry_from_value(name, value) for name, value in hierarchy.items()]
    if isinstance(hierarchy, (str, bytes)) or not isinstance(hierarchy, Iterable):
        raise TypeError(
            "a lock hierarchy must be a mapping of names to orders or a list "
            f"of (name, order[, description]) entries, not {type(hierarchy).__name__}"
        )
    return [_entry_from_item(item) for item in hierarchy]
