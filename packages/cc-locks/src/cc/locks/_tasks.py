"""Identify the running task cheaply, whatever the async backend.

The async manager needs the calling task on every acquisition. The backends
are looked up through ``sys.modules`` and never imported here, so the module
stays backend neutral; any other anyio backend falls back to
``anyio.get_current_task()``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import anyio

__all__ = ["current_task", "describe_task"]


# asyncio's lookups, bound on first use after whoever runs asyncio imported it.
_running_loop: Callable[[], object] | None = None
_loop_task: Callable[[object], object] | None = None


def _bind_asyncio() -> bool:
    global _running_loop, _loop_task
    aio: Any = sys.modules.get("asyncio")
    if aio is None:
        return False
    _running_loop, _loop_task = aio._get_running_loop, aio.current_task
    return True


def current_task() -> object:
    """Return an object that identifies the running task.

    :raises RuntimeError: outside of a running task
    """
    if _running_loop is not None or _bind_asyncio():
        loop = _running_loop()  # type: ignore[misc]
        if loop is not None:
            task = _loop_task(loop)  # type: ignore[misc]
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
    except Exception as exc:
        raise RuntimeError(
            "AsyncLockManager must be used from inside an async task "
            "(asyncio, trio or another anyio backend)"
        ) from exc


def describe_task(task: object) -> str:
    """Return a readable name for an object returned by :func:`current_task`."""
    get_name = getattr(task, "get_name", None)  # asyncio.Task
    if callable(get_name):
        return str(get_name())
    name = getattr(task, "name", None)  # trio.lowlevel.Task
    if isinstance(name, str):
        return name
    return f"task {task!r}"
