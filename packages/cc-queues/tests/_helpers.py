"""What the queue tests share: letting tasks run, and the ledger's balance."""

from __future__ import annotations

from typing import Any

from anyio.lowlevel import checkpoint

from cc.queues import BoundedQueue, WorkQueue


async def settle(rounds: int = 20) -> None:
    """Let every task that is ready run until it blocks again."""
    for _ in range(rounds):
        await checkpoint()


def accounted(queue: BoundedQueue[Any] | WorkQueue[Any]) -> bool:
    """Whether every item put was processed, failed or handed back."""
    metrics = queue.metrics
    return metrics["enqueued"] == (
        metrics["processed"] + metrics["errors"] + metrics["handed_back"]
    )
