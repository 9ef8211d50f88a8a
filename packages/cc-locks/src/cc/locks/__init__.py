"""Public API of the cc-locks distribution (filled in as the package lands)."""

from cc.locks.__about__ import __version__ as __version__

__all__: list[str] = []
