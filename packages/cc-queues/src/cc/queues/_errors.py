"""The error raised when a queue is used in a state that does not allow it."""

from __future__ import annotations

from cc.primitives import ConcurrencyError
from cc.queues._status import QueueStatus

__all__ = ["QueueStateError"]


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
