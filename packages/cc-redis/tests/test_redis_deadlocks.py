"""Deadlock detection across OS processes sharing locks through a real redis-server.

Each process registers the locks it uses in an order of its own, so that
every process follows its own hierarchy and no check inside one process can
see the cycle: only the waits they publish in Redis can. The test starts
the waits one process at a time (each one's wait is seen in Redis before the
next asks), so the last one closes the cycle and is its youngest waiter.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis

from cc.locks import (
    AsyncLockManager,
    DeadlockError,
    LockBackendError,
    LockLostError,
    LockManager,
    LockTimeoutError,
)
from cc.locks.lowlevel import run
from cc.redis import RedisLockBackend

WORKER = Path(__file__).with_name("deadlock_worker.py")
HOST = socket.gethostname()
HANG_GUARD = 30.0  # seconds; only a test that is broken gets near it


class Process:
    """One worker process, driven line by line.

    Its output is read by threads of its own from the start: a line that
    arrives together with the one a test waits for (the result printed right
    after "asking") is kept, not left in a buffer that a later read misses.
    """

    def __init__(self, scenario: str, api: str, settings: dict[str, Any]) -> None:
        self.api = api
        self.popen = subprocess.Popen(
            [sys.executable, str(WORKER), scenario, api, json.dumps(settings)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        self._err: list[str] = []
        self._readers = [
            threading.Thread(target=self._read_out, daemon=True),
            threading.Thread(target=self._read_err, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_out(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self._lines.put(line.strip())
        self._lines.put("")  # end of output

    def _read_err(self) -> None:
        assert self.popen.stderr is not None
        self._err.extend(self.popen.stderr)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self) -> None:
        """Kill the process if it still runs; wait for it and its readers."""
        if self.popen.poll() is None:
            self.popen.kill()
        self._finish()

    def _finish(self) -> None:
        """Wait for the process to end and its output to be read; close pipes."""
        self.popen.wait(HANG_GUARD)
        for reader in self._readers:
            reader.join(HANG_GUARD)
        for pipe in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            if pipe is not None:
                # closing stdin of a process that is gone can raise
                with contextlib.suppress(BrokenPipeError):
                    pipe.close()

    def expect(self, line: str) -> None:
        try:
            got = self._lines.get(timeout=HANG_GUARD)
        except queue.Empty:
            got = "(nothing)"
        if got != line:
            self.stop()
            err = "".join(self._err)
            raise AssertionError(f"{self.api}: expected {line!r}, got {got!r}\n{err}")

    def go(self) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write("go\n")
        self.popen.stdin.flush()

    def result(self) -> dict[str, Any]:
        self._finish()
        err = "".join(self._err)
        assert self.popen.returncode == 0, err
        lines = []
        while not self._lines.empty():
            lines.append(self._lines.get_nowait())
        last = [line for line in lines if line]
        assert last, f"{self.api}: no result printed\n{err}"
        result: dict[str, Any] = json.loads(last[-1])
        return result


@pytest.fixture
def start() -> Iterator[Callable[..., Process]]:
    """Start worker processes; every one is gone (killed if need be) at teardown."""
    started: list[Process] = []

    def spawn(scenario: str, api: str, settings: dict[str, Any]) -> Process:
        process = Process(scenario, api, settings)
        started.append(process)
        return process

    yield spawn
    for process in started:
        process.stop()


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    """Wait for ``predicate`` (a hang guard only: it is bound by logic)."""
    deadline = time.monotonic() + HANG_GUARD
    while not predicate():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.01)


def where(pid: int) -> str:
    return f"(pid {pid} on {HOST})"


def start_cycle(
    start: Callable[..., Process], server: Any, namespace: str, apis: tuple[str, ...],
    policy: str, timeout: float,
) -> list[Process]:  # fmt: skip
    """Process i holds lock i, then asks for lock i + 1 (the last: lock 0).

    The first one asks within ``timeout``, the others within 20 s more (so
    that only the first can time out, setting the others free). Each asks
    once the previous one's wait is published (or, with the policy "off",
    which publishes nothing, right away); the last one closes the cycle.
    """
    locks = [f"lock-{i}" for i in range(len(apis))]
    processes = []
    for index, api in enumerate(apis):
        first, second = locks[index], locks[(index + 1) % len(locks)]
        settings = {
            "url": server.url, "namespace": namespace, "policy": policy,
            "hierarchy": {first: 1, second: 2}, "first": first, "second": second,
            "timeout": timeout if index == 0 else timeout + 20, "recheck": 0.2,
        }  # fmt: skip
        processes.append(start("cycle", api, settings))
    for process in processes:
        process.expect("holding")
    data = redis.Redis.from_url(server.url)
    try:
        for count, process in enumerate(processes, 1):
            process.go()
            process.expect("asking")
            # Seen in Redis before the next one asks (the last one's too,
            # unless it raised at once, as the victim of "raise").
            if policy == "warn" or (policy == "raise" and count < len(processes)):
                wait_until(
                    lambda n=count: data.hlen(f"{namespace}:waits") >= n,
                    f"{count} waits published",
                )
    finally:
        data.close()
    return processes


CYCLES = [
    pytest.param(("threads", "asyncio"), id="threads-asyncio"),
    pytest.param(("trio", "threads"), id="trio-threads"),
    pytest.param(("asyncio", "trio", "threads"), id="three-processes"),
]


@pytest.mark.parametrize("apis", CYCLES)
def test_raise_gives_exactly_one_deadlock_error_and_the_others_proceed(
    redis_server: Any, namespace: str, start: Any, apis: tuple[str, ...]
) -> None:
    processes = start_cycle(start, redis_server, namespace, apis, "raise", 20.0)
    results = [p.result() for p in processes]
    *others, victim = results  # the last to wait closed the cycle: the youngest
    assert [r["outcome"] for r in others] == ["acquired"] * len(others), others
    assert victim["outcome"] == "DeadlockError", victim
    message = victim["message"]
    assert message.startswith("deadlock across processes: ")
    for process in processes:  # every member, named with its pid and host
        assert where(process.pid) in message
    assert f"{where(victim['pid'])} asked at " in message
    assert "is the youngest waiter of the cycle" in message
    assert any("deadlock across processes averted" in r for r in victim["reports"])
    assert not any(r["warnings"] for r in results)
    data = redis.Redis.from_url(redis_server.url)
    assert not data.exists(f"{namespace}:waits")  # every wait was dropped
    data.close()


@pytest.mark.parametrize("apis", [CYCLES[0], CYCLES[2]])
def test_warn_logs_the_cycle_everywhere_until_the_timeout_set_ends_it(
    redis_server: Any, namespace: str, start: Any, apis: tuple[str, ...]
) -> None:
    timeout = 4.0
    processes = start_cycle(start, redis_server, namespace, apis, "warn", timeout)
    # A manager of this process sees the live cycle, naming every member.
    backend = RedisLockBackend(redis_server.url, namespace=namespace)
    with LockManager(backend=backend) as observer:
        observer.get_lock_status()  # connects
        live = [
            r
            for r in observer.detect_potential_deadlocks()
            if r.startswith("live deadlock across processes: ")
        ]
    assert len(live) == 1, live
    for process in processes:
        assert where(process.pid) in live[0]
    first, *others = [process.result() for process in processes]
    assert first["outcome"] == "LockTimeoutError", first  # the timeout set
    assert f"within {timeout} s" in first["message"]
    # ... which broke the cycle: the others got their locks.
    assert [r["outcome"] for r in others] == ["acquired"] * len(others), others
    for result in [first, *others]:
        warned = [w for w in result["warnings"] if "deadlock across processes" in w]
        assert len(warned) == 1, result["warnings"]  # once, not at every try
        for member in processes:
            assert where(member.pid) in warned[0]
        assert any("deadlock across processes: " in r for r in result["reports"])


def test_off_detects_nothing_and_publishes_nothing(
    redis_server: Any, namespace: str, start: Any
) -> None:
    processes = start_cycle(
        start, redis_server, namespace, ("asyncio", "trio"), "off", 1.0
    )
    first, second = [process.result() for process in processes]
    assert first["outcome"] == "LockTimeoutError", first  # only the timeout
    assert second["outcome"] == "acquired", second  # ended it
    for result in (first, second):
        assert result["warnings"] == []
        assert not any("deadlock" in r for r in result["reports"])
    data = redis.Redis.from_url(redis_server.url)
    assert data.keys(f"{namespace}:waits*") == []
    assert data.keys(f"{namespace}:order") == []
    data.close()


def order_settings(server: Any, namespace: str, policy: str, first: str,
                   second: str, **more: Any) -> dict[str, Any]:  # fmt: skip
    return {
        "url": server.url, "namespace": namespace, "policy": policy,
        "hierarchy": {"a": None, "b": None}, "first": first, "second": second,
        "timeout": 10.0, "recheck": 0.2, **more,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("earlier", "later"), [("threads", "trio"), ("trio", "asyncio")]
)
def test_an_inversion_is_refused_even_if_the_processes_never_overlapped(
    redis_server: Any, namespace: str, start: Any, earlier: str, later: str
) -> None:
    first = start("order", earlier, order_settings(
        redis_server, namespace, "raise", "a", "b"))  # fmt: skip
    done = first.result()
    assert done["outcome"] == "acquired", done
    second = start("order", later, order_settings(
        redis_server, namespace, "raise", "b", "a"))  # fmt: skip
    refused = second.result()
    assert refused["outcome"] == "LockOrderError", refused
    message = refused["message"]
    assert message.startswith("potential deadlock: ")
    assert f"{where(second.pid)} takes 'a'" in message
    assert f"{where(first.pid)} took 'b'" in message
    assert "deadlock_worker.py" in message  # where the first process took them


def test_warn_reports_an_inversion_in_both_processes(
    redis_server: Any, namespace: str, start: Any
) -> None:
    data = redis.Redis.from_url(redis_server.url)
    first = start("order", "asyncio", order_settings(
        redis_server, namespace, "warn", "a", "b", linger=True))  # fmt: skip
    first.expect("taken")
    wait_until(lambda: data.xlen(f"{namespace}:order") >= 1, "the order shared")
    data.close()
    second = start("order", "threads", order_settings(
        redis_server, namespace, "warn", "b", "a"))  # fmt: skip
    later = second.result()
    assert later["outcome"] == "acquired", later  # "warn" lets it pass
    [warning] = [w for w in later["warnings"] if "potential deadlock" in w]
    assert f"{where(second.pid)} takes 'a'" in warning
    assert f"{where(first.pid)} took 'b'" in warning
    # The first process hears of the second's order and reports it too.
    first.go()
    earlier = first.result()
    reported = [r for r in earlier["reports"] if r.startswith("potential deadlock")]
    assert len(reported) == 1, earlier["reports"]
    assert f"{where(second.pid)} took 'a'" in reported[0]
    assert f"{where(first.pid)} took 'b'" in reported[0]
    assert earlier["warnings"] == reported  # logged once, as reported


def test_the_wait_of_a_killed_process_vanishes_with_its_lease(
    redis_server: Any, namespace: str, start: Any
) -> None:
    backend = RedisLockBackend(redis_server.url, namespace=namespace, lease=2.0)
    with LockManager({"held": 1}, backend=backend) as manager:
        with manager.acquire("held"):
            waiter = start("cycle", "threads", {
                "url": redis_server.url, "namespace": namespace, "policy": "raise",
                "hierarchy": {"mine": 1, "held": 2}, "first": "mine",
                "second": "held", "timeout": 20.0, "recheck": 0.2, "lease": 2.0,
            })  # fmt: skip
            waiter.expect("holding")
            waiter.go()
            waiter.expect("asking")
            data = redis.Redis.from_url(redis_server.url)
            waits = f"{namespace}:waits"
            wait_until(lambda: data.hlen(waits) == 1, "the wait published")
            [(wait, holder)] = run(manager._engine.sharing.wait_graph())
            assert wait.lock == "held" and wait.waiter.pid == waiter.pid
            assert holder is not None  # this manager's thread holds "held"
            waiter.popen.kill()
            waiter.popen.wait(HANG_GUARD)
            # Nobody drops it: it lapses with the lease (2 s), as its locks do.
            assert data.pttl(waits) <= 2000
            wait_until(lambda: not data.exists(waits), "the wait gone")
            assert manager.detect_potential_deadlocks() == []
            data.close()


# -- managers of one process, each with its own session (as two processes) ------


def test_thread_managers_of_one_process_find_the_cycle_through_redis(
    redis_server: Any, namespace: str, start_thread: Any
) -> None:
    def manager(hierarchy: dict[str, int]) -> LockManager:
        backend = RedisLockBackend(
            redis_server.url, namespace=namespace, recheck_interval=0.2
        )
        return LockManager(hierarchy, backend=backend)

    data = redis.Redis.from_url(redis_server.url)
    with manager({"x": 1, "y": 2}) as first, manager({"y": 1, "x": 2}) as second:
        holding, asking = threading.Event(), threading.Event()

        def older() -> str:
            with first.acquire("x"):
                holding.set()
                asking.wait(HANG_GUARD)
                with first.acquire("y", timeout=HANG_GUARD):
                    return "acquired"

        worker = start_thread(older, "older")
        holding.wait(HANG_GUARD)
        with second.acquire("y"):
            asking.set()
            wait_until(lambda: data.hlen(f"{namespace}:waits") == 1, "a wait")
            with pytest.raises(DeadlockError) as caught:  # this thread closes it
                with second.acquire("x", timeout=HANG_GUARD):
                    pass  # pragma: no cover
            assert caught.value.cycle == ("x", "y", "x")
            assert caught.value.holders == (
                f"thread 'older' {where(os.getpid())}",
                f"thread 'MainThread' {where(os.getpid())}",
            )
        assert worker.join() == "acquired"
        assert data.hlen(f"{namespace}:waits") == 0
    data.close()


@pytest.mark.anyio
async def test_task_managers_of_one_process_find_the_cycle_through_redis(
    redis_server: Any, namespace: str
) -> None:
    def manager(hierarchy: dict[str, int], policy: str) -> AsyncLockManager:
        backend = RedisLockBackend(
            redis_server.url, namespace=namespace, recheck_interval=0.2
        )
        return AsyncLockManager(hierarchy, backend=backend, policy=policy)  # type: ignore[arg-type]

    data = redis.Redis.from_url(redis_server.url)
    first, second = (
        manager({"x": 1, "y": 2}, "raise"),
        manager({"y": 1, "x": 2}, "warn"),
    )
    outcome: list[Any] = []
    holding, asking = anyio.Event(), anyio.Event()

    async def older() -> None:
        async with first.acquire("x"):
            holding.set()
            await asking.wait()
            async with first.acquire("y", timeout=HANG_GUARD):
                outcome.append("acquired")

    async with first, second, anyio.create_task_group() as group:
        group.start_soon(older, name="older")
        await holding.wait()
        async with second.acquire("y"):
            asking.set()
            while data.hlen(f"{namespace}:waits") != 1:  # noqa: ASYNC110
                await anyio.sleep(0.01)
            # "warn" in this manager: it waits, and times out.
            with pytest.raises(LockTimeoutError) as caught:
                async with second.acquire("x", timeout=0.5):
                    pass  # pragma: no cover
            assert not isinstance(caught.value, DeadlockError)
            # The older member is told too, at its next try, but with "raise"
            # it raises only if it is the victim: it is not.
            live = await first.detect_potential_deadlocks()
            reports = await second.detect_potential_deadlocks()
    assert outcome == ["acquired"]
    assert any(r.startswith("deadlock across processes: ") for r in reports)
    assert not any("live deadlock" in r for r in live)  # the cycle had ended
    data.close()


def test_an_order_learned_while_redis_is_down_is_shared_once_it_is_back(
    own_redis_server: Any, namespace: str
) -> None:
    server = own_redis_server
    backend = RedisLockBackend(server.url, namespace=namespace, recheck_interval=0.1)
    with LockManager({"a": None, "b": None}, backend=backend) as manager:  # type: ignore[arg-type]
        with pytest.raises(LockLostError), manager.acquire("a"):  # restarted: lost
            server.stop()
            with pytest.raises(LockBackendError):  # learned "a" -> "b", then failed
                with manager.acquire("b"):
                    pass  # pragma: no cover
            server.start()
        data = redis.Redis.from_url(server.url)
        wait_until(lambda: data.xlen(f"{namespace}:order") == 1, "the order shared")
        [(_, fields)] = data.xrange(f"{namespace}:order")
        assert fields[b"before"] == b"a" and fields[b"after"] == b"b"
        assert where(os.getpid()).encode() in fields[b"holder"]
        data.close()


def test_a_cycle_through_a_wait_inside_one_process_is_found_there(
    redis_server: Any, namespace: str, start_thread: Any
) -> None:
    # Process A: thread "t1" holds x and waits for y, held by its thread "t2"
    # (a wait inside A, which Redis does not see); "t2" waits for z, held by
    # process B's "tb", which waits for x. Only A can see the whole cycle:
    # "t2", its member that waits through Redis, is the victim.
    def manager(hierarchy: dict[str, int]) -> LockManager:
        backend = RedisLockBackend(
            redis_server.url, namespace=namespace, recheck_interval=0.1
        )
        return LockManager(hierarchy, backend=backend)

    data = redis.Redis.from_url(redis_server.url)
    waits = f"{namespace}:waits"
    with manager({"x": 1, "y": 2, "z": 3}) as a, manager({"z": 1, "x": 2}) as b:
        held = {name: threading.Event() for name in ("x", "y", "z")}
        go = {name: threading.Event() for name in ("t1", "t2", "tb")}

        def member(mine: LockManager, first: str, second: str, name: str) -> str:
            with mine.acquire(first):
                held[first].set()
                go[name].wait(HANG_GUARD)
                try:
                    with mine.acquire(second, timeout=HANG_GUARD):
                        return "acquired"
                except DeadlockError as exc:
                    return str(exc)

        t1 = start_thread(lambda: member(a, "x", "y", "t1"), "t1")
        t2 = start_thread(lambda: member(a, "y", "z", "t2"), "t2")
        tb = start_thread(lambda: member(b, "z", "x", "tb"), "tb")
        for event in held.values():
            event.wait(HANG_GUARD)
        go["t2"].set()  # t2 waits for z, through Redis
        wait_until(lambda: data.hlen(waits) == 1, "t2 waits")
        go["tb"].set()  # tb waits for x, through Redis
        wait_until(lambda: data.hlen(waits) == 2, "tb waits")
        go["t1"].set()  # t1 waits for y, held in its own process: closes it
        me = where(os.getpid())
        assert t2.join() == (
            f"deadlock across processes: thread 't2' {me} waits for 'z', held by "
            f"thread 'tb' {me}, which waits for 'x', held by thread 't1' {me}, "
            f"which waits for 'y', held by thread 't2' {me}. thread 't2' {me} "
            "asked at " + t2.result.split(" asked at ")[1]
        )
        assert t1.join() == "acquired"
        assert tb.join() == "acquired"
    data.close()


@pytest.mark.parametrize("policy", ["raise", "off"])
def test_detection_adds_no_round_trip_to_a_free_lock(
    own_redis_server: Any, namespace: str, policy: str
) -> None:
    # Two scripts per acquisition (take, release), detection on or off; the
    # background work (renewal, order sharing) sends nothing meanwhile, even
    # when its thread is woken.
    backend = RedisLockBackend(
        own_redis_server.url, namespace=namespace, recheck_interval=60.0
    )
    data = redis.Redis.from_url(own_redis_server.url)
    with LockManager({"a": None, "b": None}, policy=policy, backend=backend) as m:  # type: ignore[arg-type]
        with m.acquire("a"), m.acquire("b"):  # learned, and shared (or not)
            pass
        if policy != "off":
            wait_until(lambda: data.xlen(f"{namespace}:order") == 1, "shared")
        data.config_resetstat()
        for _ in range(50):
            with m.acquire("a"), m.acquire("b"):
                pass
        board = m._engine.session._board  # type: ignore[union-attr]
        for _ in range(50):  # a thread board wakes every sleeper, for any key
            board.wake("a")
            time.sleep(0.002)
        stats = data.info("commandstats")
    calls = sum(
        stats.get(f"cmdstat_{command}", {}).get("calls", 0)
        for command in ("evalsha", "eval", "publish", "xadd", "xrange")
    )
    assert calls == 50 * 4
    data.close()
