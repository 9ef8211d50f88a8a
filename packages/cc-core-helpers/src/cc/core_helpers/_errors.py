"""The error that every helper raises for bad input."""

from __future__ import annotations

from cc.primitives import ConcurrencyError

__all__ = ["ValidationError"]


class ValidationError(ConcurrencyError, ValueError):
    """An argument given to a :mod:`cc.core_helpers` function is not allowed.

    It is both a :class:`~cc.primitives.ConcurrencyError` (so ``except
    ConcurrencyError`` catches everything cc raises on purpose) and a
    :class:`ValueError` (so code written for the standard library keeps
    working). The message names the argument, what was wrong and what is
    allowed. Validation happens before any work starts: when a helper raises
    :class:`ValidationError`, nothing has run, and the coroutine objects passed
    to it have been closed so that Python does not warn that they were never
    awaited.

    >>> from cc.core_helpers import ValidationError
    >>> from cc.primitives import ConcurrencyError
    >>> issubclass(ValidationError, ConcurrencyError), issubclass(
    ...     ValidationError, ValueError
    ... )
    (True, True)
    """
