"""Public API of the cc-queues distribution (filled in as the package lands)."""

from cc.queues.__about__ import __version__ as __version__

__all__: list[str] = []
