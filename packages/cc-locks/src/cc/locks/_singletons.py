"""The process-wide lock managers."""

from __future__ import annotations

import threading

from cc.locks._async import AsyncLockManager
from cc.locks._thread import LockManager

__all__ = ["get_async_lock_manager", "get_lock_manager"]

_lock_manager: LockManager | None = None
_async_lock_manager: AsyncLockManager | None = None
# Serialises the first calls, so that concurrent callers share one instance.
_creation = threading.Lock()


def get_lock_manager() -> LockManager:
    """Return the process-wide :class:`LockManager`, creating it on first use.

    Safe to call from many threads at once: they all get the same, fully
    constructed instance. Declare the application's lock hierarchy on it once
    with :meth:`LockManager.register_locks`; :meth:`LockManager.reset`
    empties it again (for tests).

    >>> get_lock_manager() is get_lock_manager()
    True
    """
    manager = _lock_manager
    if manager is None:
        manager = _create_lock_manager()
    return manager


def _create_lock_manager() -> LockManager:
    global _lock_manager
    with _creation:
        if _lock_manager is None:
            _lock_manager = LockManager()
        return _lock_manager


async def get_async_lock_manager() -> AsyncLockManager:
    """Return the process-wide :class:`AsyncLockManager`, creating it on first use.

    Safe to call from many tasks and threads at once: they all get the same,
    fully constructed instance. Its locks must be used from one event loop at
    a time; :meth:`AsyncLockManager.reset` empties it (for tests).

    >>> import anyio
    >>> async def main() -> bool:
    ...     return await get_async_lock_manager() is await get_async_lock_manager()
    >>> anyio.run(main)
    True
    """
    manager = _async_lock_manager
    if manager is None:
        manager = _create_async_lock_manager()
    return manager


def _create_async_lock_manager() -> AsyncLockManager:
    global _async_lock_manager
    with _creation:
        if _async_lock_manager is None:
            _async_lock_manager = AsyncLockManager()
        return _async_lock_manager
