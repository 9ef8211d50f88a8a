"""Leases on shared locks: taking, waiting, renewing and releasing them.

A manager with a backend still takes its in-process lock first (so only one
of its threads or tasks at a time talks to Redis about a given lock), then
the lock's Redis key. The sessions here do the Redis half:

* ``take`` tries the take script; while another process holds the lock, or
  an earlier waiter is due to take it, the script queues the caller (first
  come, first served) and the caller sleeps until it is told that its turn
  came, the holder's lease would run out, or ``recheck_interval`` passed,
  whichever comes first, and tries again, within the caller's deadline.
  Each try renews its place in the queue; a caller that gives up (timeout,
  cancellation, error) leaves the queue at once, waking the next waiter.
* one renewal loop (a task in the session's task group, or a thread)
  renews every held lease in one round trip, ``renew_interval`` after its
  last confirmation, and marks a lease lost when Redis says it is gone or
  when it could not be confirmed before it would have run out.
* one listener (a task, or a thread) receives the session's own wake channel
  (a release publishes there only when this session's waiter is next) and
  wakes the waiter of the lock named in each message. After a reconnection
  it wakes every waiter, since messages may have been missed meanwhile.
* ``release`` deletes the keys whose tokens still match, in one round trip,
  and reports the leases that were lost.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import secrets
import socket
import threading
from collections.abc import Sequence
from time import monotonic
from typing import TYPE_CHECKING, Any

import anyio

from cc.locks._errors import LockBackendError, LockLostError
from cc.locks._records import Holder, LockRecord, Site, format_site
from cc.locks._redis import (
    AsyncRedisLink,
    RedisLockBackend,
    RemoteHolder,
    SyncRedisLink,
    Taken,
    ThreadedRedisLink,
)

if TYPE_CHECKING:
    from cc.locks._core import ManagerCore

__all__ = ["AsyncLeaseSession", "Lease", "ThreadLeaseSession", "lost_error"]

logger = logging.getLogger("cc.locks")

# How long a listener waits for a message before looking again; it also
# bounds how long closing a threaded listener can take if Redis is gone.
_LISTEN_SLICE = 1.0
# Reconnection back-off of the listener, in seconds.
_BACKOFF_FIRST, _BACKOFF_MAX = 0.05, 1.0
# At most this many formatted acquisition sites are kept.
_MAX_SITES = 1024
# A waiter keeps its place in a lock's queue for recheck_interval plus this
# (capped by recheck_interval itself) after each try: time enough to try
# again while it lives; once it stops, it holds the others up no longer.
_QUEUE_SLACK = 0.5


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
        timestamp by the Redis server's clock
    """

    __slots__ = (
        "_gone",
        "_lost_reason",
        "_valid_until",
        "acquired_at",
        "fencing_token",
        "name",
        "token",
    )

    def __init__(
        self,
        name: str,
        token: str,
        fencing_token: int,
        acquired_at: float,
        valid_until: float,
    ) -> None:
        self.name = name
        self.token = token
        self.fencing_token = fencing_token
        self.acquired_at = acquired_at
        self._valid_until = valid_until  # monotonic(), by the last confirmation
        self._lost_reason: str | None = None
        self._gone = False  # Redis said the key is no longer ours

    def __repr__(self) -> str:
        state = f"lost: {self._lost_reason}" if self.lost else "held"
        return f"<Lease {self.name!r} fencing_token={self.fencing_token} {state}>"

    @property
    def lost(self) -> bool:
        """Whether the lease ended, or could not be confirmed in time.

        Once true it stays true: the lock may have been taken by another
        holder since, and releasing it raises :class:`LockLostError`
        unless Redis shows it was still held.
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


def lost_error(lost: Sequence[tuple[str, str]]) -> LockLostError:
    """Return the :class:`LockLostError` for ``(name, reason)`` pairs."""
    parts = "; ".join(f"{name!r}: {reason}" for name, reason in lost)
    plural = "s" if len(lost) > 1 else ""
    return LockLostError(
        f"lost the shared lock{plural} before releasing: {parts}. The block "
        "may have run while another holder had the lock; rely on the "
        "fencing token to reject its stale writes",
        tuple(name for name, _ in lost),
        tuple(reason for _, reason in lost),
    )


def _closed_release(
    names: Sequence[str], leases: Sequence[Lease | None]
) -> list[tuple[str, str]]:
    """Count every lease of a release after the session closed as lost."""
    closed = "its manager was closed while it was held"
    return [
        (name, closed if lease is None else lease._lost_reason or closed)
        for name, lease in zip(names, leases, strict=True)
    ]


def _release_reason(result: int) -> str:
    if result == 0:
        return "its lease had expired (the lock was free when released)"
    return "its lease had expired and another holder had taken the lock"


class _LeaseBook:
    """What the async and the thread sessions share: identity and bookkeeping."""

    def __init__(self, manager: ManagerCore[Any], backend: RedisLockBackend) -> None:
        self._manager = manager
        self._backend = backend
        self._lease_s = backend.lease
        self._lease_ms = max(1, round(backend.lease * 1000))
        self._interval = backend.renew_interval
        self._recheck = backend.recheck_interval
        self._queue_ms = max(
            1, round((self._recheck + min(self._recheck, _QUEUE_SLACK)) * 1000)
        )
        self._host = socket.gethostname()
        self._pid = os.getpid()
        self._id = secrets.token_hex(8)
        self._counter = itertools.count(1)
        # Sent on the release channel to stop our own listener at once.
        self._stop_message = f"\x00stop {self._id}"
        self._held: dict[str, Lease] = {}
        self._sites: dict[Site, str] = {}
        # Whether the renewal loop sleeps until a lease is taken (it is woken
        # then, and only then: not on every acquisition).
        self._renewer_idle = False
        self.closed = False

    def _take_args(
        self, record: LockRecord[Any], holder: Holder, site: Site
    ) -> tuple[str, str, int, str, str, int, str]:
        text = self._sites.get(site)
        if text is None:
            if len(self._sites) >= _MAX_SITES:
                self._sites.clear()
            text = self._sites[site] = format_site(site)
        token = f"{self._id}:{next(self._counter)}"
        return (
            record._name, token, self._lease_ms, holder.describe(),
            self._host, self._pid, text,
        )  # fmt: skip

    def _new_lease(self, args: tuple[Any, ...], taken: Taken, sent: float) -> Lease:
        lease = Lease(
            args[0], args[1], taken.fencing_token, taken.since, sent + self._lease_s
        )
        self._held[lease.name] = lease
        return lease

    def lease(self, name: str) -> Lease | None:
        """Return the lease this session holds on ``name``, if any."""
        return self._held.get(name)

    def _lose(self, lease: Lease, reason: str) -> None:
        """Mark ``lease`` lost, once: log, report and call ``on_lost``."""
        if lease._lost_reason is not None:
            return
        lease._lost_reason = reason
        message = (
            f"lease lost: the shared lock {lease.name!r} (fencing token "
            f"{lease.fencing_token}) is still held here, but {reason}"
        )
        logger.warning("%s", message)
        self._manager._report(("lost", lease.name, lease.token), message)
        callback = self._backend._on_lost
        if callback is not None:
            try:
                callback(lease)
            except Exception:
                logger.exception("on_lost callback failed for lock %r", lease.name)

    def _settle_release(
        self, leases: Sequence[Lease], results: list[int] | None, error: str
    ) -> list[tuple[str, str]]:
        """Return the ``(name, reason)`` of each lease the release found lost."""
        lost: list[tuple[str, str]] = []
        for index, lease in enumerate(leases):
            if results is None:
                reason = lease._lost_reason or (
                    f"its release could not be confirmed ({error}); the lease "
                    f"ends by itself within {self._lease_s:g} s"
                )
            elif results[index] == 1:
                continue  # still ours: whatever the renewals said, none took it
            else:
                reason = lease._lost_reason or _release_reason(results[index])
            lost.append((lease.name, reason))
        return lost

    def _renewed(
        self, leases: Sequence[Lease], results: Sequence[int], sent: float
    ) -> list[tuple[Lease, str]]:
        """Note a renewal's results; return the leases it found lost."""
        lost = []
        for lease, result in zip(leases, results, strict=True):
            if self._held.get(lease.name) is not lease:
                continue  # released meanwhile
            if result == 1:
                lease._valid_until = sent + self._lease_s
            else:
                lease._gone = True
                lost.append((lease, _release_reason(result)))
        return lost

    def _unconfirmed(
        self, leases: Sequence[Lease], error: Exception
    ) -> list[tuple[Lease, str]]:
        """Return the leases that ran out while renewals kept failing."""
        now = monotonic()
        return [
            (
                lease,
                "its lease ran out while Redis could not be reached to renew "
                f"it ({error})",
            )
            for lease in leases
            if now >= lease._valid_until and self._held.get(lease.name) is lease
        ]

    def _due(self) -> list[Lease]:
        return [lease for lease in self._held.values() if not lease._gone]

    def _next_renewal(self) -> float:
        leases = self._due()
        if not leases:
            return math.inf
        return (
            min(lease._valid_until for lease in leases)
            - self._lease_s
            + (self._interval)
        )


class AsyncLeaseSession(_LeaseBook):
    """The Redis half of an :class:`AsyncLockManager` with a backend.

    Owns a task group with the listener and the renewal loop, from
    :meth:`open` to :meth:`aclose`.
    """

    def __init__(self, manager: ManagerCore[Any], backend: RedisLockBackend) -> None:
        super().__init__(manager, backend)
        self._link: AsyncRedisLink | ThreadedRedisLink = backend.open_async(self._id)
        self._wakeups: dict[str, anyio.Event] = {}
        self._renew_wake = anyio.Event()
        self._task_group: Any = None

    async def open(self) -> None:
        """Subscribe to the release channel and start the background tasks.

        :raises LockBackendError: if Redis cannot be reached
        """
        try:
            await self._link.subscribe()
        except BaseException:
            await self._link.aclose()
            raise
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        task_group.start_soon(self._listen, name="cc.locks lease listener")
        task_group.start_soon(self._renew_loop, name="cc.locks lease renewal")

    async def aclose(self) -> None:
        """Release what is still held, stop the background tasks, disconnect."""
        if self.closed:
            return
        self.closed = True
        try:
            leftover = list(self._held.values())
            for lease in leftover:
                self._lose(lease, "its manager was closed while it was held")
            with anyio.CancelScope(shield=True):
                with anyio.move_on_after(self._lease_s):
                    try:
                        if leftover:
                            await self._link.release(
                                [lease.name for lease in leftover],
                                [lease.token for lease in leftover],
                            )
                        # Wakes a threaded listener at once.
                        await self._link.publish(self._stop_message)
                    except LockBackendError:
                        pass
        finally:
            task_group = self._task_group
            task_group.cancel_scope.cancel()
            try:
                await task_group.__aexit__(None, None, None)
            finally:
                for event in self._wakeups.values():
                    event.set()
                await self._link.aclose()

    # -- background tasks ------------------------------------------------------

    async def _listen(self) -> None:
        link = self._link
        delay = _BACKOFF_FIRST
        subscribed = True
        while True:
            try:
                if not subscribed:
                    await link.subscribe()
                    subscribed = True
                    delay = _BACKOFF_FIRST
                    self._wake_all()  # releases may have gone unheard
                name = await link.next_message(_LISTEN_SLICE)
            except LockBackendError as exc:
                logger.debug("lease listener lost Redis: %s", exc)
                subscribed = False
                self._wake_all()
                await anyio.sleep(delay)
                delay = min(delay * 2, _BACKOFF_MAX)
                continue
            if name == self._stop_message:
                return
            if name is not None:
                event = self._wakeups.pop(name, None)
                if event is not None:
                    event.set()

    def _wake_all(self) -> None:
        wakeups, self._wakeups = self._wakeups, {}
        for event in wakeups.values():
            event.set()

    async def _renew_loop(self) -> None:
        while True:
            next_at = self._next_renewal()
            if next_at == math.inf:
                self._renew_wake = anyio.Event()
                self._renewer_idle = True
                await self._renew_wake.wait()
                self._renewer_idle = False
                continue
            delay = next_at - monotonic()
            if delay > 0:
                await anyio.sleep(delay)
                continue
            leases = self._due()
            sent = monotonic()
            try:
                results = await self._link.renew(
                    [lease.name for lease in leases],
                    [lease.token for lease in leases],
                    self._lease_ms,
                )
            except LockBackendError as exc:
                for lease, reason in self._unconfirmed(leases, exc):
                    self._lose(lease, reason)
                await anyio.sleep(self._interval / 3)
                continue
            for lease, reason in self._renewed(leases, results, sent):
                self._lose(lease, reason)

    # -- taking and releasing ----------------------------------------------------

    async def take(
        self,
        record: LockRecord[Any],
        holder: Holder,
        site: Site,
        deadline: float,
        limit: float | None,
        blocking: bool,
    ) -> float:
        """Take ``record``'s Redis key, waiting within ``deadline``.

        :return: the seconds spent waiting for another process (0 if none)
        :raises LockTimeoutError: if another process held it past the
            deadline, or at once with ``blocking=False``
        :raises LockBackendError: if Redis cannot be reached
        """
        if self.closed:
            raise RuntimeError(
                "the lock manager was closed; open it again with `async with`"
            )
        args = self._take_args(record, holder, site)
        name = record._name
        link = self._link
        manager = self._manager
        queue_ms = self._queue_ms if blocking else 0
        waiting_since = 0.0
        # Whether Redis may know this token (as a holder or in the queue)
        # while we are not going to hold the lock: then forget it on the way out.
        known = False
        try:
            while True:
                wake = self._wakeups.get(name)
                if wake is None:
                    wake = self._wakeups[name] = anyio.Event()
                sent = monotonic()
                known = True
                taken = await link.take(*args, queue_ms)
                if taken.ok:
                    known = False
                    self._new_lease(args, taken, sent)
                    if self._renewer_idle:
                        self._renew_wake.set()
                    return monotonic() - waiting_since if waiting_since else 0.0
                known = blocking
                now = monotonic()
                if not blocking or now >= deadline:
                    raise manager._remote_unavailable(
                        record, taken.holder, limit, blocking, taken.queued
                    )
                if not waiting_since:
                    waiting_since = now
                    with manager._meta:
                        holder.waiting_for = record
                        record._waiting.append(holder)
                pause = min(deadline - now, self._recheck, taken.retry_in + 0.001)
                with anyio.move_on_after(pause):
                    await wake.wait()
                if self.closed:
                    raise RuntimeError("the lock manager was closed while waiting")
        finally:
            if known and not self.closed:
                await self._forget(name, args[1])
            if waiting_since:
                with manager._meta:
                    holder.waiting_for = None
                    record._waiting.remove(holder)

    async def _forget(self, name: str, token: str) -> None:
        """After a failed or cancelled take, make sure ``token`` holds nothing.

        It also leaves the lock's queue, waking the next waiter.
        """
        with anyio.CancelScope(shield=True):
            # If Redis cannot be reached, the key (if any) expires by itself.
            with (
                anyio.move_on_after(self._lease_s),
                contextlib.suppress(LockBackendError),
            ):
                await self._link.release([name], [token])

    async def release(self, names: Sequence[str]) -> list[tuple[str, str]]:
        """Release the leases held on ``names`` in one round trip.

        Finishes even if the caller is cancelled meanwhile.

        :return: ``(name, reason)`` for each lease that was lost
        """
        leases = [self._held.pop(name, None) for name in names]
        if self.closed or None in leases:
            return _closed_release(names, leases)
        held = [lease for lease in leases if lease is not None]
        results: list[int] | None = None
        error = ""
        # Shielded: the lock is released even if the holder is cancelled
        # meanwhile; a dead server is bounded by the client's socket timeout.
        with anyio.CancelScope(shield=True):
            try:
                results = await self._link.release(
                    names, [lease.token for lease in held]
                )
            except LockBackendError as exc:
                error = str(exc)
        return self._settle_release(held, results, error)

    async def inspect(self, names: Sequence[str]) -> list[RemoteHolder | None]:
        """Return the holder of each lock, wherever it is (``None`` if free)."""
        return await self._link.inspect(names)


class ThreadLeaseSession(_LeaseBook):
    """The Redis half of a :class:`LockManager` with a backend.

    Runs a listener thread and a renewal thread from :meth:`open` to
    :meth:`close`; both are daemon threads, so a manager that is never
    closed does not keep the interpreter alive.
    """

    def __init__(self, manager: ManagerCore[Any], backend: RedisLockBackend) -> None:
        super().__init__(manager, backend)
        self._link: SyncRedisLink = backend.open_sync(self._id)
        # Guards _held, the renewal thread's schedule and closed.
        self._state = threading.Condition(threading.Lock())
        # Waiters sleep on this; each release message bumps its lock's count.
        self._wake = threading.Condition(threading.Lock())
        self._releases: dict[str, int] = {}
        self._threads: list[threading.Thread] = []

    def open(self) -> None:
        """Subscribe to the release channel and start the background threads.

        :raises LockBackendError: if Redis cannot be reached
        """
        try:
            self._link.subscribe()
        except BaseException:
            self._link.close()
            raise
        for target, role in ((self._listen, "listener"), (self._renew_loop, "renewal")):
            thread = threading.Thread(
                target=target, name=f"cc.locks lease {role}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        """Release what is still held, stop the background threads, disconnect."""
        with self._state:
            if self.closed:
                return
            self.closed = True
            leftover = list(self._held.values())
            self._state.notify_all()
        for lease in leftover:
            self._lose(lease, "its manager was closed while it was held")
        try:
            if leftover:
                self._link.release(
                    [lease.name for lease in leftover],
                    [lease.token for lease in leftover],
                )
            self._link.publish(self._stop_message)
        except LockBackendError:
            pass
        with self._wake:
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(_LISTEN_SLICE + 1.0)
        self._link.close()

    # -- background threads -------------------------------------------------

    def _listen(self) -> None:
        link = self._link
        delay = _BACKOFF_FIRST
        subscribed = True
        while not self.closed:
            try:
                if not subscribed:
                    link.subscribe()
                    subscribed = True
                    delay = _BACKOFF_FIRST
                    self._wake_all()
                name = link.next_message(_LISTEN_SLICE)
            except LockBackendError as exc:
                logger.debug("lease listener lost Redis: %s", exc)
                subscribed = False
                self._wake_all()
                with self._state:
                    self._state.wait_for(lambda: self.closed, delay)
                delay = min(delay * 2, _BACKOFF_MAX)
                continue
            if name == self._stop_message:
                return
            if name is not None:
                with self._wake:
                    self._releases[name] = self._releases.get(name, 0) + 1
                    self._wake.notify_all()

    def _wake_all(self) -> None:
        with self._wake:
            for name in self._releases:
                self._releases[name] += 1
            self._wake.notify_all()

    def _renew_loop(self) -> None:
        while True:
            with self._state:
                while True:
                    if self.closed:
                        return
                    wait = self._next_renewal() - monotonic()
                    if wait <= 0:
                        break
                    self._renewer_idle = wait == math.inf
                    self._state.wait(None if self._renewer_idle else wait)
                    self._renewer_idle = False
                leases = self._due()
            sent = monotonic()
            try:
                results = self._link.renew(
                    [lease.name for lease in leases],
                    [lease.token for lease in leases],
                    self._lease_ms,
                )
            except LockBackendError as exc:
                with self._state:
                    lost = self._unconfirmed(leases, exc)
                for lease, reason in lost:
                    self._lose(lease, reason)
                with self._state:
                    self._state.wait_for(lambda: self.closed, self._interval / 3)
                continue
            with self._state:
                lost = self._renewed(leases, results, sent)
            for lease, reason in lost:
                self._lose(lease, reason)

    # -- taking and releasing ------------------------------------------------

    def take(
        self,
        record: LockRecord[Any],
        holder: Holder,
        site: Site,
        deadline: float,
        limit: float | None,
        blocking: bool,
    ) -> float:
        """Take ``record``'s Redis key, waiting within ``deadline``.

        :return: the seconds spent waiting for another process (0 if none)
        :raises LockTimeoutError: if another process held it past the
            deadline, or at once with ``blocking=False``
        :raises LockBackendError: if Redis cannot be reached
        """
        args = self._take_args(record, holder, site)
        name = record._name
        link = self._link
        manager = self._manager
        queue_ms = self._queue_ms if blocking else 0
        waiting_since = 0.0
        # Whether Redis may know this token (as a holder or in the queue)
        # while we are not going to hold the lock: then forget it on the way out.
        known = False
        try:
            while True:
                with self._wake:
                    seen = self._releases.setdefault(name, 0)
                sent = monotonic()
                known = True
                taken = link.take(*args, queue_ms)
                if taken.ok:
                    known = False
                    with self._state:
                        self._new_lease(args, taken, sent)
                        if self._renewer_idle:
                            self._state.notify_all()
                    return monotonic() - waiting_since if waiting_since else 0.0
                known = blocking
                now = monotonic()
                if not blocking or now >= deadline:
                    raise manager._remote_unavailable(
                        record, taken.holder, limit, blocking, taken.queued
                    )
                if not waiting_since:
                    waiting_since = now
                    with manager._meta:
                        holder.waiting_for = record
                        record._waiting.append(holder)
                pause = min(deadline - now, self._recheck, taken.retry_in + 0.001)
                with self._wake:
                    if self._releases[name] == seen and not self.closed:
                        self._wake.wait(pause)
                if self.closed:
                    raise RuntimeError("the lock manager was closed while waiting")
        finally:
            if known and not self.closed:
                self._forget(name, args[1])
            if waiting_since:
                with manager._meta:
                    holder.waiting_for = None
                    record._waiting.remove(holder)

    def _forget(self, name: str, token: str) -> None:
        # If Redis cannot be reached, the key (if any) expires by itself.
        with contextlib.suppress(LockBackendError):
            self._link.release([name], [token])

    def release(self, names: Sequence[str]) -> list[tuple[str, str]]:
        """Release the leases held on ``names`` in one round trip.

        :return: ``(name, reason)`` for each lease that was lost
        """
        with self._state:
            leases = [self._held.pop(name, None) for name in names]
            closed = self.closed
        if closed or None in leases:
            return _closed_release(names, leases)
        held = [lease for lease in leases if lease is not None]
        results: list[int] | None = None
        error = ""
        try:
            results = self._link.release(names, [lease.token for lease in held])
        except LockBackendError as exc:
            error = str(exc)
        return self._settle_release(held, results, error)

    def inspect(self, names: Sequence[str]) -> list[RemoteHolder | None]:
        """Return the holder of each lock, wherever it is (``None`` if free)."""
        return self._link.inspect(names)
