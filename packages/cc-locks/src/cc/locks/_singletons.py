"""The process-wide lock managers."""

from __future__ import annotations

import threading
from typing import Any

from cc.locks._async import AsyncLockManager
from cc.locks._thread import LockManager
from cc.primitives.lowlevel import checkpoint, checkpoint_due

__all__ = ["get_async_lock_manager", "get_lock_manager"]

_managers: dict[type, Any] = {}
_creation = threading.Lock()  # concurrent first calls share one instance


def _the(kind: type[Any]) -> Any:
    manager = _managers.get(kind)
    if manager is None:
        with _creation:
            manager = _managers.get(kind)
            if manager is None:
                manager = _managers[kind] = kind()
    return manager


def get_lock_manager() -> LockManager:
    """Return the process-wide :class:`LockManager`, creating it on first use.

    Concurrent first calls get the same, fully built instance. Declare the
    hierarchy on it once with :meth:`LockManager.register_locks`;
    :meth:`LockManager.reset` empties it (for tests).

    >>> get_lock_manager() is get_lock_manager()
    True
    """
    manager: LockManager = _the(LockManager)
    return manager


async def get_async_lock_manager() -> AsyncLockManager:
    """Return the process-wide :class:`AsyncLockManager`, creating it on first use.

    Concurrent first calls (tasks or threads) get the same instance; its locks
    belong to one event loop at a time. :meth:`AsyncLockManager.reset`
    empties it (for tests).

    >>> import anyio
    >>> async def main() -> bool:
    ...     return await get_async_lock_manager() is await get_async_lock_manager()
    >>> anyio.run(main)
    True
    """
    if checkpoint_due():  # cc's checkpoint rule
        await checkpoint()
    manager: AsyncLockManager = _the(AsyncLockManager)
    return manager
