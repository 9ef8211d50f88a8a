"""Building blocks for sibling packages: waiting, the checkpoint rule, task identity.

cc's queues, lock managers and helpers are built from the same three pieces
as cc's primitives, so that each hard part exists once in the toolkit. This
module is public and stable for that purpose (and for anyone building their
own primitive); application code normally needs only :mod:`cc.primitives`.

**Waiting in line**: :class:`ParkingLot`. A task parks (first in, first
out) until another task wakes it with a value (the ownership, token, item or
notification it waited for). The waker hands the value over directly, so no
task that runs in between can take it. When a woken task is cancelled before
it resumes, the lot calls the ``hand_back`` it was given, so the value is
passed on instead of lost. A typical "try without waiting, else park"::

    async def get(self) -> Item:
        if self._due():  # the checkpoint rule, below
            await checkpoint()
        if self._items and not self._getters:
            return self._items.popleft()
        return await self._getters.park(hand_back=self._give_back)

    def put_nowait(self, item: Item) -> None:
        if self._getters:
            self._getters.unpark(item)  # straight to the longest waiter
        else:
            self._items.append(item)

**The checkpoint rule** (written once, in the primitives guide): every async
operation calls the rule function it resolved from ``fast_acquire`` with
:func:`checkpoint_rule` at its start, before it takes anything, and awaits
:func:`checkpoint` when told to. cc's default is :func:`checkpoint_due`: every
:data:`CHECKPOINT_INTERVAL`-th operation on a thread that does not wait is a
full checkpoint (cancellation check + yield), so no loop of cc calls starves
the event loop or outlives its deadline by more than two checkpoints (twice
that many calls). Calling the rule never awaits, so a fast path that needs no
checkpoint stays cheap.
Operations that park need nothing more: parking is a checkpoint.

**Task identity**: :func:`current_task_key` (the backend's own task object,
cheap) and :func:`task_name`, for whatever is owned by a task.

>>> import anyio
>>> from cc.primitives.lowlevel import checkpoint, checkpoint_rule, current_task_key
>>> async def main() -> int:
...     due = checkpoint_rule(None)
...     checkpoints = 0
...     for _ in range(1000):
...         if due():
...             await checkpoint()
...             checkpoints += 1
...     return checkpoints
>>> 15 <= anyio.run(main) <= 16  # 1000 // CHECKPOINT_INTERVAL, give or take one
True
"""

from cc.primitives._checkpoints import (
    CHECKPOINT_INTERVAL,
    always_due,
    checkpoint,
    checkpoint_due,
    checkpoint_rule,
    never_due,
)
from cc.primitives._parking import ParkingLot
from cc.primitives._tasks import current_task_key, task_name

__all__ = [
    "CHECKPOINT_INTERVAL",
    "ParkingLot",
    "always_due",
    "checkpoint",
    "checkpoint_due",
    "checkpoint_rule",
    "current_task_key",
    "never_due",
    "task_name",
]
