"""The cc concurrency toolkit: every public name of the four cc packages."""

from cc.concurrency.__about__ import __version__
from cc.primitives import (
    CapacityLimiter,
    ConcurrencyError,
    Condition,
    Event,
    Lock,
    RateLimiter,
    Semaphore,
)

__all__ = [
    "__version__",
    "CapacityLimiter",
    "ConcurrencyError",
    "Condition",
    "Event",
    "Lock",
    "RateLimiter",
    "Semaphore",
]
