"""Building blocks for sibling packages: waiting, the checkpoint rule, task identity.

cc's queues, lock managers and helpers are built from the same three pieces
as cc's primitives, so that each hard part exists once in the toolkit. This
module is public and stable for that purpose (and for anyone building their
own primitive); application code normally needs only :mod:`cc.primitives`.

**Waiting in line**: :class:`ParkingLot`. A task parks (first in, first
out) until another task wakes it with a value, handed over directly; a value
given to a task cancelled before it resumes goes to its ``hand_back``. A
typical "try without waiting, else park"::

    async def get(self) -> Item:
        if next(self._due):  # the checkpoint rule, below
            self._due = await take_checkpoint(self._due)
        if self._items and not self._getters:
            return self._items.popleft()
        return await self._getters.park(hand_back=self._give_back)

    def put_nowait(self, item: Item) -> None:
        if self._getters:
            self._getters.unpark(item)  # straight to the longest waiter
        else:
            self._items.append(item)

**The checkpoint rule** (stated in the primitives guide): every
:data:`CHECKPOINT_INTERVAL`-th async operation on a thread that does not
wait starts with a full checkpoint, before it takes anything. A function
spends its thread's budget with :func:`checkpoint_due` and then ``await
checkpoint()``; an object resolves its ``fast_acquire`` once with
:func:`checkpoint_rule` and uses :func:`take_checkpoint`. Neither awaits
anything when no checkpoint is due; operations that park need nothing more.

**Task identity**: :func:`current_task_key` (the backend's own task object,
cheap) and :func:`task_name`, for whatever is owned by a task.

>>> import anyio
>>> from cc.primitives.lowlevel import checkpoint, checkpoint_due
>>> async def main() -> int:
...     checkpoints = 0
...     for _ in range(1000):
...         if checkpoint_due():
...             await checkpoint()
...             checkpoints += 1
...     return checkpoints
>>> 15 <= anyio.run(main) <= 16  # 1000 // CHECKPOINT_INTERVAL, give or take one
True
"""

from cc.primitives._backend import current_task_key, task_name
from cc.primitives._checkpoints import (
    CHECKPOINT_INTERVAL,
    checkpoint,
    checkpoint_due,
    checkpoint_rule,
    take_checkpoint,
)
from cc.primitives._parking import ParkingLot

__all__ = [
    "CHECKPOINT_INTERVAL",
    "ParkingLot",
    "checkpoint",
    "checkpoint_due",
    "checkpoint_rule",
    "current_task_key",
    "take_checkpoint",
    "task_name",
]
