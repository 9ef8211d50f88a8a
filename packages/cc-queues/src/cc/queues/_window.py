"""A sliding-window limit on how many items start per window of time."""

from __future__ import annotations

from collections import deque

import anyio

from cc.primitives import Lock

__all__ = ["StartWindow"]


class StartWindow:
    """Let at most ``limit`` callers through in any ``window`` seconds.

    This is an exact sliding window (it remembers the last ``limit`` start
    times), not the smoothed average of :class:`cc.primitives.RateLimiter`,
    whose burst allowance could let up to twice ``limit`` through within one
    window; :class:`~cc.queues.WorkQueue` promises the exact bound. Callers
    that must wait are served in arrival order.
    """

    __slots__ = ("_limit", "_lock", "_starts", "_window")

    def __init__(self, limit: int, window: float) -> None:
        self._limit = limit
        self._window = window
        self._starts: deque[float] = deque(maxlen=limit)
        self._lock = Lock()

    @property
    def limit(self) -> int:
        """The most starts allowed in one window."""
        return self._limit

    @property
    def window(self) -> float:
        """The window length, in seconds."""
        return self._window

    async def wait_turn(self) -> None:
        """Wait until one more start fits in the window, then record it."""
        async with self._lock:
            starts = self._starts
            while len(starts) == self._limit:
                delay = starts[0] + self._window - anyio.current_time()
                if delay <= 0:
                    break
                await anyio.sleep(delay)
            # A full deque drops its oldest entry, now outside the window.
            starts.append(anyio.current_time())
