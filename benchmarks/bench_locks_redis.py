"""cc-locks with cc-redis's RedisLockBackend against redis-py's own Lock.

Each figure is microseconds per acquisition of one lock (take, then let go):

* uncontended, one task (asyncio and uvloop: ``AsyncLockManager`` against
  ``redis.asyncio.lock.Lock``) or one thread (``LockManager`` against
  ``redis.lock.Lock``): two round trips each, so the figures are mostly the
  server round trip and the client library;
* throughput with 8 processes contending for the same lock: wall time over
  all acquisitions of all processes, the best of three runs each, taken in
  turns. redis-py's Lock polls while it waits
  (every ``sleep`` seconds, 0.1 s by default; 1 ms here, which favours it)
  and lets the holder take the lock back at once; cc-locks queues the
  waiters in Redis, first come first served, and a release wakes only the
  next one; each waiter's try also publishes its wait and looks for a
  deadlock across processes (in the same script).

The module starts its own redis-server (``CC_REDIS_SERVER`` or the one on
PATH) on a free port with a temporary directory, and stops it at the end;
without redis-server or redis-py it prints a note and adds nothing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

import anyio

from harness import BACKENDS, Suite

GROUP = "locks on redis"
UNCONTENDED_OPS = 2_000
WARM_UP = 100  # acquisitions before the clock starts (connected, scripts loaded)
CONTENDING_PROCESSES = 8
CONTENDED_OPS_PER_PROCESS = 150
CONTENDED_ROUNDS = 3
REDIS_PY_SLEEP = 0.001

CC_ASYNC = "cc AsyncLockManager + RedisLockBackend"
CC_THREADS = "cc LockManager + RedisLockBackend"
RP_ASYNC = "redis-py redis.asyncio.lock.Lock"
RP_THREADS = "redis-py redis.lock.Lock"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server(directory: str) -> tuple[subprocess.Popen[bytes], str] | None:
    executable = os.environ.get("CC_REDIS_SERVER") or shutil.which("redis-server")
    if executable is None:
        return None
    port = _free_port()
    process = subprocess.Popen(
        [
            executable, "--port", str(port), "--bind", "127.0.0.1",
            "--dir", directory, "--save", "", "--appendonly", "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return process, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.02)
    process.kill()
    process.wait()
    return None


# -- one task or thread, uncontended --------------------------------------------


def _backend_type() -> Any:
    """Return RedisLockBackend (from cc.locks in the trees before cc-redis)."""
    try:
        from cc.redis import RedisLockBackend
    except ImportError:  # `nox -s instructions -- --rev` of an older commit
        from cc.locks import RedisLockBackend  # type: ignore[attr-defined]
    return RedisLockBackend


async def _cc_async(url: str, ops: int) -> float:
    from cc.locks import AsyncLockManager

    backend = _backend_type()(url, namespace=f"bench-{uuid.uuid4().hex}")
    async with AsyncLockManager({"job": 1}, backend=backend) as manager:
        acquire = manager.acquire
        for _ in range(WARM_UP):
            async with acquire("job"):
                pass
        start = time.perf_counter()
        for _ in range(ops):
            async with acquire("job"):
                pass
        return time.perf_counter() - start


async def _redis_py_async(url: str, ops: int) -> float:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(url)
    name = f"bench-{uuid.uuid4().hex}"
    try:
        for _ in range(WARM_UP):
            async with client.lock(name, timeout=10):
                pass
        start = time.perf_counter()
        for _ in range(ops):
            async with client.lock(name, timeout=10):
                pass
        return time.perf_counter() - start
    finally:
        await client.aclose()


def _cc_threads(url: str, ops: int) -> float:
    from cc.locks import LockManager

    backend = _backend_type()(url, namespace=f"bench-{uuid.uuid4().hex}")
    with LockManager({"job": 1}, backend=backend) as manager:
        acquire = manager.acquire
        for _ in range(WARM_UP):
            with acquire("job"):
                pass
        start = time.perf_counter()
        for _ in range(ops):
            with acquire("job"):
                pass
        return time.perf_counter() - start


def _redis_py_threads(url: str, ops: int) -> float:
    import redis

    client = redis.Redis.from_url(url)
    name = f"bench-{uuid.uuid4().hex}"
    try:
        for _ in range(WARM_UP):
            with client.lock(name, timeout=10):
                pass
        start = time.perf_counter()
        for _ in range(ops):
            with client.lock(name, timeout=10):
                pass
        return time.perf_counter() - start
    finally:
        client.close()


def _best_async(suite: Suite, backend: str, func: Any, url: str, ops: int) -> float:
    name, options = BACKENDS[backend]
    samples = [
        anyio.run(func, url, ops, backend=name, backend_options=options)
        for _ in range(suite.repeat)
    ]
    return min(samples) / ops * 1e6


def _best_sync(suite: Suite, func: Any, url: str, ops: int) -> float:
    return min(func(url, ops) for _ in range(suite.repeat)) / ops * 1e6


# -- 8 processes contending --------------------------------------------------------


def _wait_for_go() -> None:
    """Say this process is ready, then block until the parent says go."""
    print("ready", flush=True)
    sys.stdin.readline()


async def _contend_cc(url: str, namespace: str, ops: int) -> None:
    from cc.locks import AsyncLockManager
    from cc.redis import RedisLockBackend

    backend = RedisLockBackend(url, namespace=namespace)
    async with AsyncLockManager({"job": 1}, backend=backend) as manager:
        async with manager.acquire("job"):  # connected and warm
            pass
        _wait_for_go()
        for _ in range(ops):
            async with manager.acquire("job", timeout=60):
                pass
        print(time.time(), flush=True)


async def _contend_redis_py(url: str, namespace: str, ops: int) -> None:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(url)
    name = f"{namespace}:job"
    try:
        async with client.lock(name, timeout=10):
            pass
        _wait_for_go()
        for _ in range(ops):
            lock = client.lock(
                name, timeout=10, sleep=REDIS_PY_SLEEP, blocking_timeout=60
            )
            async with lock:
                pass
        print(time.time(), flush=True)
    finally:
        await client.aclose()


def _worker(impl: str, url: str, namespace: str, ops: str) -> None:
    """Entry point of one contending process."""
    func = _contend_cc if impl == "cc" else _contend_redis_py
    anyio.run(func, url, namespace, int(ops))


def _contended(url: str, impl: str, ops: int) -> float:
    """Return microseconds per acquisition over all contending processes."""
    namespace = f"bench-{uuid.uuid4().hex}"
    command = [sys.executable, __file__, "worker", impl, url, namespace, str(ops)]
    processes = [
        subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for _ in range(CONTENDING_PROCESSES)
    ]
    for process in processes:
        assert process.stdout is not None
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"a contending {impl} process failed to start")
    started = time.time()
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.close()
    finished = []
    for process in processes:
        assert process.stdout is not None
        out = process.stdout.read()
        if process.wait(300) != 0:
            raise RuntimeError(f"a contending {impl} process failed")
        finished.append(float(out.split()[-1]))
    return (max(finished) - started) / (ops * CONTENDING_PROCESSES) * 1e6


def collect(suite: Suite) -> None:
    """Uncontended round trips next to redis-py's Lock; 8 contending processes."""
    try:
        import cc.redis  # noqa: F401
    except ImportError:
        print("  (skipped: cc-redis is not installed: pip install cc-redis)")
        return
    with_server(suite, _collect)


def with_server(suite: Suite, collect: Any) -> None:
    """Run ``collect(suite, url)`` against a redis-server of its own, then stop it."""
    with tempfile.TemporaryDirectory(prefix="cc-bench-redis-") as directory:
        started = _start_server(directory)
        if started is None:
            print("  (skipped: no redis-server; set CC_REDIS_SERVER or install it)")
            return
        process, url = started
        try:
            collect(suite, url)
        finally:
            process.terminate()
            process.wait(10)


def _collect(suite: Suite, url: str) -> None:
    ops = suite.ops(UNCONTENDED_OPS)
    case = "one lock, uncontended, local server"
    for backend in ("asyncio", "uvloop"):
        baseline = _best_async(suite, backend, _redis_py_async, url, ops)
        suite.record(GROUP, case, RP_ASYNC, baseline, "us/op", backend=backend,
                     baseline=True)  # fmt: skip
        mine = _best_async(suite, backend, _cc_async, url, ops)
        suite.record(GROUP, case, CC_ASYNC, mine, "us/op", backend=backend)
        suite.goal(GROUP, case, CC_ASYNC, RP_ASYNC, 1.5, backend=backend)
    baseline = _best_sync(suite, _redis_py_threads, url, ops)
    suite.record(GROUP, case, RP_THREADS, baseline, "us/op", backend="threads",
                 baseline=True)  # fmt: skip
    mine = _best_sync(suite, _cc_threads, url, ops)
    suite.record(GROUP, case, CC_THREADS, mine, "us/op", backend="threads")
    suite.goal(GROUP, case, CC_THREADS, RP_THREADS, 1.5, backend="threads")

    contended = f"one lock, {CONTENDING_PROCESSES} processes contending"
    per_process = max(10, suite.ops(CONTENDED_OPS_PER_PROCESS))
    # Eight processes on two cores swing from run to run: the two sides take
    # turns, CONTENDED_ROUNDS runs each, and the best of each is kept.
    runs: dict[str, list[float]] = {"redis-py": [], "cc": []}
    for _ in range(CONTENDED_ROUNDS):
        for impl, samples in runs.items():
            samples.append(_contended(url, impl, per_process))
    suite.record(
        GROUP, contended, RP_ASYNC, min(runs["redis-py"]),
        "us/op", backend="asyncio", baseline=True,
        note=f"polls every {REDIS_PY_SLEEP * 1000:g} ms while waiting",
    )  # fmt: skip
    suite.record(
        GROUP, contended, CC_ASYNC, min(runs["cc"]),
        "us/op", backend="asyncio", note="FIFO: a release wakes the next waiter",
    )  # fmt: skip
    # Issue #15: as fast as redis-py's polling Lock, FIFO and detection included.
    suite.goal(GROUP, contended, CC_ASYNC, RP_ASYNC, 1.0, backend="asyncio")


if __name__ == "__main__" and sys.argv[1:2] == ["worker"]:
    _worker(*sys.argv[2:])
