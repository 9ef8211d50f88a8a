"""The running event loop's clock and events, found cheaply.

``anyio.current_time()`` and ``anyio.Event()`` find the running backend on
every call (about 1 µs each: most of an uncontended rate-limited acquisition,
and of a wait in a parking lot). Each thread remembers instead how to read its
loop's clock and make its events, checks on each call that this loop still
runs here, and finds the ways anew when it does not. Backends are looked up in
``sys.modules``, never imported.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

import anyio

__all__ = ["current_time", "new_event"]

Clock = Callable[[], float]
EventFactory = Callable[[], anyio.Event]

# Each thread's ``clock`` and ``event`` (a factory), found together.
_per_thread = threading.local()
if hasattr(os, "register_at_fork"):  # a child process starts afresh
    os.register_at_fork(after_in_child=lambda: vars(_per_thread).clear())


class _Stale(Exception):
    """What this thread remembered belongs to a loop that no longer runs here."""


def current_time() -> float:
    """Return the running event loop's time, as :func:`anyio.current_time` does.

    :raises RuntimeError: outside of a running event loop
    """
    try:
        return _per_thread.clock()  # type: ignore[no-any-return]
    except (AttributeError, RuntimeError, _Stale):  # none yet, or stale
        _find_backend()
        return _per_thread.clock()  # type: ignore[no-any-return]


def new_event() -> anyio.Event:
    """Return a new :class:`anyio.Event` of the running backend, as ``anyio.Event()``.

    :raises RuntimeError: outside of a running event loop
    """
    try:
        return _per_thread.event()  # type: ignore[no-any-return]
    except (AttributeError, RuntimeError, _Stale):  # none yet, or stale
        _find_backend()
        return _per_thread.event()  # type: ignore[no-any-return]


def _find_backend() -> None:
    aio: Any = sys.modules.get("asyncio")
    loop = None if aio is None else aio._get_running_loop()
    if loop is not None and aio.current_task(loop) is not None:
        _per_thread.clock, _per_thread.event = _asyncio_ways(aio, loop)
        return
    trio: Any = sys.modules.get("trio")
    if trio is not None and trio.lowlevel.in_trio_task():
        _per_thread.clock, _per_thread.event = _trio_ways(trio)
        return
    anyio.current_time()  # raises outside an event loop
    _per_thread.clock, _per_thread.event = anyio.current_time, anyio.Event


def _asyncio_ways(aio: Any, loop: Any) -> tuple[Clock, EventFactory]:
    time = loop.time
    event_class = type(anyio.Event())
    # Is this loop still the one running here? On 3.12+ asyncio answers in C
    # cheaply; before, asking costs a getpid() system call, and asyncio's
    # table of current tasks answers instead.
    if sys.version_info >= (3, 12):
        running_loop = aio._get_running_loop

        def clock() -> float:
            if running_loop() is not loop:
                raise _Stale
            return time()  # type: ignore[no-any-return]

        def event() -> anyio.Event:
            if running_loop() is not loop:
                raise _Stale
            return event_class()

    else:
        task_of = functools.partial(aio.tasks._current_tasks.get, loop)

        def clock() -> float:
            if task_of() is None:
                raise _Stale
            return time()  # type: ignore[no-any-return]

        def event() -> anyio.Event:
            if task_of() is None:
                raise _Stale
            return event_class()

    return clock, event


def _trio_ways(trio: Any) -> tuple[Clock, EventFactory]:
    in_trio_task = trio.lowlevel.in_trio_task
    event_class = type(anyio.Event())

    def event() -> anyio.Event:
        if not in_trio_task():
            raise _Stale
        return event_class()

    # trio.current_time raises RuntimeError outside a run, and always reads
    # the clock of the run in progress (a virtual one included)
    return trio.current_time, event
