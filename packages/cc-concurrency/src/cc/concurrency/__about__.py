"""Version of the cc-concurrency distribution (its single source)."""

__version__ = "0.1.0"
