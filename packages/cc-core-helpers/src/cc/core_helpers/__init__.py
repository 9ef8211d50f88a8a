"""Public API of the cc-core-helpers distribution (filled in as the package lands)."""

from cc.core_helpers.__about__ import __version__ as __version__

__all__: list[str] = []
