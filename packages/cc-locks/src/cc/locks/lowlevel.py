"""What a lock store builds on: the interface a shared store implements.

For sibling packages (cc-redis) that give the lock managers a ``backend=``;
applications do not need it. A store gives each manager a
:class:`StoreSession`; its operations are generators of steps (:class:`Call`,
:class:`Pause`, :class:`Shielded`) that the thread manager performs by
blocking and the task manager by awaiting, so that a store writes each
operation once. See :mod:`cc.locks._store` for the rules.
"""

from cc.locks._records import format_site
from cc.locks._store import (
    AWAIT,
    DIRECT,
    IN_THREAD,
    Call,
    LockStore,
    Pause,
    RemoteHolder,
    Reporter,
    Shielded,
    Steps,
    StoreSession,
)

__all__ = [
    "AWAIT",
    "DIRECT",
    "IN_THREAD",
    "Call",
    "LockStore",
    "Pause",
    "RemoteHolder",
    "Reporter",
    "Shielded",
    "Steps",
    "StoreSession",
    "format_site",
]
