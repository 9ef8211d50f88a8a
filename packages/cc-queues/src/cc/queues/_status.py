"""The lifecycle states of a queue, and the error for a state that refuses a call."""

from __future__ import annotations

from enum import Enum

from cc.primitives import ConcurrencyError

__all__ = ["QueueStateError", "QueueStatus"]


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


class QueueStateError(ConcurrencyError, RuntimeError):
    """An operation was attempted in a queue state that does not allow it.

    Raised, for example, by :meth:`BoundedQueue.put` on a queue that is not
    :attr:`QueueStatus.PROCESSING`, by a producer or consumer that was waiting
    when the queue stopped, or by :meth:`BoundedQueue.stop` called from a task
    other than the one that started the queue.

    It is a :class:`RuntimeError` (and a :class:`cc.primitives.ConcurrencyError`),
    so existing ``except RuntimeError`` clauses keep working.

    :param message: what went wrong and what is allowed instead
    :param current_state: the queue's status when the error was raised
    :ivar current_state: the queue's status when the error was raised

    >>> from cc.queues import QueueStateError, QueueStatus
    >>> error = QueueStateError("the queue is not running", QueueStatus.IDLE)
    >>> error.current_state
    <QueueStatus.IDLE: 'idle'>
    >>> isinstance(error, RuntimeError)
    True
    """

    current_state: QueueStatus

    def __init__(self, message: str, current_state: QueueStatus) -> None:
        super().__init__(message)
        self.current_state = current_state

    def __reduce__(self) -> tuple[type[QueueStateError], tuple[str, QueueStatus]]:
        # Exceptions pickle their ``args`` only; keep ``current_state`` too.
        return type(self), (str(self), self.current_state)
