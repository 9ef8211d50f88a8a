"""cc's one checkpoint rule, implemented once for every package of the toolkit.

The rule and its bound are stated in the primitives guide ("When cc yields").
The count is per thread: a task that never yields is the only one running on
its thread, so one count per thread bounds every such task, even a loop over
many objects (one lock per key), which a count per object would not. A count
per task (a context variable) costs more per call; a module global is not
exact when event loops run in several threads.
"""

from __future__ import annotations

import itertools
import sys
import threading
from collections.abc import Awaitable, Iterator
from typing import Any

from anyio.lowlevel import checkpoint as _anyio_checkpoint

__all__ = [
    "CHECKPOINT_INTERVAL",
    "Rule",
    "checkpoint",
    "checkpoint_due",
    "checkpoint_rule",
    "take_checkpoint",
]

CHECKPOINT_INTERVAL = 64
"""N of the rule: every N-th cc operation on a thread that does not wait is a
full checkpoint (a few microseconds, about a tenth of one per call when spread
over 64 calls)."""

Rule = Iterator[bool]
"""A rule in its bound form: ``next(rule)`` spends a unit of a budget and
answers whether the operation must take a full checkpoint first."""


async def checkpoint() -> None:
    """Take a full checkpoint: check for cancellation, let other tasks run.

    It is :func:`anyio.lowlevel.checkpoint`, except that a trio task calls
    trio's own checkpoint directly (anyio's wrapper costs about as much again).
    """
    await _backend_checkpoint()


def _backend_checkpoint() -> Awaitable[None]:
    # Awaited directly by take_checkpoint(): one coroutine less per checkpoint.
    trio: Any = sys.modules.get("trio")
    if trio is not None and trio.lowlevel.in_trio_task():
        return trio.lowlevel.checkpoint()  # type: ignore[no-any-return]
    return _anyio_checkpoint()


class _PerThread(threading.local):
    # Each thread's budget: a cycle of answers, the last of every N True.
    # next() on a C iterator is cheaper than any call of a function; handed
    # out by checkpoint_rule(), it spares an object a thread lookup per call.

    def __init__(self) -> None:
        answers = (False,) * (CHECKPOINT_INTERVAL - 1) + (True,)
        self.ticks: Rule = itertools.cycle(answers)


_per_thread = _PerThread()
# The rules of fast_acquire=False (every call checkpoints) and True (never).
_ALWAYS: Rule = itertools.repeat(True)
_NEVER: Rule = itertools.repeat(False)


def checkpoint_due() -> bool:
    """Spend one unit of the running thread's budget; say whether to checkpoint now.

    Call it at the start of every async operation that follows cc's default
    rule, before the operation takes anything; when it returns ``True`` (every
    :data:`CHECKPOINT_INTERVAL`-th call on a thread), ``await checkpoint()``
    before going on. An object is cheaper with a rule from
    :func:`checkpoint_rule`, which counts on the same budget.

    >>> from cc.primitives.lowlevel import CHECKPOINT_INTERVAL, checkpoint_due
    >>> calls = [checkpoint_due() for _ in range(3 * CHECKPOINT_INTERVAL)]
    >>> calls.count(True)
    3
    """
    return next(_per_thread.ticks)


def checkpoint_rule(fast_acquire: bool | None) -> Rule:
    """Resolve a ``fast_acquire`` argument to the rule it names, in bound form.

    The rule is an iterator of answers: ``next(rule)`` says whether a call
    that does not have to wait must take a full checkpoint first.

    ======================  ====================================================
    ``fast_acquire``        ``next(rule)`` for a call that does not have to wait
    ======================  ====================================================
    ``None`` (cc default)   spends a unit of the thread's budget, as
                            :func:`checkpoint_due` does: ``True`` on every
                            :data:`CHECKPOINT_INTERVAL`-th call on the thread
    ``False``               always ``True``: every call is a checkpoint
                            (anyio's and trio's default)
    ``True``                always ``False``: never yields (anyio's opt-in)
    ======================  ====================================================

    For ``None`` the rule is the calling thread's budget itself;
    :func:`take_checkpoint` re-binds it to the thread that runs the object.
    Store the result at construction and start each async operation with::

        if next(self._due):
            self._due = await take_checkpoint(self._due)

    :param fast_acquire: ``None``, ``True`` or ``False``
    :raises TypeError: for anything else

    >>> from cc.primitives.lowlevel import checkpoint_rule
    >>> [next(checkpoint_rule(False)), next(checkpoint_rule(True))]
    [True, False]
    """
    if fast_acquire is None:
        return _per_thread.ticks
    if fast_acquire is True:
        return _NEVER
    if fast_acquire is False:
        return _ALWAYS
    raise TypeError(f"fast_acquire must be True, False or None, not {fast_acquire!r}")


async def take_checkpoint(rule: Rule) -> Rule:
    """Take the full checkpoint that ``next(rule)`` asked for; return the rule to keep.

    That is the rule itself, or for cc's default rule, the budget of the
    thread running now: an object created on one thread and used on another
    counts on its own thread's budget from its first checkpoint there on.

    :param rule: a rule from :func:`checkpoint_rule` that just answered ``True``
    """
    await _backend_checkpoint()
    if rule is _ALWAYS or rule is _NEVER:
        return rule
    return _per_thread.ticks
