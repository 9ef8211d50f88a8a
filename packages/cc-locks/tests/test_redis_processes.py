"""Locks shared by separate OS processes through a real redis-server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from cc.locks import LockManager, RedisLockBackend

WORKER = Path(__file__).with_name("redis_worker.py")
HIERARCHY = {"counter": 1, "a": 10, "b": 20, "victim": 30}


@pytest.fixture
def spawn() -> Iterator[Any]:
    """Start worker processes; every one is gone (killed if need be) at teardown."""
    started: list[subprocess.Popen[str]] = []

    def start(
        url: str, namespace: str, scenario: str, api: str, iterations: int = 0
    ) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [
                sys.executable,
                str(WORKER),
                url,
                namespace,
                scenario,
                api,
                str(iterations),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def finish(process: subprocess.Popen[str]) -> None:
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert out.strip().endswith("done"), (out, err)


def test_no_lost_update_between_processes(
    redis_server: Any, namespace: str, spawn: Any
) -> None:
    # Two processes on threads, one on asyncio, one on trio, one lock.
    apis = ["threads", "asyncio", "trio", "threads"]
    iterations = 40
    workers = [
        spawn(redis_server.url, namespace, "count", api, iterations) for api in apis
    ]
    for worker in workers:
        finish(worker)
    data = redis.Redis.from_url(redis_server.url)
    assert int(data.get(f"{namespace}:data:counter")) == iterations * len(apis)
    data.close()


def test_ordered_pairs_across_processes_never_deadlock(
    redis_server: Any, namespace: str, spawn: Any
) -> None:
    # Each process names the pair in both orders; the managers take "a" then
    # "b" everywhere, so no two processes can deadlock. Fencing tokens of "a",
    # recorded while it was held, grow in the order the holders got it.
    apis = ["threads", "asyncio", "trio"]
    iterations = 30
    workers = [
        spawn(redis_server.url, namespace, "pair", api, iterations) for api in apis
    ]
    for worker in workers:
        finish(worker)
    data = redis.Redis.from_url(redis_server.url)
    total = iterations * len(apis)
    assert int(data.get(f"{namespace}:data:a")) == total
    assert int(data.get(f"{namespace}:data:b")) == total
    fences = [int(f) for f in data.lrange(f"{namespace}:data:fences", 0, -1)]
    assert len(fences) == total
    assert fences == sorted(set(fences))
    data.close()


@pytest.mark.parametrize("api", ["threads", "asyncio"])
def test_a_killed_holder_blocks_others_only_until_its_lease_ends(
    redis_server: Any, namespace: str, spawn: Any, api: str
) -> None:
    holder = spawn(redis_server.url, namespace, "hold", api)
    assert holder.stdout is not None
    line = holder.stdout.readline()
    assert line.startswith("held "), line + holder.stderr.read()  # type: ignore[union-attr]
    fence = int(line.split()[1])
    backend = RedisLockBackend(redis_server.url, namespace=namespace, lease=2.0)
    with LockManager(HIERARCHY, backend=backend) as manager:
        status = manager.get_lock_status()["victim"]
        assert status["pid"] == holder.pid
        assert status["host"] == os.uname().nodename
        assert status["is_locked"] and not status["held_here"]
        assert "redis_worker.py" in status["acquisition_site"]
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        started = time.monotonic()
        with manager.acquire("victim", timeout=5):
            waited = time.monotonic() - started
            assert manager.lease("victim").fencing_token > fence
        # The worker's lease was 2 s and renewed every 2/3 s: at most 2 s left.
        assert waited <= 2.5
