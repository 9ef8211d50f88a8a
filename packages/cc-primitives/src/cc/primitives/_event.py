"""A one-shot event that any number of tasks can wait for."""

from __future__ import annotations

from dataclasses import dataclass

from anyio.lowlevel import checkpoint

from cc.primitives._parking import ParkingLot

__all__ = ["Event", "EventStatistics"]


@dataclass(frozen=True)
class EventStatistics:
    """A snapshot of an :class:`Event`'s state.

    :ivar is_set: whether the event has been set
    :ivar tasks_waiting: how many tasks are blocked in :meth:`Event.wait`
    """

    is_set: bool
    tasks_waiting: int


class Event:
    """A flag that tasks can wait for; once set, it stays set.

    Unlike :class:`anyio.Event`, it can be created outside of a running event
    loop (at import time, in a constructor) and bound to whichever backend
    first waits on it.

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

    __slots__ = ("_flag", "_waiters")

    def __init__(self) -> None:
        self._flag = False
        self._waiters = ParkingLot()

    def __repr__(self) -> str:
        state = "set" if self._flag else "unset"
        return f"<{type(self).__name__} {state} waiting={len(self._waiters)}>"

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
        """Wait until the event is set; return at once (after a checkpoint) if it is."""
        if self._flag:
            await checkpoint()
            return
        await self._waiters.park()

    def statistics(self) -> EventStatistics:
        """Return whether the event is set and how many tasks wait for it."""
        return EventStatistics(is_set=self._flag, tasks_waiting=len(self._waiters))
