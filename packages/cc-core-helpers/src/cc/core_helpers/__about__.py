"""Version of the cc-core-helpers distribution (its single source)."""

__version__ = "0.1.0"
