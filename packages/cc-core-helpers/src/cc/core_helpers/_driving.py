"""Driving an awaitable step by step, so that a helper sees when it first waits.

``await awaitable`` hides whether the awaitable finished at once or had to wait
for the event loop. :func:`~cc.core_helpers.async_wait_for` wants to know:
work that finishes without waiting needs no timer. So it advances the
awaitable's iterator itself with ``send(None)``; if it finishes, that is the
result; if it yields (it is waiting for the event loop), the yielded value is
handed on to the event loop unchanged by :func:`resume`, which then relays
everything the event loop sends or throws, exactly as ``await`` would. The
awaitable keeps running in the task that awaits the helper, as with ``await``.
"""

from __future__ import annotations

import types
from collections.abc import Awaitable, Generator
from typing import Any, Protocol, cast

__all__ = ["resume", "step_iterator"]


class Steps(Protocol):
    """What the event loop drives a task's coroutine through (send/throw/close)."""

    def send(self, value: Any, /) -> Any: ...

    def throw(self, exc: BaseException, /) -> Any: ...

    def close(self) -> None: ...


def _delegate(iterator: Any) -> Generator[Any, Any, Any]:
    # "yield from" gives any __await__ iterator (even one without send/throw)
    # the full generator protocol, with exactly the semantics of "await".
    return (yield from iterator)


def step_iterator(awaitable: object) -> Steps:
    """Return an object with ``send``/``throw``/``close`` that runs ``awaitable``.

    The caller has checked that ``awaitable`` is awaitable.
    """
    if type(awaitable) is types.CoroutineType:
        return awaitable  # the common case, checked first
    if type(awaitable) is types.GeneratorType:
        # A generator-based coroutine (@types.coroutine) is its own iterator.
        return awaitable
    return _delegate(cast("Awaitable[Any]", awaitable).__await__())


@types.coroutine
def resume(steps: Steps, pending: Any) -> Generator[Any, Any, Any]:
    """Continue ``steps``, which has just yielded ``pending``, to completion.

    Awaiting the result behaves exactly like having awaited the original
    awaitable from the start.
    """
    send = steps.send
    throw = steps.throw
    while True:
        try:
            sent = yield pending
        except GeneratorExit:
            steps.close()
            raise
        except BaseException as exc:
            try:
                pending = throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                pending = send(sent)
            except StopIteration as stop:
                return stop.value
