"""What the managers say: order and deadlock reports, who holds a lock, status."""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from threading import RLock
from typing import Any

from cc.locks._errors import DeadlockError
from cc.locks._order import Path
from cc.locks._records import Holder, LockRecord, Site, format_site
from cc.locks._waits import all_cycles
from cc.locks.lowlevel import RemoteHolder, RemoteWait, SharedOrder

__all__ = [
    "deadlock", "declared_violation", "describe_cycle", "inversion",
    "local_held", "merge_remote", "potential_deadlocks", "remote_cycles",
    "remote_deadlock", "remote_held", "shared_inversion", "status", "wait_step",
    "youngest",
]  # fmt: skip

Report = tuple[tuple[str, ...], str, tuple[str, ...]]  # key, message, cycle


def declared_violation(
    wanted: LockRecord[Any], holder: Holder, site: Site, where: str = ""
) -> Report:
    """Describe ``holder`` asking for ``wanted`` below a declared order it holds.

    ``where`` (here and below) follows a holder's name: its pid and host.
    """
    highest = max(
        (r for r in holder.stack if r.order is not None),
        key=lambda r: r.order,  # type: ignore[arg-type, return-value]
    )
    message = (
        f"lock order violation: {holder.describe()}{where} asks for "
        f"{wanted.describe()} "
        f"at {format_site(site)} while holding {highest.describe()}, acquired at "
        f"{format_site(highest._site)}; locks must be taken in ascending order"
    )
    names = (highest.name, wanted.name)
    return ("order", *names), message, (*names, highest.name)


def inversion(
    before: LockRecord[Any], after: LockRecord[Any], holder: Holder, site: Site,
    path: Path, kind: str, where: str = "",
) -> Report:  # fmt: skip
    """Describe taking ``after`` while holding ``before`` against a learned path."""
    return _inversion(
        f"{holder.describe()}{where} takes", before.name, after.name,
        format_site(before._site), format_site(site), path, kind,
    )  # fmt: skip


def shared_inversion(shared: SharedOrder, path: Path, kind: str) -> Report:
    """Describe an order another process published against a path learned here."""
    return _inversion(
        f"{shared.holder} took", shared.before, shared.after,
        format_site(shared.before_site), format_site(shared.after_site), path, kind,
    )  # fmt: skip


def _inversion(
    who_takes: str, before: str, after: str, before_site: str, after_site: str,
    path: Path, kind: str,
) -> Report:  # fmt: skip
    steps = "; then ".join(
        f"{a!r} is declared before {b!r}"
        if seen is None
        else f"{seen.holder} took {b!r} at {format_site(seen.after_site)} while "
        f"holding {a!r} (taken at {format_site(seen.before_site)})"
        for a, b, seen in path
    )
    message = (
        f"potential deadlock: {who_takes} {after!r} at {after_site} while holding "
        f"{before!r} (taken at {before_site}), but the opposite order was seen "
        f"before: {steps}. Two {kind}s doing both at the same time would deadlock"
    )
    cycle = (before, after, *(b for _, b, _ in path))
    return ("learned", *sorted(cycle[:-1])), message, cycle


def wait_step(holder: Holder) -> tuple[LockRecord[Any], Holder] | None:
    """Return the wait-for edge out of ``holder``: the lock it waits for, its holder."""
    record = holder.waiting_for
    owner = None if record is None else record._owner
    return None if owner is None else (record, owner)  # type: ignore[return-value]


def _chain(first: str, links: Sequence[tuple[str, str]]) -> str:
    """Describe a wait-for cycle: ``first`` waits, then each (lock, its holder)."""
    text = f"{first} waits for {links[0][0]!r}, held by {links[0][1]}"
    for lock, holder in links[1:]:
        text += f", which waits for {lock!r}, held by {holder}"
    return text


def describe_cycle(
    start: Holder, path: list[tuple[LockRecord[Any], Holder]], where: str = ""
) -> str:
    """Describe a wait-for cycle from ``start``, one link at a time."""
    links = [
        (lock.name, f"{o.describe()}{where} (acquired at {format_site(lock._site)})")
        for lock, o in path
    ]
    return _chain(start.describe() + where, links)


def deadlock(
    holder: Holder, path: list[tuple[LockRecord[Any], Holder]], site: Site,
    where: str = "",
) -> tuple[tuple[str, ...], str, DeadlockError]:  # fmt: skip
    """Return the report key, the report and the error of an averted deadlock."""
    text = describe_cycle(holder, path, where)
    names = tuple(lock.name for lock, _ in path)
    error = DeadlockError(
        f"deadlock: {text}. {holder.describe()} asked at {format_site(site)}; "
        "waiting would never end, so it does not wait",
        (*names, names[0]),
        tuple(owner.describe() for _, owner in path),
    )
    return ("deadlock", *sorted(names)), f"deadlock averted: {text}", error


def youngest(cycle: Sequence[RemoteWait]) -> RemoteWait:
    """Return the victim of a cycle across processes: its youngest waiter.

    By the store's clock (ties: the greatest node), so that every process
    that finds the cycle picks the same one.
    """
    return max(cycle, key=lambda wait: (wait.waiter.since or 0.0, wait.node))


def _remote_links(cycle: Sequence[RemoteWait]) -> list[tuple[str, str]]:
    """Each lock of a cycle across processes, with its holder: the next waiter."""
    return [
        (wait.lock, cycle[(i + 1) % len(cycle)].waiter.describe())
        for i, wait in enumerate(cycle)
    ]


def remote_deadlock(
    cycle: Sequence[RemoteWait], victim: RemoteWait, site: Site, raising: bool
) -> tuple[tuple[str, ...], str, DeadlockError]:
    """Return the report key, the report and the victim's error of a cycle.

    ``cycle[0]`` is the wait of the caller, which began at ``site``;
    ``raising``: whether the victim raises (policy "raise").
    """
    links = _remote_links(cycle)
    text = _chain(cycle[0].waiter.describe(), links)
    names = tuple(wait.lock for wait in cycle)
    who = victim.waiter.describe()
    error = DeadlockError(
        f"deadlock across processes: {text}. {cycle[0].waiter.describe()} asked "
        f"at {format_site(site)} and is the youngest waiter of the cycle, so it "
        "gives up the wait and rolls back; the others go on waiting",
        (*names, names[0]),
        tuple(holder for _, holder in links),
    )
    report = (
        f"deadlock across processes averted: {text}; {who}, the youngest "
        "waiter, gave up its wait"
        if raising
        else f"deadlock across processes: {text}; each of them waits until its "
        f"timeout (the youngest waiter is {who})"
    )
    return ("deadlock", *sorted(names)), report, error


def remote_cycles(waits: Sequence[tuple[RemoteWait, str | None]]) -> list[str]:
    """Describe the live cycles of a store's wait graph (waits, holder nodes)."""
    by_node = {wait.node: (wait, holder) for wait, holder in waits}

    def step(node: str) -> tuple[RemoteWait, str] | None:
        wait, holder = by_node[node]
        return None if holder is None or holder not in by_node else (wait, holder)

    found = []
    for _, path in all_cycles(list(by_node), step):
        cycle = [wait for wait, _ in path]
        text = _chain(cycle[0].waiter.describe(), _remote_links(cycle))
        found.append(f"live deadlock across processes: {text}")
    return found


def local_held(record: LockRecord[Any]) -> tuple[str | None, str]:
    """Describe who holds ``record``'s local lock: ``(holder, "held ..." text)``."""
    owner = record._owner
    statistics = getattr(record._raw, "statistics", None)  # cc.primitives.Lock
    handed_to = None if owner or statistics is None else statistics().owner
    handed_to = getattr(handed_to, "name", handed_to)  # an anyio.TaskInfo
    if handed_to is not None:  # released and handed to a task not yet running
        return (
            f"task {handed_to!r}",
            f"by task {handed_to!r}, to which it was just handed",
        )
    if owner is None:
        return None, (
            "by no holder the manager knows of (it may be used outside the "
            "manager, or was released just now)"
        )
    since = time.monotonic() - record._acquired_at
    where = format_site(record._site)
    return (
        owner.describe(),
        f"by {owner.describe()} for {since:.3f} s, acquired at {where}",
    )


def remote_held(remote: RemoteHolder | None, queued: bool) -> tuple[str | None, str]:
    """Describe who holds a lock in a store: ``(holder, "held ..." text)``."""
    if remote is None:
        if queued:
            return None, "for a process that queued for it earlier"
        return None, "by another process (whose lease ended just now)"
    held = f"by {remote.describe()}"
    if remote.since is not None:
        held += f" for {max(0.0, time.time() - remote.since):.3f} s"
    if remote.site is not None:
        held += f", acquired at {remote.site}"
    return remote.describe(), held


def status(
    records: Iterable[LockRecord[Any]], meta: RLock
) -> dict[str, dict[str, Any]]:
    """Return the live state of each record, by name."""
    with meta:
        records = list(records)
        waiting = {r.name: [h.describe() for h in r._waiting] for r in records}
    fields = ("order", "description", "owner", "acquired_at", "is_locked", "depth")
    entries = {r.name: {field: getattr(r, field) for field in fields} for r in records}
    for r in records:
        entries[r.name].update(
            waiters=len(waiting[r.name]),
            waiting=waiting[r.name],
            hold_time=r.hold_time,
            acquisition_site=r.acquisition_site,
        )
    return entries


def merge_remote(
    entries: dict[str, dict[str, Any]], holders: list[RemoteHolder | None]
) -> None:
    """Add what the store knows to each entry of :func:`status`."""
    for entry, remote in zip(entries.values(), holders, strict=True):
        held_here = entry["held_here"] = entry["is_locked"]
        if remote is None:
            entry.update(host=None, pid=None, fencing_token=None, lease_expires_in=None)
            continue
        entry.update(
            is_locked=True, owner=remote.describe(), acquired_at=remote.since,
            host=remote.host, pid=remote.pid, fencing_token=remote.fencing_token,
            lease_expires_in=remote.expires_in,
        )  # fmt: skip
        if not held_here:
            since = remote.since
            entry.update(
                depth=None, acquisition_site=remote.site,
                hold_time=None if since is None else max(0.0, time.time() - since),
            )  # fmt: skip


def potential_deadlocks(
    records: Collection[LockRecord[Any]], waiting: Collection[Holder],
    reports: Mapping[Any, str], meta: RLock, long_hold: float,
    where: str = "", remote: Sequence[str] = (),
) -> list[str]:  # fmt: skip
    """Describe long holds, live wait-for cycles, the ``remote`` ones, then reports.

    ``meta`` is held only to copy the waiters and reports and to confirm each
    cycle found; the search (linear) runs without it.
    """
    now = time.monotonic()
    cutoff = now - long_hold
    found = [
        f"long hold: {r.describe()} has been held by {r.owner}{where} for "
        f"{now - r._acquired_at:.3f} s (threshold {long_hold:g} s), acquired at "
        f"{format_site(r._site)}"
        for r in list(records)
        if r._owner is not None and r._acquired_at < cutoff
    ]
    with meta:
        waiters, recorded = list(waiting), list(reports.values())
    for start, path in all_cycles(waiters, wait_step):
        nodes = [start] + [owner for _, owner in path[:-1]]
        with meta:  # the walk ran unlocked: is the cycle still there?
            if all(wait_step(a) == b for a, b in zip(nodes, path, strict=True)):
                found.append(f"live deadlock: {describe_cycle(start, path, where)}")
    return found + list(remote) + recorded
