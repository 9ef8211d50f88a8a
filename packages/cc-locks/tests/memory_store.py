"""A lock store in this process's memory, for the tests of the shared path.

It implements cc.locks' store interface in full (owner tokens, leases that
expire, release by owner only, waiters woken when a lock frees, holders
reported), so that the managers' shared path is exercised without a server;
cc-redis tests the same path against a real Redis.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from cc.locks import Lease, LockBackendError, LockTimeoutError
from cc.locks.lowlevel import (
    AWAIT,
    DIRECT,
    IN_THREAD,
    Call,
    Pause,
    RemoteHolder,
    RemoteWait,
    Reporter,
    SharedOrder,
    Shielded,
    Steps,
    format_site,
)


class MemoryStore:
    """Locks shared by the managers that use this object.

    :param mode: how tasks run the store's calls: ``DIRECT``, ``AWAIT`` or
        ``IN_THREAD`` (threads always call directly)
    :param lease: seconds a lease lasts; nothing renews it here
    """

    def __init__(self, mode: int = DIRECT, lease: float = 60.0) -> None:
        self.mode = mode
        self.lease = lease
        self.down = False  # True: every call fails with LockBackendError
        self.keys: dict[str, tuple[str, int, RemoteHolder]] = {}
        self.expires: dict[str, float] = {}
        self.fence = 0
        self.boards: list[Any] = []
        self.lost: list[Lease] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "<MemoryStore>"

    def session(self, reporter: Reporter, board: Any, *, tasks: bool) -> MemorySession:
        return MemorySession(self, reporter, board, self.mode if tasks else DIRECT)

    # -- what the sessions call -------------------------------------------------

    def check(self) -> None:
        if self.down:
            raise LockBackendError("the memory store is down")

    def holder(self, name: str) -> RemoteHolder | None:
        if name in self.expires and self.expires[name] <= time.monotonic():
            del self.keys[name], self.expires[name]  # the lease ran out
        entry = self.keys.get(name)
        return None if entry is None else entry[2]

    def take(self, name: str, token: str, who: str, site: str) -> tuple[bool, Any]:
        self.check()
        with self._lock:
            holder = self.holder(name)
            if holder is not None:
                return False, holder
            self.fence += 1
            remote = RemoteHolder(who, "memory", 1, time.time(), site, self.fence, None)
            self.keys[name] = (token, self.fence, remote)
            self.expires[name] = time.monotonic() + self.lease
            return True, remote

    def release(self, names: Sequence[str], tokens: Sequence[str]) -> list[int]:
        self.check()
        results = []
        with self._lock:
            for name, token in zip(names, tokens, strict=True):
                self.holder(name)  # drop an expired lease
                entry = self.keys.get(name)
                if entry is not None and entry[0] == token:
                    del self.keys[name], self.expires[name]
                    results.append(1)
                else:
                    results.append(0 if entry is None else -1)
        for board in list(self.boards):
            for name in names:
                board.wake(name)
        return results

    def inspect(self, names: Sequence[str]) -> list[RemoteHolder | None]:
        self.check()
        with self._lock:
            return [self.holder(name) for name in names]


class MemorySession:
    """One manager's session on a :class:`MemoryStore`."""

    def __init__(self, store: MemoryStore, reporter: Reporter, board: Any, mode: int):
        self.store = store
        self.reporter = reporter
        self.board = board
        self.mode = mode
        self.closed = False
        self.held: dict[str, Lease] = {}
        self.tokens = 0

    def call(self, fn: Callable[..., Any], *args: Any) -> Call:
        if self.mode == AWAIT:

            async def run() -> Any:
                return fn(*args)

            return Call(run, mode=AWAIT)
        return Call(fn, *args, mode=self.mode)

    def open(self) -> Steps[None]:
        yield self.call(self.store.check)
        self.store.boards.append(self.board)

    def background(self) -> list[tuple[str, Steps[None]]]:
        return [("memory store idle loop", self.idle())]

    def idle(self) -> Steps[None]:
        while not self.closed:
            yield Pause(self.board, self.board.prepare("idle"), None)

    def take(
        self, record: Any, holder: Any, site: Any, deadline: float,
        timeout: float | None, blocking: bool,
    ) -> Steps[float]:  # fmt: skip
        name = record.name
        self.tokens += 1
        token = f"{id(self)}:{self.tokens}"
        started = time.monotonic()
        waiting = False
        try:
            while True:
                wake = self.board.prepare(name)
                ok, remote = yield self.call(
                    self.store.take, name, token, holder.describe(), format_site(site)
                )
                if ok:
                    self.held[name] = Lease(
                        name, token, remote.fencing_token, remote.since,
                        time.monotonic() + self.store.lease,
                    )  # fmt: skip
                    return time.monotonic() - started if waiting else 0.0
                now = time.monotonic()
                if not blocking or now >= deadline:
                    raise self.reporter.remote_unavailable(
                        record, remote, False, timeout, blocking
                    )
                if not waiting:
                    waiting = True
                    self.reporter.wait_begins(holder, record)
                yield Pause(self.board, wake, min(deadline - now, 0.05))
        finally:
            if waiting:
                self.reporter.wait_ends(holder, record)

    def release(self, names: Sequence[str]) -> Steps[list[tuple[str, str]]]:
        leases = [self.held.pop(name, None) for name in names]
        if self.closed or None in leases:
            return [
                (name, "its manager was closed while it was held") for name in names
            ]
        tokens = [lease.token for lease in leases if lease is not None]
        results = yield Shielded(self._release(names, tokens), 1.0)
        return [
            (name, "its lease had expired")
            for name, result in zip(names, results, strict=True)
            if result != 1
        ]

    def _release(self, names: Sequence[str], tokens: Sequence[str]) -> Steps[list[int]]:
        return (yield self.call(self.store.release, names, tokens))

    def lease(self, name: str) -> Lease | None:
        return self.held.get(name)

    def inspect(self, names: Sequence[str]) -> Steps[list[RemoteHolder | None]]:
        return (yield self.call(self.store.inspect, names))

    def close(self) -> Steps[None]:
        if self.closed:
            return
        self.closed = True
        for lease in self.held.values():
            if lease.mark_lost("its manager was closed while it was held"):
                self.store.lost.append(lease)
                self.reporter.report(("lost", lease.name), f"lease lost: {lease.name}")
        leftover = list(self.held)
        self.board.close()
        if leftover:
            tokens = [self.held[name].token for name in leftover]
            yield Shielded(self._release(leftover, tokens), 1.0)

    def disconnect(self) -> Steps[None]:
        if self.board in self.store.boards:
            self.store.boards.remove(self.board)
        yield self.call(time.monotonic)


class SharingMemoryStore(MemoryStore):
    """A memory store whose sessions share waits and learned orders.

    Each session stands for a process of its own (``pid`` 101, 102...): it
    publishes each wait, finds wait-for cycles through its own wait and
    shares learned orders, at once, with the other sessions.
    """

    def __init__(self, mode: int = DIRECT, lease: float = 60.0) -> None:
        super().__init__(mode, lease)
        self.waits: dict[str, RemoteWait] = {}
        self.nodes: dict[str, str] = {}  # lock name -> the node holding it
        self.orders: list[tuple[Any, SharedOrder]] = []
        self.sessions: list[SharingMemorySession] = []

    def session(
        self, reporter: Reporter, board: Any, *, tasks: bool
    ) -> SharingMemorySession:
        session = SharingMemorySession(
            self, reporter, board, self.mode if tasks else DIRECT
        )
        self.sessions.append(session)
        return session

    def cycle(self, node: str) -> tuple[list[RemoteWait], str | None]:
        """The cycle of waits and holders through ``node``'s wait, or [].

        Also the node where the chain ended, if it is of ``node``'s session.
        """
        path = [self.waits[node]]
        holder = self.nodes.get(path[0].lock)
        while holder is not None and holder != node and holder in self.waits:
            if any(wait.node == holder for wait in path):
                return [], None
            path.append(self.waits[holder])
            holder = self.nodes.get(path[-1].lock)
        if holder == node:
            return path, None
        if holder is not None and holder.split(".")[0] == node.split(".")[0]:
            return path, holder
        return [], None


class SharingMemorySession(MemorySession):
    """A session of a :class:`SharingMemoryStore`: a process of its own."""

    store: SharingMemoryStore

    def __init__(self, store: SharingMemoryStore, *args: Any) -> None:
        super().__init__(store, *args)
        self.pid = 101 + len(store.sessions)
        self.identity = f"pid {self.pid} on memory"

    def open(self) -> Steps[None]:
        yield from super().open()
        self.reporter.merge_order(
            [edge for session, edge in self.store.orders if session is not self]
        )

    def share_order(self, edge: SharedOrder) -> None:
        self.store.orders.append((self, edge))
        for session in self.store.sessions:
            if session is not self and not session.closed:
                session.reporter.merge_order([edge])

    def look_for_a_cycle(self, holder: Any, site: Any, node: str) -> None:
        cycle, home = self.store.cycle(node)
        if home is None:
            if cycle:
                self.reporter.remote_cycle(holder, site, cycle)
            return
        local = self.reporter.local_chain(int(home.split(".")[1], 16), holder)
        if local:
            cycle += [
                RemoteWait(
                    f"{self.pid}.{id(waiter):x}",
                    lock,
                    RemoteHolder(
                        waiter.describe(), "memory", self.pid, None, None, None, None
                    ),
                )
                for waiter, lock in local
            ]
            self.reporter.remote_cycle(holder, site, cycle, seen_here_only=True)

    def _release(self, names: Sequence[str], tokens: Sequence[str]) -> Steps[list[int]]:
        for name in names:
            self.store.nodes.pop(name, None)
        return (yield from super()._release(names, tokens))

    def wait_graph(self) -> Steps[list[tuple[RemoteWait, str | None]]]:
        yield self.call(self.store.check)
        return [(w, self.store.nodes.get(w.lock)) for w in self.store.waits.values()]

    def take(
        self, record: Any, holder: Any, site: Any, deadline: float,
        timeout: float | None, blocking: bool,
    ) -> Steps[float]:  # fmt: skip
        store, node = self.store, f"{self.pid}.{id(holder):x}"
        detect = self.reporter.detect and self.reporter.policy != "off"
        waited = False
        try:
            while True:
                if waited and detect:
                    self.look_for_a_cycle(holder, site, node)
                steps = super().take(record, holder, site, time.monotonic(), timeout,
                                     False)  # fmt: skip
                try:
                    got = yield from steps
                except LockTimeoutError:
                    if not blocking or time.monotonic() >= deadline:
                        raise
                else:
                    store.nodes[record.name] = node
                    return got
                if not waited:
                    waited = True
                    self.reporter.wait_begins(holder, record)
                    who = RemoteHolder(
                        holder.describe(), "memory", self.pid, time.time(),
                        format_site(site), None, None,
                    )  # fmt: skip
                    store.waits[node] = RemoteWait(node, record.name, who)
                yield Pause(self.board, self.board.prepare(record.name), 0.01)
        finally:
            store.waits.pop(node, None)
            if waited:
                self.reporter.wait_ends(holder, record)


__all__ = ["AWAIT", "DIRECT", "IN_THREAD", "MemoryStore", "SharingMemoryStore"]
