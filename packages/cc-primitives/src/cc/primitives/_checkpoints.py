"""cc's one checkpoint rule, implemented once for every package of the toolkit.

The rule (cc's default, ``fast_acquire=None``): *on each thread, every*
:data:`CHECKPOINT_INTERVAL` *-th cc async operation that does not have to
wait starts with a full checkpoint* (a cancellation check and a yield to the
event loop), before it takes anything. An operation that waits is a
checkpoint anyway. So a loop of cc calls that never wait yields at least once
every :data:`CHECKPOINT_INTERVAL` calls: a cancellation requested meanwhile
ends it at the next checkpoint, and within two checkpoints (at most
``2 * CHECKPOINT_INTERVAL`` calls) every other ready task has run and a
passed deadline has ended it (at the first one the event loop turns the
deadline into a cancellation, or trio may run the looping task first in its
batch; the second one settles it).

Why per thread: a task that never yields is the only task running on its
thread's event loop, so one count per thread bounds every such task, including
a loop that cycles over many objects (one lock per key), which a count per
object would not. Tasks of one thread share the count, which only ever makes a
checkpoint come sooner. A count per task (a context variable) or a module
global were measured too: the first costs more on every call, the second is
not exact when event loops run in several threads.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

from anyio.lowlevel import checkpoint as checkpoint

__all__ = [
    "CHECKPOINT_INTERVAL",
    "always_due",
    "checkpoint",
    "checkpoint_due",
    "checkpoint_rule",
    "never_due",
]

CHECKPOINT_INTERVAL = 64
"""N of the rule: every N-th cc operation on a thread that does not wait is a
full checkpoint (64 keeps the amortized cost of a checkpoint, a few
microseconds, near 5% of an uncontended lock)."""


# Each thread gets its own cycle of CHECKPOINT_INTERVAL answers, the last one
# True: calling its (C-level) __next__ is the cheapest per-thread count there is.
_per_thread = threading.local()


def _new_cycle() -> Callable[[], bool]:
    answers = (False,) * (CHECKPOINT_INTERVAL - 1) + (True,)
    return itertools.cycle(answers).__next__


def checkpoint_due() -> bool:
    """Spend one unit of the running thread's budget; say whether to checkpoint now.

    Call it once at the start of every async operation that follows cc's
    default rule, before the operation takes anything; when it returns
    ``True`` the caller must ``await checkpoint()`` before going on. Every
    :data:`CHECKPOINT_INTERVAL`-th call on a thread returns ``True``. It never
    awaits, so a fast path pays one cheap call when no checkpoint is due.

    >>> from cc.primitives.lowlevel import CHECKPOINT_INTERVAL, checkpoint_due
    >>> calls = [checkpoint_due() for _ in range(3 * CHECKPOINT_INTERVAL)]
    >>> calls.count(True)
    3
    """
    try:
        return _per_thread.tick()  # type: ignore[no-any-return]
    except AttributeError:  # the first call on this thread
        tick = _per_thread.tick = _new_cycle()
        return tick()


def always_due() -> bool:
    """Answer ``True``: the rule of ``fast_acquire=False``, every call checkpoints."""
    return True


def never_due() -> bool:
    """Answer ``False``: the rule of ``fast_acquire=True``, yield only to wait."""
    return False


def checkpoint_rule(fast_acquire: bool | None) -> Callable[[], bool]:
    """Resolve a ``fast_acquire`` argument to the function that applies its rule.

    ======================  ====================================================
    ``fast_acquire``        rule for a call that does not have to wait
    ======================  ====================================================
    ``None`` (cc default)   :func:`checkpoint_due`: a checkpoint every
                            :data:`CHECKPOINT_INTERVAL`-th call on the thread
    ``False``               :func:`always_due`: every call is a checkpoint
                            (anyio's and trio's default)
    ``True``                :func:`never_due`: never yields (anyio's opt-in)
    ======================  ====================================================

    Store the result at construction and call it at the start of each async
    operation: ``if self._due(): await checkpoint()``.

    :param fast_acquire: ``None``, ``True`` or ``False``
    :raises TypeError: for anything else
    """
    if fast_acquire is None:
        return checkpoint_due
    if fast_acquire is True:
        return never_due
    if fast_acquire is False:
        return always_due
    raise TypeError(f"fast_acquire must be True, False or None, not {fast_acquire!r}")
