"""cc's checkpoint rule, as the helpers apply it.

The rule is written once, in :mod:`cc.primitives.lowlevel` (and the
primitives guide): every :data:`~cc.primitives.lowlevel.CHECKPOINT_INTERVAL`
-th cc operation on a thread that does not wait starts with a full
checkpoint, so no loop of cc calls starves the event loop or outlives its
deadline by more than two checkpoints. Each helper calls
:func:`checkpoint_due` at its start, before it starts any work, and when it
is due awaits :func:`checkpoint_closing`, which closes the coroutines the
helper was given if the checkpoint raises (a cancellation): they will never
run, and Python must not warn that they were never awaited.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cc.core_helpers._validation import close_coroutines
from cc.primitives.lowlevel import checkpoint, checkpoint_due

__all__ = ["checkpoint_closing", "checkpoint_due"]


async def checkpoint_closing(unstarted: Iterable[Any] = ()) -> None:
    """Await a full checkpoint; if it raises, close the ``unstarted`` coroutines."""
    try:
        await checkpoint()
    except BaseException:
        close_coroutines(unstarted)
        raise
