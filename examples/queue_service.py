r"""A web service that queues money transfers and drains its queue on shutdown.

A small Starlette application on uvicorn:

* ``POST /transfers`` with ``{"id": ..., "source": ..., "target": ...,
  "amount": ...}`` puts the transfer in a ``WorkQueue`` and answers ``202``
  at once; ``503`` when the queue stays full (backpressure) or is stopping;
* the queue is started in the application's lifespan, so it lives as long
  as the server: a worker takes the two accounts' locks from an
  ``AsyncLockManager`` (in their declared order, whatever order a transfer
  names them in), moves the money and writes the transfer to the ledger;
* on shutdown (SIGTERM or Ctrl-C) uvicorn stops taking requests and the
  lifespan drains the queue: ``stop(timeout=DRAIN, drain=True)`` finishes
  what is queued within ``--drain`` seconds, then hands back the rest, which
  goes to the ledger as "handed back" for a later run to pick up;
* ``GET /stats`` shows the queue's metrics.

Every transfer the service accepted ends in the ledger exactly once, as
processed or handed back, and the balances always add up.

    python examples/queue_service.py --port 8000 --ledger ledger.jsonl
    curl -X POST localhost:8000/transfers \
         -d '{"id": "t1", "source": 1, "target": 2, "amount": 5}'
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from cc.locks import AsyncLockManager
from cc.queues import QueueStateError, WorkQueue


@dataclass(frozen=True)
class Transfer:
    """One accepted transfer."""

    id: str
    source: int
    target: int
    amount: int


class Bank:
    """Accounts, their locks, and the ledger every transfer ends up in."""

    def __init__(self, accounts: int, latency: float, ledger: TextIO) -> None:
        self.balances = dict.fromkeys(range(accounts), 1_000)
        self.latency = latency
        self.ledger = ledger
        # One lock per account, ordered by account number: a worker takes
        # both of a transfer's locks in that order, so none can deadlock.
        self.locks = AsyncLockManager(
            {self.lock(n): (n, f"account {n}") for n in range(accounts)}
        )

    @staticmethod
    def lock(account: int) -> str:
        """Return the name of an account's lock."""
        return f"account-{account}"

    def record(self, outcome: str, transfer: Transfer) -> None:
        """Write what became of a transfer to the ledger."""
        self.ledger.write(json.dumps({"outcome": outcome, **asdict(transfer)}) + "\n")

    async def apply(self, transfer: Transfer) -> None:
        """Move the money, then write it down (the workers' function)."""
        await anyio.sleep(self.latency)  # the call to the payment network
        names = {self.lock(transfer.source), self.lock(transfer.target)}
        async with self.locks.acquire(*names, timeout=10):
            # No await between moving the money and writing it down: a
            # transfer cancelled by the drain deadline did neither.
            self.balances[transfer.source] -= transfer.amount
            self.balances[transfer.target] += transfer.amount
            self.record("processed", transfer)

    async def failed(self, error: Exception, transfer: Transfer) -> None:
        """Write a transfer that failed to the ledger (the error handler)."""
        self.record(f"failed: {error}", transfer)


def create_app(bank: Bank, workers: int, maxsize: int, drain: float) -> Starlette:
    queue = WorkQueue[Transfer](maxsize=maxsize, concurrency_limit=workers)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # The lifespan task starts the queue, so it is the one that stops it.
        async with queue:
            await queue.process(bank.apply, error_handler=bank.failed)
            print("ready", flush=True)
            yield
            # Shutting down: finish what is queued within the deadline, then
            # hand back the rest (a later run may pick them up).
            leftovers = await queue.stop(timeout=drain, drain=True)
        for transfer in leftovers:
            bank.record("handed back", transfer)
        total = sum(bank.balances.values())
        bank.ledger.write(
            json.dumps({"outcome": "summary", "total": total, **queue.metrics}) + "\n"
        )
        bank.ledger.flush()
        print(f"stopped: {len(leftovers)} transfer(s) handed back", flush=True)

    async def transfer(request: Request) -> JSONResponse:
        body: dict[str, Any] = await request.json()
        item = Transfer(
            str(body["id"]),
            int(body["source"]),
            int(body["target"]),
            int(body["amount"]),
        )
        try:
            accepted = await queue.put(item, timeout=0.05)
        except QueueStateError:
            return JSONResponse({"status": "stopping"}, status_code=503)
        if not accepted:  # still full after 50 ms: shed the load
            return JSONResponse({"status": "busy"}, status_code=503)
        return JSONResponse({"status": "accepted"}, status_code=202)

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse(
            {"status": queue.status.value, "size": queue.size, **queue.metrics}
        )

    routes = [
        Route("/transfers", transfer, methods=["POST"]),
        Route("/stats", stats),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--ledger", type=Path, default=Path("ledger.jsonl"))
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4, help="concurrency limit")
    parser.add_argument("--maxsize", type=int, default=1000, help="queue size")
    parser.add_argument(
        "--latency", type=float, default=0.01, help="seconds per transfer"
    )
    parser.add_argument(
        "--drain", type=float, default=5.0, help="seconds to drain on shutdown"
    )
    args = parser.parse_args(argv)
    with args.ledger.open("w") as ledger:
        bank = Bank(args.accounts, args.latency, ledger)
        app = create_app(bank, args.workers, args.maxsize, args.drain)
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            log_level="warning",
            timeout_graceful_shutdown=1,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
