"""The running backend's task, clock and events, found cheaply.

Locks and capacity limiters ask *which task* calls on every acquire and
release, so this lookup is on the hottest path. ``anyio.get_current_task()``
builds a ``TaskInfo`` on each call (about 2 µs, more than an uncontended
``asyncio.Lock``); ``anyio.current_time()`` and ``anyio.Event()`` find the
running backend on every call (about 1 µs each: most of an uncontended
rate-limited acquisition, and of a wait in a parking lot). Like anyio's own
backends, we ask the running backend directly instead: asyncio and trio are
found in ``sys.modules``, never imported; other anyio backends are asked
through anyio.

Each thread remembers how to ask (``fetch`` a task, read the ``clock``, make
an ``event``), found together and found again whenever one of them stops
answering (the thread now runs another loop or backend). On Python 3.10 and
3.11, asking asyncio for the running loop costs a ``getpid()`` system call;
there the fetcher reads the task of the loop found running from asyncio's
table of current tasks, which names a task only while it runs a step of that
loop, so a fetcher left from a stopped loop answers ``None`` and is replaced.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

import anyio

__all__ = ["current_task_key", "current_time", "new_event", "task_info", "task_name"]

Fetcher = Callable[[], object]
Clock = Callable[[], float]
EventFactory = Callable[[], anyio.Event]
Ways = tuple[Fetcher, Clock, EventFactory]

# Each thread's ``fetch``, ``clock`` and ``event`` (a factory), found together.
_per_thread = threading.local()
if hasattr(os, "register_at_fork"):  # a child process starts afresh
    os.register_at_fork(after_in_child=lambda: vars(_per_thread).clear())


class _Stale(Exception):
    """What this thread remembered belongs to a loop that no longer runs here."""


def current_task_key() -> object:
    """Return an object that identifies the running task, cheaply.

    The object is the backend's own task (an :class:`asyncio.Task`, a
    ``trio.lowlevel.Task``) or, on other anyio backends, the task id from
    :func:`anyio.get_current_task`. Compare keys with ``is`` or ``==``; they
    are hashable. This is what :class:`Lock` and :class:`CapacityLimiter` use
    to know their owner; other packages use it for the same purpose.

    :raises RuntimeError: if called outside of a running task.

    >>> import anyio
    >>> from cc.primitives import current_task_key, task_name
    >>> async def main() -> str:
    ...     assert current_task_key() is current_task_key()
    ...     return task_name(current_task_key())
    >>> isinstance(anyio.run(main), str)
    True
    """
    try:
        task = _per_thread.fetch()
    except (AttributeError, RuntimeError):  # no fetcher yet, or a stale one
        task = None
    if task is None:
        _find_backend()
        task = _per_thread.fetch()
    return task


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
    trio: Any = sys.modules.get("trio")
    ways: Ways
    if loop is not None and aio.current_task(loop) is not None:
        ways = _asyncio_ways(aio, loop)
    elif trio is not None and trio.lowlevel.in_trio_task():
        ways = _trio_ways(trio)
    else:  # another backend, or none (a trio guest run on asyncio is trio's)
        try:
            anyio.get_current_task()
        except Exception as exc:
            raise RuntimeError(
                "this operation must be called from inside an async task "
                "(asyncio, trio or another anyio backend)"
            ) from exc
        ways = (lambda: anyio.get_current_task().id, anyio.current_time, anyio.Event)
    _per_thread.fetch, _per_thread.clock, _per_thread.event = ways


def _asyncio_ways(aio: Any, loop: Any) -> Ways:
    time = loop.time
    event_class = type(anyio.Event())
    # Is this loop still the one running here? On 3.12+ asyncio answers in C
    # cheaply; before, asking costs a getpid() system call, and asyncio's
    # table of current tasks answers instead.
    if sys.version_info >= (3, 12):
        fetch: Fetcher = aio.current_task  # all in C there
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
        fetch = task_of = functools.partial(aio.tasks._current_tasks.get, loop)

        def clock() -> float:
            if task_of() is None:
                raise _Stale
            return time()  # type: ignore[no-any-return]

        def event() -> anyio.Event:
            if task_of() is None:
                raise _Stale
            return event_class()

    return fetch, clock, event


def _trio_ways(trio: Any) -> Ways:
    in_trio_task = trio.lowlevel.in_trio_task
    event_class = type(anyio.Event())

    def event() -> anyio.Event:
        if not in_trio_task():
            raise _Stale
        return event_class()

    # trio.lowlevel.current_task() reads the task from trio's per-thread run
    # context; reading it there directly (C-level, raising AttributeError
    # outside a task) saves two Python calls. Should that private name move,
    # the public function serves.
    fetch: Fetcher = trio.lowlevel.current_task
    context = getattr(sys.modules.get("trio._core._run"), "GLOBAL_RUN_CONTEXT", None)
    if getattr(context, "task", None) is fetch():
        fetch = functools.partial(getattr, context, "task")
    # trio.current_time raises RuntimeError outside a run, and always reads
    # the clock of the run in progress (a virtual one included)
    return fetch, trio.current_time, event


def task_name(key: object) -> str:
    """Return a human-readable name for a key from :func:`current_task_key`.

    :param key: a task key (any other object is described by its ``repr``)
    """
    get_name = getattr(key, "get_name", None)  # asyncio.Task
    if callable(get_name):
        return str(get_name())
    name = getattr(key, "name", None)  # trio.lowlevel.Task
    if isinstance(name, str):
        return name
    return f"task {key!r}"


def task_info(key: object) -> anyio.TaskInfo:
    """Return anyio's :class:`~anyio.TaskInfo` for a key from :func:`current_task_key`.

    It is the object anyio itself gives for that task (equal to what
    :func:`anyio.get_current_task` returns inside it), so statistics that
    name a task read the same as anyio's.

    :raises LookupError: for a key of no running task on a backend other
        than asyncio and trio
    """
    task: Any = key
    if hasattr(task, "get_coro"):  # an asyncio task: anyio's own view of it
        backend = importlib.import_module("anyio._backends._asyncio")
        info_class = getattr(backend, "AsyncIOTaskInfo", None)
        if info_class is not None:
            return info_class(task)  # type: ignore[no-any-return]
        return anyio.TaskInfo(id(task), None, task.get_name(), task.get_coro())
    if hasattr(task, "parent_nursery"):  # a trio task
        backend = importlib.import_module("anyio._backends._trio")
        info_class = getattr(backend, "TrioTaskInfo", None)
        if info_class is not None:
            return info_class(task)  # type: ignore[no-any-return]
        nursery = task.parent_nursery
        parent = None if nursery is None else nursery.parent_task
        parent_id = None if parent is None else id(parent)
        return anyio.TaskInfo(id(task), parent_id, task.name, task.coro)
    for info in anyio.get_running_tasks():  # another backend: the key is the id
        if info.id == key:
            return info
    raise LookupError(f"no running task has the key {key!r}")
