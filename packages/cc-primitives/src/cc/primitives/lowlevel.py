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

**The checkpoint rule** (written once, in the primitives guide): every async
operation spends a unit of its thread's budget at its start, before it takes
anything, and takes a full checkpoint (cancellation check + yield) when told
to: every :data:`CHECKPOINT_INTERVAL`-th operation on a thread that does not
wait is one, so no loop of cc calls starves the event loop or outlives its
deadline by more than two checkpoints (twice that many calls). A function
spends with :func:`checkpoint_due` and then ``await checkpoint()``; an object
resolves its ``fast_acquire`` once with :func:`checkpoint_rule` into a rule
in bound form, an iterator that ``next()`` spends (cheaper per call than any
function), and uses :func:`take_checkpoint`. Neither awaits anything when no
checkpoint is due.
Operations that park need nothing more: parking is a checkpoint.

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

from cc.primitives._checkpoints import (
    CHECKPOINT_INTERVAL,
    checkpoint,
    checkpoint_due,
    checkpoint_rule,
    take_checkpoint,
)
from cc.primitives._parking import ParkingLot
from cc.primitives._tasks import current_task_key, task_name

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
