"""Shared limits across 8 real OS processes and a real redis-server."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from cc.redis import RedisCapacityLimiter

WORKER = Path(__file__).with_name("limits_worker.py")
PROCESSES = 8
APIS = ["asyncio", "trio"] * (PROCESSES // 2)


@pytest.fixture
def spawn(run_script: Any) -> Any:
    """Start a worker process (see limits_worker.py)."""
    return lambda *args: run_script(WORKER, *args)


def start_together(processes: list[subprocess.Popen[str]]) -> None:
    """Wait until every process is connected, then let them all go."""
    for process in processes:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.strip() == "ready", line + process.stderr.read()  # type: ignore[union-attr]
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()


def finish(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, (out, err)
    assert out.strip().endswith("done"), (out, err)
    return out


def test_eight_processes_share_one_exact_rate(
    redis_server: Any, namespace: str, spawn: Any
) -> None:
    rate, period, count = 8, 0.5, 6
    workers = [
        spawn("rate", redis_server.url, namespace, api, rate, period, count)
        for api in APIS
    ]
    start_together(workers)
    grants: list[int] = []
    for worker in workers:
        for line in finish(worker).splitlines():
            if line.startswith("granted "):
                granted, returned = map(int, line.split()[1:])
                # The caller never went on before its grant (server clock).
                assert returned >= granted
                grants.append(granted)
    assert len(grants) == PROCESSES * count
    grants.sort()
    window = round(period * 1e6)
    # No window of one period, wherever it starts, holds more than the rate.
    for index, start in enumerate(grants):
        inside = [g for g in grants[index:] if g < start + window]
        assert len(inside) <= rate, (start, inside)
    # The processes always had a request waiting: the rate was used in full.
    achieved = (len(grants) - rate) / ((grants[-1] - grants[0]) / 1e6)
    assert abs(achieved - rate / period) <= 0.1 * rate / period, achieved


def test_eight_processes_share_tokens_through_sigkills(
    redis_server: Any, namespace: str, spawn: Any, tmp_path: Path
) -> None:
    total, lease, iterations = 3, 2.0, 40
    arguments = (total, lease, iterations, tmp_path)
    workers = [
        spawn("capacity", redis_server.url, namespace, api, *arguments) for api in APIS
    ]
    start_together(workers)
    random.seed(15)
    victims = random.sample(workers, 3)
    for victim in victims:
        time.sleep(random.uniform(0.1, 0.4))
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(10)
        # Its slot, if it held one, is free for the check; its token is not,
        # until its lease ends.
        for slot in tmp_path.iterdir():
            try:
                holder = os.readlink(slot)
            except FileNotFoundError:  # freed by its (live) holder meanwhile
                continue
            if holder == str(victim.pid):
                slot.unlink()
    killed = time.monotonic()
    for worker in workers:
        if worker not in victims:
            out = finish(worker)
            assert "OVER" not in out
    for victim in victims:
        out, _ = victim.communicate(timeout=10)
        assert victim.returncode == -signal.SIGKILL
        assert "OVER" not in out

    async def take_every_token() -> float:
        limiter = RedisCapacityLimiter(
            total, key="pool", url=redis_server.url, namespace=namespace
        )
        async with limiter.connect():
            with anyio.fail_after(30):  # a hang guard
                for index in range(total):
                    await limiter.acquire_on_behalf_of(index)
            back = time.monotonic() - killed
            stats = await limiter.statistics()
            assert stats.borrowed_tokens == total and stats.tasks_waiting == 0
            assert {h.pid for h in stats.holders} == {os.getpid()}
            for index in range(total):
                await limiter.release_and_wait(index)
            return back

    # Every token came back, the killed holders' ones within one lease of
    # the last kill (plus slack for a loaded machine).
    assert anyio.run(take_every_token) <= lease + 3.0


def test_a_server_restart_is_an_error_and_over_grants_nothing(
    own_redis_server: Any, namespace: str, spawn: Any, tmp_path: Path
) -> None:
    # Tokens held for 1.5 s: the holders at the restart still hold their
    # slots when the server comes back without any record of them.
    total, lease, seconds, hold = 2, 1.0, 4.0, 1.5
    arguments = (total, lease, seconds, tmp_path, hold)
    url = own_redis_server.url
    workers = [spawn("outage", url, namespace, api, *arguments) for api in APIS[:4]]
    start_together(workers)
    time.sleep(2.0)
    own_redis_server.stop()  # every key is gone with it
    time.sleep(0.1)
    own_redis_server.start()
    restarted = time.monotonic()
    outputs = [finish(worker) for worker in workers]
    # Never more than `total` holders (the slots), before, during and after.
    assert not any("OVER" in out for out in outputs)
    lines = [line for out in outputs for line in out.splitlines()]
    # The outage was told: acquisitions refused, or tokens reported lost.
    assert any(line in ("error", "lost") for line in lines)
    # And the pool served again after the restart.
    assert any(
        line.startswith("in ") and float(line.split()[1]) > restarted for line in lines
    )
