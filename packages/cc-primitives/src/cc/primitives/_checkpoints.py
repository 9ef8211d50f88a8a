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
import sys
import threading
from collections.abc import Callable
from typing import Any

from anyio.lowlevel import checkpoint as _anyio_checkpoint

__all__ = [
    "CHECKPOINT_INTERVAL",
    "always_due",
    "checkpoint",
    "checkpoint_due",
    "checkpoint_rule",
    "never_due",
    "take_checkpoint",
]

CHECKPOINT_INTERVAL = 64
"""N of the rule: every N-th cc operation on a thread that does not wait is a
full checkpoint. A checkpoint costs a few microseconds (a turn of the event
loop); spread over 64 calls, with the per-call count, it adds about 5% to an
uncontended lock (measured), and 64 back-to-back calls take a few tens of
microseconds."""

Rule = Callable[[], bool]


async def checkpoint() -> None:
    """Take a full checkpoint: check for cancellation, let other tasks run.

    It is :func:`anyio.lowlevel.checkpoint`, except that a trio task calls
    trio's own checkpoint directly (anyio's wrapper around it costs about as
    much again); trio is looked up, never imported.
    """
    trio: Any = sys.modules.get("trio")
    if trio is not None and trio.lowlevel.in_trio_task():
        await trio.lowlevel.checkpoint()
    else:
        await _anyio_checkpoint()


class _PerThread(threading.local):
    """Each thread's count: a cycle of answers, the last of every N ``True``.

    Calling the cycle's (C-level) ``__next__`` is the cheapest count there
    is; :func:`checkpoint_rule` hands it out bound, so that an object pays
    no thread lookup per call.
    """

    def __init__(self) -> None:
        answers = (False,) * (CHECKPOINT_INTERVAL - 1) + (True,)
        self.tick: Rule = itertools.cycle(answers).__next__


_per_thread = _PerThread()


def checkpoint_due() -> bool:
    """Spend one unit of the running thread's budget; say whether to checkpoint now.

    Call it once at the start of every async operation that follows cc's
    default rule, before the operation takes anything; when it returns
    ``True`` the caller must ``await checkpoint()`` before going on. Every
    :data:`CHECKPOINT_INTERVAL`-th call on a thread returns ``True``. It never
    awaits, so a fast path pays one cheap call when no checkpoint is due. An
    object that makes many calls is cheaper with a rule from
    :func:`checkpoint_rule`, which counts on the same budget.

    >>> from cc.primitives.lowlevel import CHECKPOINT_INTERVAL, checkpoint_due
    >>> calls = [checkpoint_due() for _ in range(3 * CHECKPOINT_INTERVAL)]
    >>> calls.count(True)
    3
    """
    return _per_thread.tick()


def always_due() -> bool:
    """Answer ``True``: the rule of ``fast_acquire=False``, every call checkpoints."""
    return True


def never_due() -> bool:
    """Answer ``False``: the rule of ``fast_acquire=True``, yield only to wait."""
    return False


def checkpoint_rule(fast_acquire: bool | None) -> Rule:
    """Resolve a ``fast_acquire`` argument to the function that applies its rule.

    ======================  ====================================================
    ``fast_acquire``        rule for a call that does not have to wait
    ======================  ====================================================
    ``None`` (cc default)   spend a unit of the thread's budget, as
                            :func:`checkpoint_due` does: a checkpoint every
                            :data:`CHECKPOINT_INTERVAL`-th call on the thread
    ``False``               :func:`always_due`: every call is a checkpoint
                            (anyio's and trio's default)
    ``True``                :func:`never_due`: never yields (anyio's opt-in)
    ======================  ====================================================

    For ``None`` the function is bound to the calling thread's budget, which
    saves a thread lookup per call; :func:`take_checkpoint` re-binds it to
    the thread that runs the object. Store the result at construction and
    start each async operation with::

        if self._due():
            self._due = await take_checkpoint(self._due)

    :param fast_acquire: ``None``, ``True`` or ``False``
    :raises TypeError: for anything else
    """
    if fast_acquire is None:
        return _per_thread.tick
    if fast_acquire is True:
        return never_due
    if fast_acquire is False:
        return always_due
    raise TypeError(f"fast_acquire must be True, False or None, not {fast_acquire!r}")


async def take_checkpoint(rule: Rule) -> Rule:
    """Take the full checkpoint that ``rule()`` asked for; return the rule to keep.

    That is the rule itself, or for cc's default rule, the one bound to the
    budget of the thread running now: an object created on one thread and
    used on another counts on its own thread's budget from its first
    checkpoint there on.

    :param rule: a function from :func:`checkpoint_rule` that just returned
        ``True``
    """
    await checkpoint()
    if rule is always_due or rule is never_due:
        return rule
    return _per_thread.tick
