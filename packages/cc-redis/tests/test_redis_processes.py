"""Locks shared by separate OS processes through a real redis-server."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from cc.locks import LockManager
from cc.redis import RedisLockBackend

WORKER = Path(__file__).with_name("redis_worker.py")
README = Path(__file__).resolve().parents[1] / "README.md"
HIERARCHY = {"counter": 1, "a": 10, "b": 20, "victim": 30}


@pytest.fixture
def spawn(run_script: Any) -> Any:
    """Start a worker process (see redis_worker.py)."""

    def start(
        url: str,
        namespace: str,
        scenario: str,
        api: str,
        iterations: int = 0,
        lease: float = 2.0,
    ) -> subprocess.Popen[str]:
        process: subprocess.Popen[str] = run_script(
            WORKER, url, namespace, scenario, api, iterations, lease
        )
        return process

    return start


def finish(process: subprocess.Popen[str]) -> None:
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert out.strip().endswith("done"), (out, err)


def test_processes_share_locks_without_lost_updates_or_deadlocks(
    redis_server: Any, namespace: str, spawn: Any
) -> None:
    # One process on threads, one on asyncio, one on trio. Each bumps a
    # counter under one lock (an unprotected read-modify-write), then takes
    # the pair "a", "b" named in both orders: the managers take "a" first
    # everywhere, so no two processes can deadlock. The fencing tokens of
    # "a", recorded while it was held, grow in the order the holders got it.
    apis = ["threads", "asyncio", "trio"]
    iterations = 20
    workers = [
        spawn(redis_server.url, namespace, "share", api, iterations) for api in apis
    ]
    for worker in workers:
        finish(worker)
    data = redis.Redis.from_url(redis_server.url)
    total = iterations * len(apis)
    assert int(data.get(f"{namespace}:data:counter")) == total
    assert int(data.get(f"{namespace}:data:a")) == total
    assert int(data.get(f"{namespace}:data:b")) == total
    fences = [int(f) for f in data.lrange(f"{namespace}:data:fences", 0, -1)]
    assert len(fences) == total
    assert fences == sorted(set(fences))
    data.close()


def test_a_killed_holder_blocks_others_only_until_its_lease_ends(
    redis_server: Any, namespace: str, spawn: Any
) -> None:
    holder = spawn(redis_server.url, namespace, "hold", "asyncio", lease=0.6)
    assert holder.stdout is not None
    line = holder.stdout.readline()
    assert line.startswith("held "), line + holder.stderr.read()  # type: ignore[union-attr]
    fence = int(line.split()[1])
    backend = RedisLockBackend(redis_server.url, namespace=namespace)
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
        # The worker's lease was 0.6 s, renewed every 0.2 s: at most 0.6 s left.
        assert waited <= 1.0


def test_readme_examples_with_a_server(redis_server: Any) -> None:
    text = README.read_text()
    blocks = [part.split("```", 1)[0] for part in text.split("```python\n")[1:]]
    shared = [b for b in blocks if "from cc.redis import" in b]
    assert len(shared) == 2
    for block in shared:
        assert "redis://localhost:6379/0" in block
        code = block.replace("redis://localhost:6379/0", redis_server.url)
        exec(compile(code, str(README), "exec"), {"__name__": "readme"})
