"""The interface of a shared lock store, and the steps its operations are made of.

A manager's locks live in its process by default: each lock's local lock (a
``threading.RLock`` or a ``cc.primitives.Lock``) is the whole lock. With
``backend=``, a *store* outside the process (Redis, in cc-redis) holds a
shared half that every process using the store sees: after its local lock,
each acquisition takes the lock in the store, with an owner token of its own
and a lease that the store's session renews while the holder lives; only the
owner token releases it; the session tells its waiters when a lock frees,
and reports who holds what (:class:`LockStore`, :class:`StoreSession`).

Operations are written once, for threads and tasks alike, as generators of
*steps*: a step says what to wait for (a local lock, a call to the store's
client, a pause until woken); the manager's driver performs it in the way of
its world (blocking the thread, or awaiting) and sends the result back, or
throws the error in. The thread and the task drivers differ only there.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from time import monotonic
from typing import Any, Protocol, TypeVar, runtime_checkable

from cc.locks._errors import LockTimeoutError, lost_error

__all__ = [
    "AWAIT", "DIRECT", "IN_THREAD", "Call", "Lease", "LockStore", "Pause",
    "RemoteHolder", "Reporter", "Shielded", "Steps", "StoreSession", "WaitLocal",
]  # fmt: skip

T = TypeVar("T")

#: An operation made of steps, returning ``T``.
Steps = Generator[Any, Any, T]

# How a Call runs: a plain function, a coroutine function to await (tasks
# only), or a blocking function that tasks run in a worker thread.
DIRECT, AWAIT, IN_THREAD = 0, 1, 2


class Call:
    """A step: call ``fn(*args)`` as ``mode`` says (:data:`DIRECT`, ...).

    ``limiter``: the :class:`anyio.CapacityLimiter` of the worker threads of
    an :data:`IN_THREAD` call (``None``: anyio's default one).
    """

    __slots__ = ("args", "fn", "limiter", "mode")

    def __init__(
        self,
        fn: Callable[..., Any],
        *args: Any,
        mode: int = DIRECT,
        limiter: Any = None,
    ) -> None:
        self.fn, self.args, self.mode, self.limiter = fn, args, mode, limiter


class WaitLocal:
    """A step: wait for a local lock until ``deadline`` (monotonic); send success."""

    __slots__ = ("deadline", "lock")

    def __init__(self, lock: Any, deadline: float) -> None:
        self.lock, self.deadline = lock, deadline


class Pause:
    """A step: sleep until ``token`` of ``board`` is woken, or ``seconds`` pass.

    A board is the driver's: ``prepare(key)`` returns a token, ``wake(key)``
    wakes it, ``wake_all()`` and ``close()`` wake every token.
    """

    __slots__ = ("board", "seconds", "token")

    def __init__(self, board: Any, token: Any, seconds: float | None) -> None:
        self.board, self.token, self.seconds = board, token, seconds


class Shielded:
    """A step: run ``steps`` to the end even if the caller is cancelled.

    Tasks give them at most ``seconds`` (``None``: no limit) and raise
    :class:`TimeoutError` past that; threads are bounded by the store's own
    socket timeouts.
    """

    __slots__ = ("seconds", "steps")

    def __init__(self, steps: Steps[Any], seconds: float | None) -> None:
        self.steps, self.seconds = steps, seconds


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


class Lease:
    """One acquisition of a lock shared through a backend.

    The manager that took the lock hands it out through ``lease(name)``
    while the calling thread or task holds the lock.

    :ivar name: the lock's name
    :ivar token: the owner token of this acquisition (unique, random)
    :ivar fencing_token: a number that grows with every acquisition of the
        lock, in every process: give it to the resource you protect with
        each write, and let the resource refuse a write that carries a
        smaller token than one it has already seen
    :ivar acquired_at: when the lock was taken, as a :func:`time.time`
        timestamp by the store's clock
    """

    __slots__ = ("_lost_reason", "_valid_until", "acquired_at", "fencing_token",
                 "name", "token")  # fmt: skip

    def __init__(
        self, name: str, token: str, fencing_token: int, acquired_at: float,
        valid_until: float,
    ) -> None:  # fmt: skip
        self.name = name
        self.token = token
        self.fencing_token = fencing_token
        self.acquired_at = acquired_at
        self._valid_until = valid_until  # monotonic(), by the last confirmation
        self._lost_reason: str | None = None

    def __repr__(self) -> str:
        state = f"lost: {self._lost_reason}" if self.lost else "held"
        return f"<Lease {self.name!r} fencing_token={self.fencing_token} {state}>"

    @property
    def lost(self) -> bool:
        """Whether the lease ended, or could not be confirmed in time.

        Once true it stays true: the lock may have been taken by another
        holder since, and releasing it raises :class:`LockLostError`
        unless the store shows it was still held.
        """
        return self._lost_reason is not None

    @property
    def lost_reason(self) -> str | None:
        """Why the lease is considered lost, or ``None``."""
        return self._lost_reason

    @property
    def expires_in(self) -> float:
        """Seconds the lease is known to last without another renewal."""
        return max(0.0, self._valid_until - monotonic())

    def check(self) -> None:
        """Raise :class:`LockLostError` if the lease is lost; else do nothing.

        Call it before an action that must not run without the lock, e.g.
        before committing; the fencing token still protects against the
        time between this check and the action.
        """
        if self._lost_reason is not None:
            raise lost_error([(self.name, self._lost_reason)])

    def confirm(self, valid_until: float) -> None:
        """Note that the store renewed the lease until ``valid_until`` (for stores)."""
        self._valid_until = valid_until

    def mark_lost(self, reason: str) -> bool:
        """Mark the lease lost for ``reason`` (for stores); False if it was already."""
        if self._lost_reason is not None:
            return False
        self._lost_reason = reason
        return True


class Reporter(Protocol):
    """What a store's session may ask of the manager that opened it."""

    def report(self, key: tuple[str, ...], message: str) -> bool:
        """Keep ``message`` for ``detect_potential_deadlocks()``; True if new."""

    def remote_unavailable(
        self, record: Any, holder: RemoteHolder | None, queued: bool,
        timeout: float | None, blocking: bool,
    ) -> LockTimeoutError:  # fmt: skip
        """Return the timeout error for a lock held in the store (or queued for)."""

    def wait_begins(self, holder: Any, record: Any) -> None:
        """Note that ``holder`` (a thread or task) waits for ``record``."""

    def wait_ends(self, holder: Any, record: Any) -> None:
        """Note that ``holder`` no longer waits for ``record``."""


class StoreSession(Protocol):
    """A manager's connection to a store, from opening to closing.

    ``record`` arguments have a ``name``; ``holder`` arguments a
    ``describe()``; ``site`` is where the lock was asked for.
    """

    closed: bool

    def open(self) -> Steps[None]:
        """Connect, and start hearing when locks free."""

    def background(self) -> list[tuple[str, Steps[None]]]:
        """Return the work to run until closed, by name (lease renewal...)."""

    def take(
        self, record: Any, holder: Any, site: Any, deadline: float,
        timeout: float | None, blocking: bool,
    ) -> Steps[float]:  # fmt: skip
        """Take ``record``'s lock with a new owner token and a lease.

        Waits (first come, first served) within ``deadline`` while another
        process holds it, unless ``blocking`` is false.

        :return: the seconds spent waiting for another process
        :raises LockTimeoutError: (from the reporter) past the deadline
        :raises LockBackendError: if the store cannot be reached
        """

    def release(self, names: Sequence[str]) -> Steps[list[tuple[str, str]]]:
        """Release the locks by their owner tokens; return ``(name, why)`` lost."""

    def lease(self, name: str) -> Lease | None:
        """Return the lease held on ``name``, if any."""

    def inspect(self, names: Sequence[str]) -> Steps[list[RemoteHolder | None]]:
        """Report the holder of each lock, wherever it is (``None`` if free)."""

    def close(self) -> Steps[None]:
        """Give back what is still held (its leases are lost) and stop the work."""

    def disconnect(self) -> Steps[None]:
        """Let the connection go (after :meth:`close` and the work stopped)."""


@runtime_checkable
class LockStore(Protocol):
    """A store shared by processes, as ``backend=`` of a lock manager.

    Failures to reach it raise :class:`cc.locks.LockBackendError`.
    """

    def session(self, reporter: Reporter, board: Any, *, tasks: bool) -> StoreSession:
        """Return a new session for a manager of threads or of tasks.

        ``board`` is the manager's way to sleep until woken (see
        :class:`Pause`). Called from the event loop (tasks) or the thread
        that opens the manager; it must not block.
        """
