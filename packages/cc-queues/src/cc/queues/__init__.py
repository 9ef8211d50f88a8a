"""Bounded async queues and worker pools, on asyncio, uvloop and trio.

* :class:`BoundedQueue`: a FIFO queue of at most ``maxsize`` items with
  backpressure (:meth:`~BoundedQueue.put` with a timeout), worker tasks that
  sleep until there is work, and a shutdown that hands back every item it
  did not process.
* :class:`WorkQueue`: a worker pool over a bounded queue, with a
  concurrency limit, an optional start-rate limit and
  :meth:`~WorkQueue.batch_process` for any iterable or async iterable.
* :class:`QueueConfig`: validated settings to build a :class:`WorkQueue`.
* :class:`QueueStatus`: the lifecycle states.
* :class:`QueueStateError`: an operation the queue's state does not allow.
* :class:`BatchSummary`: what :meth:`WorkQueue.batch_process` returns.
"""

from cc.queues.__about__ import __version__ as __version__
from cc.queues._batch import BatchSummary
from cc.queues._bounded import BoundedQueue
from cc.queues._config import QueueConfig
from cc.queues._status import QueueStateError, QueueStatus
from cc.queues._work import WorkQueue

__all__ = [
    "QueueStatus",
    "QueueConfig",
    "BoundedQueue",
    "WorkQueue",
    "QueueStateError",
    "BatchSummary",
]
