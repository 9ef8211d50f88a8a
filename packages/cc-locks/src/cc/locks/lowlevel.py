"""What a lock store builds on: the interface of ``backend=`` (for cc-redis).

Applications do not need this module. A store gives each manager a
:class:`StoreSession`, which takes each lock with an owner token and a lease,
renews the leases, releases by owner only, wakes its waiters when a lock
frees and reports holders. Its operations are generators of steps
(:class:`Call`, :class:`Pause`, :class:`Shielded`): the thread manager blocks
on them and the task manager awaits them, so a store writes each operation
once. :func:`run` and :func:`arun` drive steps in a thread or a task;
:class:`TaskBoard` is where tasks sleep until a store wakes a key. A session
that is also a :class:`SharingSession` extends the managers' deadlock
detection across processes (:class:`RemoteWait`, :class:`SharedOrder`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from time import monotonic
from typing import Any, Protocol, runtime_checkable

from cc.locks import _errors
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

__all__ = [
    "AWAIT", "DIRECT", "IN_THREAD", "Call", "Lease", "LockStore", "Pause",
    "RemoteHolder", "RemoteWait", "Reporter", "SharedOrder", "SharingSession",
    "Shielded", "Steps", "StoreSession", "TaskBoard", "arun", "format_site", "run",
]  # fmt: skip


@dataclass(frozen=True)
class RemoteHolder:
    """Who holds a shared lock, as the store says (any process, any host)."""

    holder: str
    host: str
    pid: int | None
    since: float | None  # time.time() seconds, by the store's clock
    site: str | None
    fencing_token: int | None
    expires_in: float | None  # seconds left on its lease

    def describe(self) -> str:
        """Return e.g. ``task 'w1' (pid 4242 on db-7)``."""
        return f"{self.holder} (pid {self.pid} on {self.host})"


@dataclass(frozen=True)
class RemoteWait:
    """A waiter of a wait-for chain kept in a store (any process, any host).

    :ivar node: the waiter's identity in the store, unique among live holders
    :ivar lock: the name of the lock it waits for
    :ivar waiter: who waits: its ``since`` is when it began waiting for
        ``lock`` (a :func:`time.time` timestamp by the store's clock), its
        ``site`` where it asked
    """

    node: str
    lock: str
    waiter: RemoteHolder


@dataclass(frozen=True)
class SharedOrder:
    """A learned lock order shared through a store: ``after`` taken holding ``before``.

    :ivar holder: who did it, with its pid and host
    :ivar before_site: where ``before`` was taken (``file:line in function``)
    :ivar after_site: where ``after`` was taken
    """

    before: str
    after: str
    holder: str
    before_site: str | None
    after_site: str | None


class Lease:
    """One acquisition of a lock shared through a backend.

    The manager hands it out through ``lease(name)`` while the calling thread
    or task holds the lock.

    :ivar name: the lock's name
    :ivar token: the owner token of this acquisition (unique, random)
    :ivar fencing_token: grows with every acquisition of the lock, in every
        process: give it to the resource you protect with each write, and let
        it refuse a write with a smaller token than one it has seen
    :ivar acquired_at: when the lock was taken, a :func:`time.time` timestamp
        by the store's clock
    """

    __slots__ = ("_lost", "_until", "acquired_at", "fencing_token", "name", "token")

    def __init__(
        self, name: str, token: str, fencing_token: int, acquired_at: float,
        valid_until: float,
    ) -> None:  # fmt: skip
        self.name, self.token = name, token
        self.fencing_token, self.acquired_at = fencing_token, acquired_at
        self._until = valid_until  # monotonic(), by the last confirmation
        self._lost: str | None = None

    def __repr__(self) -> str:
        state = f"lost: {self._lost}" if self._lost else "held"
        return f"<Lease {self.name!r} fencing_token={self.fencing_token} {state}>"

    @property
    def lost(self) -> bool:
        """Whether the lease ended, or could not be confirmed in time (for good)."""
        return self._lost is not None

    @property
    def lost_reason(self) -> str | None:
        """Why the lease is considered lost, or ``None``."""
        return self._lost

    @property
    def expires_in(self) -> float:
        """Seconds the lease is known to last without another renewal."""
        return max(0.0, self._until - monotonic())

    def check(self) -> None:
        """Raise :class:`LockLostError` if the lease is lost; else do nothing.

        Call it before an action that must not run without the lock; the
        fencing token still protects the time between the check and the action.
        """
        if self._lost is not None:
            raise _errors.lost_error([(self.name, self._lost)])

    def confirm(self, valid_until: float) -> None:
        """Note a renewal until ``valid_until`` (monotonic); for stores."""
        self._until = valid_until

    def mark_lost(self, reason: str) -> bool:
        """Mark the lease lost for ``reason``; False if it was already. For stores."""
        if self._lost is not None:
            return False
        self._lost = reason
        return True


class Reporter(Protocol):
    """What a store's session may ask of the manager that opened it."""

    def report(self, key: tuple[str, ...], message: str) -> bool:
        """Keep ``message`` for ``detect_potential_deadlocks()``; True if new."""

    def remote_unavailable(
        self, record: Any, holder: RemoteHolder | None, queued: bool,
        timeout: float | None, blocking: bool,
    ) -> _errors.LockTimeoutError:  # fmt: skip
        """Return the timeout error for a lock held in the store (or queued for)."""

    def wait_begins(self, holder: Any, record: Any) -> None:
        """Note that ``holder`` waits for ``record`` (for the live status)."""

    def wait_ends(self, holder: Any, record: Any) -> None:
        """Note that ``holder`` no longer waits for ``record``."""

    # What a SharingSession reads and calls; a plain StoreSession need not.

    @property
    def policy(self) -> str:
        """``"raise"``, ``"warn"`` or ``"off"`` (nothing learned, nothing shared)."""

    #: whether wait-for cycles are looked for (with a policy other than "off")
    detect: bool

    def remote_cycle(
        self, holder: Any, site: Any, cycle: Sequence[RemoteWait],
        seen_here_only: bool = False,
    ) -> RemoteWait:  # fmt: skip
        """Handle a wait-for cycle found in the store; return its victim.

        ``cycle[0]`` is ``holder``'s own wait (begun at ``site``).

        :raises DeadlockError: if ``holder`` is the victim and the policy is
            "raise"
        """

    def local_chain(self, start: int, end: Any) -> list[tuple[Any, str]] | None:
        """Follow the manager's waits from the holder ``id()`` ``start`` to ``end``.

        :return: each ``(waiter, name of the lock it waits for)``, or ``None``
        """

    def merge_order(self, edges: Sequence[SharedOrder]) -> None:
        """Learn the orders other processes published; report inversions."""


class StoreSession(Protocol):
    """A manager's connection to a store; operations are generators of steps.

    ``record`` arguments have a ``name``, ``holder`` ones a ``describe()``;
    ``site`` is where the lock was asked for.
    """

    closed: bool

    def open(self) -> Steps[None]:
        """Connect, and start hearing when locks free."""

    def background(self) -> list[tuple[str, Steps[None]]]:
        """Return the work to run until closed (lease renewal...), by name."""

    def take(
        self, record: Any, holder: Any, site: Any, deadline: float,
        timeout: float | None, blocking: bool,
    ) -> Steps[float]:  # fmt: skip
        """Take the lock with a new owner token and a lease; return the wait.

        Waits within ``deadline`` (first come, first served) while another
        process holds it, unless ``blocking`` is false.
        """

    def release(self, names: Sequence[str]) -> Steps[list[tuple[str, str]]]:
        """Release by owner token; return ``(name, why)`` of each lease lost."""

    def lease(self, name: str) -> Lease | None:
        """Return the lease held on ``name``, if any."""

    def inspect(self, names: Sequence[str]) -> Steps[list[RemoteHolder | None]]:
        """Return the holder of each lock, wherever it is (``None`` if free)."""

    def close(self) -> Steps[None]:
        """Give back what is still held (its leases are lost); stop the work."""

    def disconnect(self) -> Steps[None]:
        """Let the connection go (after :meth:`close`, once the work stopped)."""


@runtime_checkable
class SharingSession(Protocol):
    """What a store session may offer beyond :class:`StoreSession`: detection.

    Such a session publishes each wait while it lasts (with an expiry tied
    to the lease, so that a dead process's waits vanish), looks for a cycle
    whenever its waiter checks again and hands what it finds to
    :meth:`Reporter.remote_cycle`; it publishes the orders the manager
    learns and gives those of other processes to :meth:`Reporter.merge_order`.
    """

    #: e.g. ``"pid 4242 on db-7"``: where this session's holders run
    identity: str

    def share_order(self, edge: SharedOrder) -> None:
        """Publish ``edge`` to the other processes soon (must not block)."""

    def wait_graph(self) -> Steps[list[tuple[RemoteWait, str | None]]]:
        """Return every live wait in the store, with the node holding its lock."""


@runtime_checkable
class LockStore(Protocol):
    """A store shared by processes, as ``backend=`` of a lock manager.

    Failures to reach it raise :class:`cc.locks.LockBackendError`.
    """

    def session(self, reporter: Reporter, board: Any, *, tasks: bool) -> StoreSession:
        """Return a new session, for a manager of threads or tasks (must not block).

        ``board`` is the manager's :class:`ThreadBoard` or :class:`TaskBoard`.
        """
