"""Cheap identification of the running task, whatever the async backend.

Locks and capacity limiters ask *which task* calls on every acquire and
release, so this lookup is on the hottest path. ``anyio.get_current_task()``
builds a ``TaskInfo`` on each call (about 2 µs, more than an uncontended
``asyncio.Lock``); like anyio's own backends, we ask the running backend for
its native task instead (asyncio and trio found in ``sys.modules``, never
imported; other anyio backends through ``anyio.get_current_task().id``).

Each thread remembers how to ask (a *fetcher*), found again whenever it stops
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

__all__ = ["current_task_key", "task_info", "task_name"]

Fetcher = Callable[[], object]

# The fetcher of each thread, in its ``fetch`` attribute.
_per_thread = threading.local()
if hasattr(os, "register_at_fork"):  # a child process starts afresh
    os.register_at_fork(after_in_child=lambda: vars(_per_thread).pop("fetch", None))


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
        task = _find_fetcher()()
    return task


def _find_fetcher() -> Fetcher:
    """Find how to ask this thread's running backend for its task; remember it."""
    fetch = _asyncio_fetcher() or _trio_fetcher() or _anyio_fetcher()
    _per_thread.fetch = fetch
    return fetch


def _asyncio_fetcher() -> Fetcher | None:
    aio: Any = sys.modules.get("asyncio")
    if aio is None:
        return None
    loop = aio._get_running_loop()
    if loop is None or aio.current_task(loop) is None:
        return None  # no asyncio loop here, or a trio guest run on one
    if sys.version_info >= (3, 12):
        return aio.current_task  # type: ignore[no-any-return]  # all in C there
    fetch: Fetcher = functools.partial(aio.tasks._current_tasks.get, loop)
    return fetch


def _trio_fetcher() -> Fetcher | None:
    trio: Any = sys.modules.get("trio")
    if trio is None or not trio.lowlevel.in_trio_task():
        return None
    # trio.lowlevel.current_task() reads the task from trio's per-thread run
    # context; reading it there directly (C-level, raising AttributeError
    # outside a task) saves two Python calls. Should that private name move,
    # the public function serves.
    run: Any = sys.modules.get("trio._core._run")
    context = getattr(run, "GLOBAL_RUN_CONTEXT", None)
    if getattr(context, "task", None) is trio.lowlevel.current_task():
        fetch: Fetcher = functools.partial(getattr, context, "task")
        return fetch
    return trio.lowlevel.current_task  # type: ignore[no-any-return]


def _anyio_fetcher() -> Fetcher:
    try:
        anyio.get_current_task()
    except Exception as exc:  # no backend is running in this thread
        raise RuntimeError(
            "this operation must be called from inside an async task "
            "(asyncio, trio or another anyio backend)"
        ) from exc
    return lambda: anyio.get_current_task().id


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
