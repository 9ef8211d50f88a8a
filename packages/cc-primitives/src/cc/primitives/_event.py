"""A one-shot event that any number of tasks can wait for."""

from __future__ import annotations

from dataclasses import dataclass

import anyio

from cc.primitives._checkpoints import checkpoint, checkpoint_due
from cc.primitives._parking import ParkingLot

__all__ = ["Event", "EventStatistics"]


@dataclass(frozen=True)
class EventStatistics(anyio.EventStatistics):
    """A snapshot of an :class:`Event`'s state (an :class:`anyio.EventStatistics`).

    :ivar tasks_waiting: how many tasks are blocked in :meth:`Event.wait`
    :ivar is_set: whether the event has been set
    """

    is_set: bool


class Event:
    """A flag that tasks can wait for; once set, it stays set.

    It can be created outside of a running event loop (at import time, in a
    constructor) and serves whichever backend first waits on it. It is a
    drop-in for :class:`anyio.Event`.

    >>> import anyio
    >>> from cc.primitives import Event
    >>> async def main() -> bool:
    ...     event = Event()
    ...     async with anyio.create_task_group() as tg:
    ...         tg.start_soon(event.wait)
    ...         event.set()
    ...     return event.is_set()
    >>> anyio.run(main)
    True
    """

    __slots__ = ("__weakref__", "_flag", "_waiters")

    def __init__(self) -> None:
        self._flag = False
        self._waiters = ParkingLot()

    def __repr__(self) -> str:
        state = "set" if self._flag else "unset"
        return f"<{type(self).__name__} {state} waiting={self._waiters.parked}>"

    def set(self) -> None:
        """Set the event and wake every waiting task. Idempotent."""
        if self._flag:
            return
        self._flag = True
        self._waiters.unpark_all()

    def is_set(self) -> bool:
        """Return whether the event has been set."""
        return self._flag

    async def wait(self) -> None:
        """Wait until the event is set.

        If it is set already, return at once, following cc's checkpoint rule
        (see the primitives guide).
        """
        if not self._flag:
            await self._waiters.park()
        elif checkpoint_due():
            await checkpoint()

    def statistics(self) -> EventStatistics:
        """Return whether the event is set and how many tasks wait for it."""
        return EventStatistics(tasks_waiting=self._waiters.parked, is_set=self._flag)
