"""The interface of a shared lock store, and the steps every operation is made of.

A manager's locks live in its process by default: each lock's local lock is
the whole lock. With ``backend=``, a *store* outside the process (Redis, in
cc-redis) holds the shared half: after its local lock, each acquisition
takes the lock in the store, which every process using the store sees.

What a store must do is :class:`LockStore` and :class:`StoreLink`: take a
lock with an owner token and a lease, renew leases, release by owner only,
tell waiters when a lock frees, and report holders. Everything else (lease
bookkeeping, waiting, renewal, the order and deadlock checks) is cc.locks'.

Operations are written once, for threads and tasks alike, as generators of
*steps*: a step is what to wait for (the local lock, a call to the store's
client, a pause until woken); the manager's driver performs it in the way of
its world (blocking the thread, or awaiting) and sends the result back, or
throws the error in. The thread and the task drivers differ only there.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

__all__ = [
    "AWAIT",
    "DIRECT",
    "IN_THREAD",
    "Call",
    "LockStore",
    "Pause",
    "RemoteHolder",
    "Shielded",
    "Steps",
    "StoreLink",
    "Taken",
    "WaitLocal",
]

T = TypeVar("T")

#: An operation made of steps, returning ``T``.
Steps = Generator[Any, Any, T]

# How a Call runs: a plain function, a coroutine function to await (tasks
# only), or a blocking function that tasks run in a worker thread.
DIRECT, AWAIT, IN_THREAD = 0, 1, 2


class Call:
    """A step: call ``fn(*args)`` (``mode``: :data:`DIRECT`, :data:`AWAIT`...).

    ``limiter`` is the :class:`anyio.CapacityLimiter` of the worker threads
    for :data:`IN_THREAD` calls (``None``: anyio's default one).
    """

    __slots__ = ("args", "fn", "limiter", "mode")

    def __init__(
        self,
        fn: Callable[..., Any],
        *args: Any,
        mode: int = DIRECT,
        limiter: Any = None,
    ) -> None:
        self.fn = fn
        self.args = args
        self.mode = mode
        self.limiter = limiter


class WaitLocal:
    """A step: wait for a local lock until ``deadline`` (monotonic); send success."""

    __slots__ = ("deadline", "lock")

    def __init__(self, lock: Any, deadline: float) -> None:
        self.lock = lock
        self.deadline = deadline


class Pause:
    """A step: sleep until ``token`` of ``board`` is woken, or ``seconds`` pass."""

    __slots__ = ("board", "seconds", "token")

    def __init__(self, board: Any, token: Any, seconds: float | None) -> None:
        self.board = board
        self.token = token
        self.seconds = seconds


class Shielded:
    """A step: run ``steps`` to the end even if the caller is cancelled.

    Tasks give them at most ``seconds`` (``None``: no limit) and raise
    :class:`TimeoutError` past that; threads are bounded by the store's own
    socket timeouts.
    """

    __slots__ = ("seconds", "steps")

    def __init__(self, steps: Steps[Any], seconds: float | None) -> None:
        self.steps = steps
        self.seconds = seconds


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
class Taken:
    """The reply of one attempt to take a lock in a store."""

    ok: bool
    fencing_token: int = 0
    since: float = 0.0  # time.time() seconds, the store's clock
    # seconds until the holder's lease ends, or the turn of the waiter
    # ahead lapses (if it stopped checking in); inf: no end in sight
    retry_in: float = 0.0
    holder: RemoteHolder | None = None
    queued: bool = False  # free, but an earlier waiter is due to take it


class StoreLink(Protocol):
    """One session's connection to a store; every operation is a generator of steps.

    A session has an id (the first part, up to ``:``, of each of its owner
    tokens) and a wake channel of its own: when a lock frees, the store
    tells the first waiter's session, on that channel, the lock's name.
    """

    def take(
        self, name: str, token: str, lease_ms: int, holder: str, host: str,
        pid: int, site: str, queue_ms: int,
    ) -> Steps[Taken]:  # fmt: skip
        """Take ``name`` for ``token`` with a lease; else queue ``token``.

        The lock is taken if it is free and no earlier waiter is due; else
        ``token`` is queued for ``queue_ms`` (0: not queued). Taking again
        with the token that holds it renews it (``ok``).
        """

    def renew(
        self, names: Sequence[str], tokens: Sequence[str], lease_ms: int
    ) -> Steps[list[int]]:
        """Extend each lease held by its token: 1 done, 0 gone, -1 taken over."""

    def release(self, names: Sequence[str], tokens: Sequence[str]) -> Steps[list[int]]:
        """Release each lock its token holds (1; 0 gone, -1 taken over).

        A token still queued leaves the queue; the next live waiter of a lock
        left free is told on its session's wake channel.
        """

    def inspect(self, names: Sequence[str]) -> Steps[list[RemoteHolder | None]]:
        """Report the holder of each lock (``None`` where it is free)."""

    def subscribe(self) -> Steps[None]:
        """Listen on the session's wake channel (again, after a failure)."""

    def next_wake(self, seconds: float) -> Steps[str | None]:
        """Wait up to ``seconds`` for a lock name on the wake channel."""

    def publish(self, message: str) -> Steps[None]:
        """Send ``message`` on the session's own wake channel."""

    def close(self) -> Steps[None]:
        """Stop listening and let the connection go."""


@runtime_checkable
class LockStore(Protocol):
    """A store shared by processes, as ``backend=`` of a lock manager.

    Failures to reach it raise :class:`cc.locks.LockBackendError`.
    """

    @property
    def lease(self) -> float:
        """Seconds a lease lasts unless it is renewed."""

    @property
    def renew_interval(self) -> float:
        """Seconds between two renewals of the held leases."""

    @property
    def recheck_interval(self) -> float:
        """The longest a waiter sleeps before trying again unprompted."""

    def connect(self, session: str, *, tasks: bool) -> StoreLink:
        """Return a link for the session ``session``, for tasks or threads.

        Called from the event loop (tasks) or the thread that opens the
        manager; it must not block.
        """

    def lost(self, lease: Any) -> None:
        """Tell the application that ``lease`` (a :class:`cc.locks.Lease`) was lost.

        Called from the renewal thread or task; it must not block.
        """
