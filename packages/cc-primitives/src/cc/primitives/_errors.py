"""The error base shared by every cc distribution."""

from __future__ import annotations

__all__ = ["ConcurrencyError"]


class ConcurrencyError(Exception):
    """Base class of every error that cc raises on purpose.

    Each concrete cc error also derives from the builtin exception a caller
    would naturally catch (``ValueError``, ``RuntimeError``, ``TimeoutError``),
    so ``except ConcurrencyError`` catches everything cc raises deliberately
    while ``except ValueError`` keeps working too.
    """
