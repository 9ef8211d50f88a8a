"""Fixtures of the cc-redis tests: a real redis-server, and worker threads."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

JOIN_TIMEOUT = 10.0


class Worker:
    """A real thread that keeps its result or exception for the test."""

    def __init__(self, target: Callable[[], Any], name: str) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(target,), name=name)

    def _run(self, target: Callable[[], Any]) -> None:
        try:
            self.result = target()
        except BaseException as exc:  # handed to the test, never lost
            self.error = exc

    def start(self) -> Worker:
        self.thread.start()
        return self

    def join(self) -> Any:
        """Join within the timeout; re-raise the thread's exception."""
        self.thread.join(JOIN_TIMEOUT)
        assert not self.thread.is_alive(), f"{self.thread.name} did not finish"
        if self.error is not None:
            raise self.error
        return self.result


@pytest.fixture
def start_thread() -> Iterator[Callable[[Callable[[], Any], str], Worker]]:
    """Start worker threads; every one is joined (with a timeout) at teardown."""
    workers: list[Worker] = []

    def start(target: Callable[[], Any], name: str) -> Worker:
        worker = Worker(target, name).start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.thread.join(JOIN_TIMEOUT)
        assert not worker.thread.is_alive(), f"{worker.thread.name} still running"


def _redis_executable() -> str | None:
    return os.environ.get("CC_REDIS_SERVER") or shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A redis-server on 127.0.0.1 with its own port and directory, no persistence."""

    def __init__(self, executable: str, directory: Path) -> None:
        self.executable = executable
        self.directory = directory
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.executable,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.directory),
                "--save", "",
                "--appendonly", "no",
                "--loglevel", "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not self.ping():
            if self.process.poll() is not None:
                error = self.process.stderr.read() if self.process.stderr else b""
                raise RuntimeError(f"redis-server exited: {error.decode()}")
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.01)

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), 0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            process.terminate()
            process.wait(10)
            if process.stderr:
                process.stderr.close()

    def restart(self) -> None:
        """Stop and start again on the same port: every key is gone."""
        self.stop()
        self.start()


def _start_server(directory: Path) -> Iterator[RedisServer]:
    executable = _redis_executable()
    if executable is None:
        pytest.skip(
            "no redis-server: set CC_REDIS_SERVER or install Debian's "
            "redis-server package (the nox tests session does)"
        )
    server = RedisServer(executable, directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the whole session (tests use their own namespace)."""
    yield from _start_server(tmp_path_factory.mktemp("redis"))


@pytest.fixture
def own_redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of the test's own, for tests that stop or restart it."""
    yield from _start_server(tmp_path)


@pytest.fixture
def namespace() -> str:
    """A namespace no other test uses."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def run_script() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start ``python <script> <args...>`` processes (pipes for stdin, stdout
    and stderr); every one is gone (killed if need be) at teardown."""
    started: list[subprocess.Popen[str]] = []

    def start(script: Path, *args: object) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, str(script), *map(str, args)],
            stdin=subprocess.PIPE,
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
