"""What the managers report: live status, deadlock risks, who holds a lock."""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping
from threading import RLock
from typing import Any

from cc.locks._records import Holder, LockRecord, format_site
from cc.locks._store import RemoteHolder
from cc.locks._waits import all_cycles

__all__ = [
    "describe_cycle",
    "merge_remote",
    "potential_deadlocks",
    "remote_held",
    "status",
    "wait_step",
]


def wait_step(holder: Holder) -> tuple[LockRecord[Any], Holder] | None:
    """Return the wait-for edge out of ``holder``: the lock it waits for, its holder."""
    record = holder.waiting_for
    if record is None:
        return None
    owner = record._owner
    return None if owner is None else (record, owner)


def describe_cycle(start: Holder, path: list[tuple[LockRecord[Any], Holder]]) -> str:
    """Describe a wait-for cycle from ``start``, one link at a time."""
    parts = [f"{start.describe()} waits for {path[0][0].name!r}"]
    for index, (lock, owner) in enumerate(path):
        held = f"held by {owner.describe()} (acquired at {format_site(lock._site)})"
        if index + 1 < len(path):
            parts.append(f"{held}, which waits for {path[index + 1][0].name!r}")
        else:
            parts.append(held)
    return ", ".join(parts)


def remote_held(remote: RemoteHolder | None, queued: bool) -> tuple[str | None, str]:
    """Describe who holds a lock in a store: ``(holder, "held ..." text)``."""
    if remote is None:
        if queued:
            return None, "for a process that queued for it earlier"
        return None, "by another process (whose lease ended just now)"
    holder = remote.describe()
    held = f"by {holder}"
    if remote.since is not None:
        held += f" for {max(0.0, time.time() - remote.since):.3f} s"
    if remote.site is not None:
        held += f", acquired at {remote.site}"
    return holder, held


def status(
    records: Iterable[LockRecord[Any]], meta: RLock
) -> dict[str, dict[str, Any]]:
    """Return the live state of each record, by name."""
    with meta:
        records = list(records)
        waiting = {r.name: [h.describe() for h in r._waiting] for r in records}
    return {
        record.name: {
            "order": record.order,
            "description": record.description,
            "owner": record.owner,
            "acquired_at": record.acquired_at,
            "is_locked": record.is_locked,
            "depth": record.depth,
            "waiters": len(waiting[record.name]),
            "waiting": waiting[record.name],
            "hold_time": record.hold_time,
            "acquisition_site": record.acquisition_site,
        }
        for record in records
    }


def merge_remote(
    entries: dict[str, dict[str, Any]], holders: list[RemoteHolder | None]
) -> None:
    """Add what the store knows to each entry of :func:`status`."""
    for entry, remote in zip(entries.values(), holders, strict=True):
        held_here = entry["is_locked"]
        entry["held_here"] = held_here
        if remote is None:
            entry.update(host=None, pid=None, fencing_token=None, lease_expires_in=None)
            continue
        entry.update(
            is_locked=True,
            owner=remote.describe(),
            acquired_at=remote.since,
            host=remote.host,
            pid=remote.pid,
            fencing_token=remote.fencing_token,
            lease_expires_in=remote.expires_in,
        )
        if not held_here:
            since = remote.since
            entry.update(
                depth=None,
                hold_time=None if since is None else max(0.0, time.time() - since),
                acquisition_site=remote.site,
            )


def potential_deadlocks(
    records: Collection[LockRecord[Any]],
    waiting: Collection[Holder],
    reports: Mapping[Any, str],
    meta: RLock,
    long_hold: float,
) -> list[str]:
    """Describe long holds, live wait-for cycles, then the recorded reports.

    The manager's lock is held only to copy the waiting holders and the
    reports, and to confirm each cycle found; the search itself (one pass,
    linear in the waiters) runs without it.
    """
    found: list[str] = []
    now = time.monotonic()
    for record in list(records):
        owner = record._owner
        held = now - record._acquired_at
        if owner is not None and held > long_hold:
            found.append(
                f"long hold: {record.describe()} has been held by "
                f"{owner.describe()} for {held:.3f} s (threshold "
                f"{long_hold:g} s), acquired at {format_site(record._site)}"
            )
    with meta:
        waiters = list(waiting)
        recorded = list(reports.values())
    for start, path in all_cycles(waiters, wait_step):
        with meta:  # the walk ran unlocked: confirm that the cycle is still there
            nodes = [start] + [owner for _, owner in path[:-1]]
            if all(wait_step(a) == b for a, b in zip(nodes, path, strict=True)):
                found.append(f"live deadlock: {describe_cycle(start, path)}")
    return found + recorded
