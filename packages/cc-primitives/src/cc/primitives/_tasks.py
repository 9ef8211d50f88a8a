"""Cheap identification of the running task, whatever the async backend.

Reentrant locks and capacity limiters must know *which task* is calling on
every acquire and release, so this lookup sits on the hottest path of the
package. ``anyio.get_current_task()`` builds a ``TaskInfo`` object on each call
(about 2 µs), which alone would cost more than an uncontended ``asyncio.Lock``.
Like anyio's own backends, we therefore ask the running backend for its native
task object directly: asyncio and trio are looked up through ``sys.modules``
(never imported here, so cc.primitives stays backend neutral and does not pull
either library in); any other anyio backend falls back to
``anyio.get_current_task().id``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

import anyio

__all__ = ["current_task_key", "task_info", "task_name"]

# Resolved on first use once asyncio has been imported by whoever runs it;
# module-level references save several lookups per call on the hot path.
_asyncio_running_loop: Callable[[], object] | None = None
_asyncio_current_task: Callable[[object], object] | None = None


def _resolve_asyncio() -> bool:
    global _asyncio_running_loop, _asyncio_current_task
    aio: Any = sys.modules.get("asyncio")
    if aio is None:
        return False
    _asyncio_running_loop = aio._get_running_loop
    _asyncio_current_task = aio.current_task
    return True


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
    running_loop = _asyncio_running_loop
    if running_loop is not None or _resolve_asyncio():
        loop = _asyncio_running_loop()  # type: ignore[misc]
        if loop is not None:
            task = _asyncio_current_task(loop)  # type: ignore[misc]
            if task is not None:
                return task
    trio: Any = sys.modules.get("trio")
    if trio is not None:
        try:
            return trio.lowlevel.current_task()
        except RuntimeError:
            pass
    try:
        return anyio.get_current_task().id
    except Exception as exc:  # no backend is running in this thread
        raise RuntimeError(
            "this operation must be called from inside an async task "
            "(asyncio, trio or another anyio backend)"
        ) from exc


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
