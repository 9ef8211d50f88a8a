"""The event loop's clock, read cheaply: what ``anyio.current_time()`` returns.

``anyio.current_time()`` finds the running backend on every call (about
1 µs, most of an uncontended rate-limited acquisition). Each thread remembers
its event loop's clock instead: asyncio's ``loop.time`` (after checking that
this loop still runs here) or ``trio.current_time`` (which reads the clock of
the trio run in progress, a virtual one included). A remembered clock that no
longer belongs to the running loop is noticed and replaced, so the time is
always the running loop's, as anyio's is. Backends are looked up in
``sys.modules``, never imported.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import Any

import anyio

__all__ = ["current_time"]

Clock = Callable[[], float]

_per_thread = threading.local()
if hasattr(os, "register_at_fork"):  # a child process starts afresh
    os.register_at_fork(after_in_child=lambda: vars(_per_thread).pop("clock", None))


class _StaleClock(Exception):
    """The remembered clock belongs to a loop that no longer runs here."""


def current_time() -> float:
    """Return the running event loop's time, as :func:`anyio.current_time` does.

    :raises RuntimeError: outside of a running event loop
    """
    try:
        return _per_thread.clock()  # type: ignore[no-any-return]
    except (AttributeError, RuntimeError, _StaleClock):  # none yet, or stale
        clock = _per_thread.clock = _find_clock()
        return clock()


def _find_clock() -> Clock:
    aio: Any = sys.modules.get("asyncio")
    loop = None if aio is None else aio._get_running_loop()
    if loop is not None and aio.current_task(loop) is not None:
        return _asyncio_clock(aio, loop)
    trio: Any = sys.modules.get("trio")
    if trio is not None and trio.lowlevel.in_trio_task():
        return trio.current_time  # type: ignore[no-any-return]
    anyio.current_time()  # raises outside an event loop
    return anyio.current_time


def _asyncio_clock(aio: Any, loop: Any) -> Clock:
    time = loop.time
    if sys.version_info >= (3, 12):
        running_loop = aio._get_running_loop  # C, and cheap there

        def clock() -> float:
            if running_loop() is not loop:
                raise _StaleClock
            return time()  # type: ignore[no-any-return]

    else:  # asyncio's table of current tasks: no getpid() system call
        task_of = aio.tasks._current_tasks.get

        def clock() -> float:
            if task_of(loop) is None:
                raise _StaleClock
            return time()  # type: ignore[no-any-return]

    return clock
