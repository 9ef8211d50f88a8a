"""Version of the cc-redis distribution (its single source)."""

__version__ = "0.1.0"
