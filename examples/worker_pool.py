"""A worker pool with backpressure, error handling, progress and a clean shutdown.

Sends simulated notification e-mails through a ``WorkQueue``: the producer is
faster than the workers, so it feels backpressure; some mailboxes are full,
which the error handler records for a later retry; progress lines show how
far the pool got; and an optional deadline stops the pool early, handing
back every e-mail that was not sent.

    python examples/worker_pool.py                  # every e-mail, on asyncio
    python examples/worker_pool.py --backend trio
    python examples/worker_pool.py --deadline 0.2   # stop early: see what comes back
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, field

import anyio

from cc.queues import WorkQueue


@dataclass(frozen=True)
class Email:
    """One message to send."""

    number: int
    to: str


@dataclass
class Tally:
    """What happened to the e-mails, updated by the workers."""

    total: int
    sent: int = 0
    bounced: list[Email] = field(default_factory=list)
    refusals: int = 0
    next_report: int = 0

    @property
    def finished(self) -> int:
        """E-mails sent or bounced so far."""
        return self.sent + len(self.bounced)

    def report_progress(self) -> None:
        """Print a line at every quarter of the way."""
        while self.finished >= self.next_report and self.next_report <= self.total:
            print(f"progress: {self.finished}/{self.total} finished", flush=True)
            self.next_report += max(1, math.ceil(self.total / 4))


async def run(jobs: int, workers: int, deadline: float | None) -> int:
    tally = Tally(total=jobs, next_report=math.ceil(jobs / 4))

    async def send(email: Email) -> None:
        await anyio.sleep(0.002 + (email.number % 5) * 0.001)  # the SMTP round trip
        if email.number % 20 == 19:
            raise ConnectionRefusedError(f"mailbox of {email.to} is full")
        tally.sent += 1
        tally.report_progress()

    async def bounced(error: Exception, email: Email) -> None:
        tally.bounced.append(email)  # kept for a retry later
        tally.report_progress()

    queue = WorkQueue[Email](maxsize=workers * 2, concurrency_limit=workers)
    await queue.start()
    try:
        await queue.process(send, error_handler=bounced)
        with anyio.move_on_after(math.inf if deadline is None else deadline):
            for number in range(jobs):
                email = Email(number, f"user{number}@example.org")
                # Wait up to 1 ms for room; on False, note the backpressure
                # and try again (a real producer might slow its source down).
                while not await queue.put(email, timeout=0.001):
                    tally.refusals += 1
            await queue.join()
    finally:
        # The task that started the queue stops it, outside any cancel scope
        # it opened. Busy workers get 50 ms to finish, then are cancelled.
        leftovers = await queue.stop(timeout=0.05)

    metrics = queue.metrics
    print(f"sent: {tally.sent}")
    print(f"bounced (to retry): {len(tally.bounced)}")
    print(f"handed back unsent: {len(leftovers)}")
    print(f"producer held back: {tally.refusals} time(s)")
    print("queue metrics:", metrics)
    accounted = metrics["processed"] + metrics["errors"] + metrics["handed_back"]
    if accounted != metrics["enqueued"]:
        print("error: some e-mails are unaccounted for", file=sys.stderr)
        return 1
    print("every accepted e-mail is accounted for")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("--jobs", type=int, default=200, help="e-mails to send")
    parser.add_argument("--workers", type=int, default=8, help="concurrent sends")
    parser.add_argument(
        "--deadline", type=float, default=None, help="stop after this many seconds"
    )
    args = parser.parse_args(argv)
    return anyio.run(run, args.jobs, args.workers, args.deadline, backend=args.backend)


if __name__ == "__main__":
    sys.exit(main())
