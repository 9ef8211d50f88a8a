"""What a lock store builds on: the interface of ``backend=`` (for cc-redis).

Applications do not need this module. A store gives each manager a
:class:`StoreSession` whose operations are generators of steps
(:class:`Call`, :class:`Pause`, :class:`Shielded`): the thread manager
blocks on them and the task manager awaits them, so a store writes each
operation once. :func:`run` and :func:`arun` drive steps in a thread or a task;
:class:`TaskBoard` is where tasks sleep until a store wakes a key.
A session that is also a :class:`SharingSession` extends the managers'
deadlock detection across processes (:class:`RemoteWait`, :class:`SharedOrder`).
"""

from cc.locks._records import format_site
from cc.locks._steps import (
    AWAIT,
    DIRECT,
    IN_THREAD,
    Call,
    Pause,
    Shielded,
    Steps,
    TaskBoard,
    arun,
    run,
)
from cc.locks._store import (
    LockStore,
    RemoteHolder,
    RemoteWait,
    Reporter,
    SharedOrder,
    SharingSession,
    StoreSession,
)

__all__ = [
    "AWAIT", "DIRECT", "IN_THREAD", "Call", "LockStore", "Pause", "RemoteHolder",
    "RemoteWait", "Reporter", "SharedOrder", "SharingSession", "Shielded", "Steps",
    "StoreSession", "TaskBoard", "arun", "format_site", "run",
]  # fmt: skip
