"""Version of the cc-primitives distribution (its single source)."""

__version__ = "0.1.0"
