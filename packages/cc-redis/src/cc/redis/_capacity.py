"""RedisCapacityLimiter: a pool of tokens shared by every process, under leases.

A lock manager's :class:`~cc.redis._lease.LeaseSession` takes, renews and
gives back the tokens; only the scripts differ (:mod:`cc.redis._tokens`).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import anyio

from cc.locks import LockBackendError, LockLostError, LockTimeoutError
from cc.locks.lowlevel import Pause, RemoteHolder, Steps, TaskBoard, arun
from cc.primitives.lowlevel import current_task_key, task_name
from cc.redis._client import RedisLink, parse_holder, text
from cc.redis._lease import LeaseSession
from cc.redis._limit_scripts import capacity_keys
from cc.redis._limits import SharedLimit, check_count, logger
from cc.redis._tokens import SEP, PoolReporter, TokenLink, TokenRecord

__all__ = ["RedisCapacityLimiter", "RedisCapacityLimiterStatistics"]

# The board key of the background work that sends releases and capacities.
_OUTBOX = "\x00outbox"


@dataclass(frozen=True)
class RedisCapacityLimiterStatistics(anyio.CapacityLimiterStatistics):
    """A snapshot of a :class:`RedisCapacityLimiter`, as the server sees it.

    It is an :class:`anyio.CapacityLimiterStatistics` with cc's fields added.

    :ivar borrowed_tokens: tokens held, in every process
    :ivar total_tokens: the capacity shared by every process
    :ivar borrowers: this process's borrowers (tasks, or what was passed to
        :meth:`RedisCapacityLimiter.acquire_on_behalf_of`)
    :ivar tasks_waiting: waiters queued for a token, in every process
    :ivar available_tokens: tokens free now (never negative)
    :ivar holders: every holder, wherever it runs: task or borrower, host,
        pid, since when (server clock), fencing token, lease left
    """

    available_tokens: int
    holders: tuple[RemoteHolder, ...]


class _Borrower:
    __slots__ = ("text",)

    def __init__(self, borrower: object) -> None:
        if isinstance(borrower, threading.Thread):
            self.text = f"thread {borrower.name!r}"
        elif type(borrower).__name__ == "Task":  # asyncio's or trio's
            self.text = f"task {task_name(borrower)!r}"
        else:
            self.text = f"borrower {borrower!r}"

    def describe(self) -> str:
        return self.text


class RedisCapacityLimiter(SharedLimit):
    """Limit how many borrowers, in every process, may hold a token at once.

    The interface of :class:`cc.primitives.CapacityLimiter` (itself anyio's),
    shared by every process that uses the same Redis server, namespace and
    ``key``. Each token is held under a lease (a TTL on the server) that a
    background task renews while its process lives, so the token of a
    process that died (even by SIGKILL) comes back within one lease. Waiters
    queue on the server, first come, first served across processes, and
    sleep until a release (or a larger capacity) tells them, on their
    process's own pub/sub channel, that their turn came; they also try again
    when the first lease would run out, and every ``recheck_interval``. A
    waiter that is cancelled leaves the queue and holds nothing.

    The capacity is shared too: :meth:`connect` and setting
    :attr:`total_tokens` store it for every process (the last to do so wins);
    raising it wakes as many waiters as it allows, lowering it revokes no
    token (holders keep theirs; new ones wait until fewer are held).

    If the server loses its data (a restart without persistence), a client
    that used the pool before and meets the server again makes it grant no
    new token for one lease: meanwhile the holders still alive take theirs
    back at their next renewal, so the pool is never over-granted. A holder
    whose lease ran out before it could be renewed is told when it gives its
    token back (:class:`cc.locks.LockLostError`).

    Use it inside ``async with limiter.connect():`` (it runs the lease renewal
    and the wake listener there); then ``async with limiter:`` borrows a token
    for the current task. Each borrower holds at most one token. What asks
    the server is a coroutine, unlike anyio's: :meth:`acquire_nowait`,
    :meth:`acquire_on_behalf_of_nowait` and :meth:`statistics`; ``release()``
    is not (the token goes back in the background; ``async with`` and
    :meth:`release_and_wait` wait for the server to confirm).

    :param total_tokens: the capacity, an int from 1 to 1,000,000,000
    :param key: the pool's name: processes using the same server, namespace
        and key share it
    :param url: the server (``redis://``, ``rediss://`` or ``unix://``); its
        credentials never show in reprs, errors or logs
    :param backend: or a :class:`RedisLockBackend` to take the server, the
        namespace and the lease settings from
    :param namespace: the prefix of its keys with ``url=`` (``"cc-limits"``)
    :param lease: with ``url=``: seconds a token's lease lasts unless renewed
        (10); a dead holder's token comes back within this
    :param renew_interval: with ``url=``: seconds between renewals (a third
        of the lease)
    :param recheck_interval: with ``url=``: the longest a waiter sleeps before
        trying again unprompted (1)
    :raises TypeError: for arguments of the wrong type, or neither or both of
        ``url`` and ``backend``
    :raises ValueError: for a capacity, key or interval out of range, or a URL
        that is not a Redis URL

    >>> limiter = RedisCapacityLimiter(4, key="licences", url="redis://:pw@db/0")
    >>> limiter  # doctest: +ELLIPSIS
    <RedisCapacityLimiter 4 tokens key='licences' redis://***@db/0 namespace=...>
    """

    _link_type = TokenLink

    def __init__(
        self,
        total_tokens: int,
        *,
        key: str,
        url: str | None = None,
        backend: Any = None,
        namespace: str | None = None,
        lease: float | None = None,
        renew_interval: float | None = None,
        recheck_interval: float | None = None,
    ) -> None:
        self._total = check_count("total_tokens", total_tokens)
        super().__init__(
            key, url, backend, namespace, lease=lease,
            renew_interval=renew_interval, recheck_interval=recheck_interval,
        )  # fmt: skip
        self._keys = capacity_keys(self._backend.namespace, key)
        self._lease: LeaseSession | None = None
        self._board: TaskBoard | None = None
        self._names = itertools.count(1)
        # Names of leases given back, for reuse: the lease session's board
        # keeps a wake-up event per name, so names must not grow forever.
        self._free_names: list[str] = []
        self._borrowers: dict[object, str] = {}  # borrower -> its lease's name
        self._waiters: set[object] = set()
        self._outbox: list[str] = []  # released here, to give back
        self._total_due = False  # a new capacity to store

    def _describe(self) -> str:
        return f"{self._total} tokens"

    @contextlib.asynccontextmanager
    async def _running(self, link: RedisLink, session: str) -> AsyncIterator[None]:
        assert isinstance(link, TokenLink)
        link.bind(self._keys, self._total, max(1, round(self._backend.lease * 1000)))
        board = TaskBoard()
        lease = self._backend._lease_session(PoolReporter(), link, board, session)
        await arun(lease.open())
        try:
            await arun(link.set_total(self._total))
            async with anyio.create_task_group() as group:
                send = ("outbox", self._send(link, lease, board))
                for _, steps in [*lease.background(), send]:
                    group.start_soon(arun, steps)
                self._lease, self._board = lease, board
                try:
                    yield
                finally:
                    self._lease = self._board = None
                    with anyio.CancelScope(shield=True):
                        await arun(self._flush(link, lease))
                        await arun(lease.close())
        finally:
            self._borrowers.clear()
            self._outbox.clear()
            self._free_names.clear()
            await arun(lease.disconnect())

    def _connected_lease(self) -> LeaseSession:
        self._connected()
        if self._lease is None:
            raise RuntimeError(
                f"RedisCapacityLimiter {self._key!r} is still connecting, or "
                "closing: use it inside 'async with limiter.connect():'"
            )
        return self._lease

    # -- the capacity ------------------------------------------------------------

    @property
    def total_tokens(self) -> int:
        """The shared capacity, as last stored or seen here.

        Setting it re-validates it and stores it for every process in the
        background (raising it wakes waiters); :meth:`set_total_tokens` waits
        until the server has it.
        """
        return self._total

    @total_tokens.setter
    def total_tokens(self, value: int) -> None:
        self._total = check_count("total_tokens", value)
        self._total_due = True
        if self._board is not None:
            self._board.wake(_OUTBOX)

    async def set_total_tokens(self, value: int) -> None:
        """Store a new capacity for every process; wake the waiters it serves.

        :raises LockBackendError: if the server cannot be reached
        """
        self._total = check_count("total_tokens", value)
        link = self._connected()
        assert isinstance(link, TokenLink)
        await arun(link.set_total(self._total))

    # -- borrowing -------------------------------------------------------------

    async def __aenter__(self) -> None:
        await self.acquire_on_behalf_of(current_task_key())

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.release_and_wait()

    async def acquire(self) -> None:
        """Borrow a token for the current task, waiting (FIFO) if none is free.

        :raises RuntimeError: if the task already holds or awaits a token, or
            outside ``async with limiter.connect():``
        :raises LockBackendError: if the server cannot be reached
        """
        await self.acquire_on_behalf_of(current_task_key())

    async def acquire_nowait(self) -> None:
        """Borrow a token for the current task if one is free now.

        :raises anyio.WouldBlock: if none is free (or others wait for one)
        :raises RuntimeError: if the task already holds a token
        :raises LockBackendError: if the server cannot be reached
        """
        await self.acquire_on_behalf_of_nowait(current_task_key())

    async def acquire_on_behalf_of(self, borrower: object) -> None:
        """Borrow a token for ``borrower``, waiting (FIFO) if none is free.

        :raises RuntimeError: if ``borrower`` already holds or awaits a token
        :raises TypeError: if ``borrower`` is not hashable
        :raises LockBackendError: if the server cannot be reached
        """
        await self._borrow(borrower, blocking=True)

    async def acquire_on_behalf_of_nowait(self, borrower: object) -> None:
        """Borrow a token for ``borrower`` if one is free now.

        :raises anyio.WouldBlock: if none is free (or others wait for one)
        :raises RuntimeError: if ``borrower`` already holds or awaits a token
        :raises TypeError: if ``borrower`` is not hashable
        :raises LockBackendError: if the server cannot be reached
        """
        await self._borrow(borrower, blocking=False)

    async def _borrow(self, borrower: object, *, blocking: bool) -> None:
        lease = self._connected_lease()
        _check_hashable(borrower)
        state = (
            "holding" if borrower in self._borrowers
            else "waiting for" if borrower in self._waiters else None
        )  # fmt: skip
        if state is not None:
            raise RuntimeError(
                f"this borrower ({_Borrower(borrower).text}) is already {state} "
                "one of this RedisCapacityLimiter's tokens; a borrower may hold "
                "only one"
            )
        free = self._free_names
        name = free.pop() if free else f"{self._key}#{next(self._names)}"
        self._waiters.add(borrower)
        try:
            await arun(
                lease.take(TokenRecord(name), _Borrower(borrower), None, math.inf,
                           None, blocking)
            )  # fmt: skip
        except LockTimeoutError:
            free.append(name)
            raise anyio.WouldBlock from None
        except BaseException:
            free.append(name)
            raise
        finally:
            self._waiters.discard(borrower)
        self._borrowers[borrower] = name

    def _give_up(self, borrower: object) -> str:
        _check_hashable(borrower)
        try:
            return self._borrowers.pop(borrower)
        except KeyError:
            raise RuntimeError(
                f"this borrower ({_Borrower(borrower).text}) isn't holding any "
                "of this RedisCapacityLimiter's tokens"
            ) from None

    def release(self) -> None:
        """Give back the current task's token (sent to the server in the background).

        :raises RuntimeError: if the current task holds no token
        """
        self.release_on_behalf_of(current_task_key())

    def release_on_behalf_of(self, borrower: object) -> None:
        """Give back ``borrower``'s token (sent to the server in the background).

        :raises RuntimeError: if ``borrower`` holds no token
        :raises TypeError: if ``borrower`` is not hashable
        """
        name = self._give_up(borrower)
        self._outbox.append(name)
        if self._board is not None:
            self._board.wake(_OUTBOX)

    async def release_and_wait(self, borrower: object = None) -> None:
        """Give back the token of ``borrower`` (the current task by default) now.

        Finishes even if the caller is cancelled meanwhile.

        :raises RuntimeError: if ``borrower`` holds no token
        :raises LockLostError: if its lease had ended before (after a restart
            of the server, or a pause longer than the lease): others may have
            used the token meanwhile
        """
        if borrower is None:
            borrower = current_task_key()
        lease = self._connected_lease()
        name = self._give_up(borrower)
        lost = await arun(lease.release([name]))
        self._free_names.append(name)
        if lost:
            raise _lost_error(self._key, lost[0][1])

    def _send(
        self, link: TokenLink, lease: LeaseSession, board: TaskBoard
    ) -> Steps[None]:
        """Background: give back what release() let go, store a new capacity."""
        while not lease.closed:
            wake = board.prepare(_OUTBOX)
            yield from self._flush(link, lease)
            yield Pause(board, wake, None)

    def _flush(self, link: TokenLink, lease: LeaseSession) -> Steps[None]:
        if self._total_due:
            self._total_due = False
            try:
                yield from link.set_total(self._total)
            except LockBackendError as exc:
                logger.warning("capacity of %r not stored: %s", self._key, exc)
        names, self._outbox[:] = list(self._outbox), []
        if names:
            for _, reason in (yield from lease.release(names)):
                logger.warning("token of %r given back late: %s", self._key, reason)
            self._free_names += names

    async def statistics(self) -> RedisCapacityLimiterStatistics:
        """Return the pool as the server sees it: holders everywhere, waiters.

        :raises LockBackendError: if the server cannot be reached
        """
        link = self._connected()
        assert isinstance(link, TokenLink)
        total, waiting, found = await arun(link.inspect_pool())
        self._total = total
        holders = []
        for _token, left, info in found:
            parts = (text(info) or "").split(SEP) + [""] * 5
            fence, since, who, host, pid = parts[:5]
            # fence 0: a token taken back after a restart (no fencing token)
            fields = [who, host, pid, since, None, None if fence == "0" else fence]
            holder = parse_holder(left, fields)
            assert holder is not None  # a live lease: ms left > 0
            holders.append(holder)
        return RedisCapacityLimiterStatistics(
            borrowed_tokens=len(holders),
            total_tokens=total,
            borrowers=tuple(self._borrowers),
            tasks_waiting=waiting,
            available_tokens=max(0, total - len(holders)),
            holders=tuple(holders),
        )


def _check_hashable(borrower: object) -> None:
    try:
        hash(borrower)
    except TypeError:
        raise TypeError(
            "borrower must be hashable (a task, a name, an id), not "
            f"{type(borrower).__name__}"
        ) from None


def _lost_error(key: str, reason: str) -> LockLostError:
    return LockLostError(
        f"lost a token of the shared capacity limiter {key!r} before giving "
        f"it back: {reason}. Another process may have used it meanwhile",
        (key,),
        (reason,),
    )
