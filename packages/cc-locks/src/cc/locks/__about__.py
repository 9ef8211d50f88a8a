"""Version of the cc-locks distribution (its single source)."""

__version__ = "0.1.0"
