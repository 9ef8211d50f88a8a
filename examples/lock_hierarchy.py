"""Declare a lock hierarchy, take locks in any order safely, read a deadlock report.

Three parts:

1. Tasks move money between accounts. Each transfer names the two account
   locks in whatever order it likes; the ``AsyncLockManager`` takes them in
   the declared order, so the transfers never deadlock.
2. Two tasks take two locks of unknown order the opposite ways round (with the
   order checks relaxed to "warn"); the manager raises ``DeadlockError`` in
   the one whose wait would close the cycle, and the report says who holds
   what, and where it was taken.
3. The same transfers from threads, through a ``LockManager``.

    python examples/lock_hierarchy.py
    python examples/lock_hierarchy.py --backend trio --transfers 500
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import threading

import anyio
import anyio.lowlevel

from cc.locks import AsyncLockManager, DeadlockError, LockManager

ACCOUNTS = 8
OPENING_BALANCE = 1_000


def account(number: int) -> str:
    return f"account-{number}"


def hierarchy() -> dict[str, tuple[int, str]]:
    """Accounts first (orders 100, 110, ...), the audit log last."""
    locks = {
        account(n): (100 + 10 * n, f"balance of account {n}") for n in range(ACCOUNTS)
    }
    locks["audit-log"] = (1_000, "the append-only audit log")
    return locks


async def transfers_between_tasks(count: int, seed: int) -> bool:
    print("1. transfers between tasks")
    manager = AsyncLockManager(hierarchy())
    balances = [OPENING_BALANCE] * ACCOUNTS
    audit: list[str] = []
    rng = random.Random(seed)

    async def transfer(source: int, target: int, amount: int) -> None:
        # The names come in a random order; the manager sorts them.
        async with manager.acquire(account(source), account(target), timeout=5):
            if balances[source] >= amount:
                balances[source] -= amount
                await anyio.lowlevel.checkpoint()  # let the others contend
                balances[target] += amount
                async with manager.acquire("audit-log"):  # higher order: fine
                    audit.append(f"{source}->{target}: {amount}")

    async with anyio.create_task_group() as tg:
        for _ in range(count):
            source, target = rng.sample(range(ACCOUNTS), 2)
            tg.start_soon(transfer, source, target, rng.randint(1, 200))

    total = sum(balances)
    print(f"   {count} transfers, {len(audit)} made, total balance {total}")
    stats = manager.statistics()
    busiest = sorted(stats, key=lambda name: stats[name].contended_acquisitions)[-3:]
    for name in reversed(busiest):
        s = stats[name]
        print(
            f"   {name:<10} {s.acquisitions:>4} acquisitions, "
            f"{s.contended_acquisitions:>4} waited, "
            f"longest wait {s.max_wait_time * 1000:.2f} ms"
        )
    reports = await manager.detect_potential_deadlocks()
    print(f"   deadlock risks found: {len(reports)}")
    return total == OPENING_BALANCE * ACCOUNTS and not reports


async def deadlock_report() -> bool:
    print("2. a deadlock, caught and reported")
    manager = AsyncLockManager({"orders": None, "stock": None}, policy="warn")
    orders_held, stock_held = anyio.Event(), anyio.Event()
    caught: list[DeadlockError] = []

    async def checkout() -> None:
        async with manager.acquire("orders"):
            orders_held.set()
            await stock_held.wait()
            async with manager.acquire("stock", timeout=5):
                pass

    async def restock() -> None:
        await orders_held.wait()
        async with manager.acquire("stock"):
            stock_held.set()
            await anyio.wait_all_tasks_blocked()  # checkout now waits for stock
            try:
                async with manager.acquire("orders", timeout=5):
                    pass
            except DeadlockError as error:
                caught.append(error)

    async with anyio.create_task_group() as tg:
        tg.start_soon(checkout, name="checkout")
        tg.start_soon(restock, name="restock")

    error = caught[0]
    print(f"   {error}")
    print(f"   cycle: {' -> '.join(error.cycle)}")
    print(f"   holders: {', '.join(error.holders)}")
    return error.cycle == ("orders", "stock", "orders")


def transfers_between_threads(count: int, seed: int) -> bool:
    print("3. transfers between threads")
    manager = LockManager(hierarchy())
    balances = [OPENING_BALANCE] * ACCOUNTS
    rng = random.Random(seed)
    plan = [
        (*rng.sample(range(ACCOUNTS), 2), rng.randint(1, 200)) for _ in range(count)
    ]

    def run(share: list[tuple[int, int, int]]) -> None:
        for source, target, amount in share:
            with manager.acquire(account(target), account(source), timeout=5):
                if balances[source] >= amount:
                    balances[source] -= amount
                    balances[target] += amount

    threads = [threading.Thread(target=run, args=(plan[n::4],)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = sum(balances)
    acquisitions = sum(s.acquisitions for s in manager.statistics().values())
    print(f"   {count} transfers on 4 threads, {acquisitions} lock acquisitions")
    print(f"   total balance {total}")
    return (
        total == OPENING_BALANCE * ACCOUNTS and not manager.detect_potential_deadlocks()
    )


async def run(transfers: int, seed: int) -> int:
    ok = await transfers_between_tasks(transfers, seed)
    ok = await deadlock_report() and ok
    ok = transfers_between_threads(transfers, seed) and ok
    print("all checks passed" if ok else "CHECKS FAILED")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("--transfers", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    # Part 2 relaxes the order checks to "warn": show what they log.
    logging.basicConfig(
        stream=sys.stdout, level=logging.WARNING, format="   %(name)s: %(message)s"
    )
    return anyio.run(run, args.transfers, args.seed, backend=args.backend)


if __name__ == "__main__":
    sys.exit(main())
