"""What ``cc.concurrency`` could not re-export, and the error that says why.

``cc.concurrency`` imports every public name of its four distributions. When
one of them is missing or broken, importing ``cc.concurrency`` must still
work: ``python -m cc.concurrency`` runs inside this package, and it is the
tool that explains the problem. So each re-export block records its
:class:`ImportError` here instead of raising, and using a name that could
not be imported raises an :class:`ImportError` that says which distribution
failed and how to check and repair the installation.
"""

from __future__ import annotations

from collections.abc import Collection

__all__ = ["failures", "missing_name_error", "record_failure"]

_failures: dict[str, str] = {}  # distribution -> why its module did not import


def record_failure(distribution: str, error: ImportError) -> None:
    """Remember that ``distribution``'s names could not be imported, and why."""
    _failures[distribution] = f"{type(error).__name__}: {error}"


def failures() -> dict[str, str]:
    """Return the distributions whose names are missing, with the reason."""
    return dict(_failures)


def missing_name_error(
    module: str, name: str, exported: Collection[str]
) -> ImportError | AttributeError:
    """Return the error for an attribute ``name`` that ``module`` does not have.

    A name that ``module`` exports but could not import gets an
    :class:`ImportError` naming the distributions that failed; any other name
    gets the usual :class:`AttributeError`.
    """
    if name in exported and _failures:
        broken = "; ".join(f"{dist} ({why})" for dist, why in sorted(_failures.items()))
        return ImportError(
            f"{module}.{name} is not available because these cc distributions "
            f"could not be imported: {broken}. Run `python -m {module}` to check "
            f"the installation; `pip install --upgrade cc-concurrency` repairs it.",
            name=module,
        )
    return AttributeError(f"module {module!r} has no attribute {name!r}")
