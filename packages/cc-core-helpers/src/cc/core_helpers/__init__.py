"""Structured async helpers that work on asyncio, uvloop and trio.

* :func:`async_gather`: await several awaitables concurrently; a failure
  cancels the others before it propagates (as itself); optional ``limit``.
* :func:`async_map`: call an async function over an iterable or async
  iterable with at most ``limit`` calls in flight, results in input order.
* :func:`async_wait_for`: await with a timeout that cancels the work and
  raises the builtin :class:`TimeoutError`.
* :func:`async_sleep`: a validated, cancellable sleep.
* :func:`async_run`: run an async function on asyncio, uvloop or trio.
* :class:`ValidationError`: raised for bad arguments; a
  :class:`~cc.primitives.ConcurrencyError` and a :class:`ValueError`.

Nothing any helper starts outlives the call: when it returns or raises, all
the work it ran has finished or been cancelled.
"""

from cc.core_helpers.__about__ import __version__ as __version__
from cc.core_helpers._errors import ValidationError
from cc.core_helpers._gather import async_gather
from cc.core_helpers._map import AsyncMap, async_map
from cc.core_helpers._run import async_run
from cc.core_helpers._time import async_sleep, async_wait_for

__all__ = [
    "async_gather",
    "async_map",
    "async_run",
    "async_sleep",
    "async_wait_for",
    "ValidationError",
    # the object async_map returns (awaitable and async iterable)
    "AsyncMap",
]
