"""The lifecycle states of a queue."""

from __future__ import annotations

from enum import Enum

__all__ = ["QueueStatus"]


class QueueStatus(str, Enum):
    """Where a queue is in its lifecycle.

    A queue is created :attr:`IDLE`; :meth:`~cc.queues.BoundedQueue.start`
    (or ``async with``) makes it :attr:`PROCESSING`;
    :meth:`~cc.queues.BoundedQueue.stop` moves it through :attr:`STOPPING`
    (no new items are accepted or handed out; workers finish the item in hand)
    to :attr:`STOPPED`. A stopped queue can be started again.

    The members are strings, so they compare equal to their values and
    serialize as such:

    >>> from cc.queues import QueueStatus
    >>> QueueStatus.PROCESSING == "processing"
    True
    >>> [status.value for status in QueueStatus]
    ['idle', 'processing', 'stopping', 'stopped']
    """

    IDLE = "idle"
    """Created, never started: ``put()`` and ``get()`` are refused."""

    PROCESSING = "processing"
    """Running: items are accepted, handed out and processed."""

    STOPPING = "stopping"
    """``stop()`` is in progress: workers finish their item, nothing new starts."""

    STOPPED = "stopped"
    """Stopped: every accepted item was processed or handed back."""
