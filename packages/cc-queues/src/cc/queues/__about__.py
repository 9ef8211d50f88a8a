"""Version of the cc-queues distribution (its single source)."""

__version__ = "0.1.0"
