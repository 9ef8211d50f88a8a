"""Credentials in a Redis URL never show: not in reprs, errors or log lines."""

from __future__ import annotations

import logging
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from cc.locks import (
    AsyncLockManager,
    LockBackendError,
    LockManager,
)
from cc.redis import RedisLockBackend

from .conftest import RedisServer, _redis_executable

SECRET = "s3cr%3At-pw"  # percent-encoded in the URL: "s3cr:t-pw" once decoded
DECODED = "s3cr:t-pw"
HUGE = 10**400


def _texts(*things: Any) -> str:
    return "\n".join(str(thing) for thing in things)


def assert_no_secret(text: str) -> None:
    assert SECRET not in text and DECODED not in text, text
    assert "s3cr" not in text, text


@pytest.mark.parametrize(
    "url",
    [
        f"redis://:{SECRET}@127.0.0.1:1/0",
        f"redis://admin:{SECRET}@127.0.0.1:1/0",
        f"rediss://admin:{SECRET}@127.0.0.1:1/0",
        f"unix:///tmp/none.sock?db=0&password={SECRET}",
    ],
)
def test_reprs_and_errors_hide_the_password(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    backend = RedisLockBackend(url, lease=1.0)
    manager = LockManager({"a": 1}, backend=backend)
    with pytest.raises(LockBackendError) as caught:
        with manager.acquire("a"):
            pass  # pragma: no cover
    text = _texts(repr(backend), repr(manager), caught.value, caught.value.__cause__)
    assert "***" in repr(backend)
    assert_no_secret(_texts(text, caplog.text))


@pytest.mark.anyio
async def test_async_errors_and_logs_hide_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    backend = RedisLockBackend(f"redis://user:{SECRET}@127.0.0.1:1/0", lease=1.0)
    manager = AsyncLockManager({"a": 1}, backend=backend)
    with pytest.raises(LockBackendError) as caught:
        async with manager:
            pass  # pragma: no cover
    assert_no_secret(_texts(repr(manager), caught.value, caplog.text))


class PasswordRedisServer(RedisServer):
    """A redis-server that asks every client for a password."""

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.executable, "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.directory), "--save", "", "--appendonly", "no",
             "--requirepass", DECODED],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not self.ping():
            assert self.process.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.01)

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), 0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"-NOAUTH")
        except OSError:
            return False


@pytest.fixture
def password_server(tmp_path: Path) -> Any:
    executable = _redis_executable()
    if executable is None:
        pytest.skip("no redis-server: set CC_REDIS_SERVER")
    server = PasswordRedisServer(executable, tmp_path)
    server.start()
    yield server
    server.stop()


def test_a_wrong_password_and_a_lost_server_do_not_show_it(
    password_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    port = password_server.port
    wrong = RedisLockBackend(f"redis://:{SECRET}x@127.0.0.1:{port}/0", lease=1.0)
    with pytest.raises(LockBackendError, match=r"WRONGPASS|invalid") as caught:
        with LockManager({"a": 1}, backend=wrong):
            pass  # pragma: no cover
    texts = [repr(wrong), str(caught.value), str(caught.value.__cause__)]
    right = RedisLockBackend(f"redis://:{SECRET}@127.0.0.1:{port}/0", lease=0.5)
    with LockManager({"a": 1}, backend=right) as manager:
        with manager.acquire("a"):
            assert manager.get_lock_status()["a"]["held_here"]
        texts.append(repr(manager))
        password_server.stop()
        time.sleep(0.2)  # the listener notices and logs
        with pytest.raises(LockBackendError) as lost:
            with manager.acquire("a"):
                pass  # pragma: no cover
        texts.append(str(lost.value))
    assert_no_secret(_texts(*texts, caplog.text))


@pytest.mark.parametrize("option", ["lease", "renew_interval", "recheck_interval"])
def test_a_huge_interval_is_a_value_error_naming_it(option: str) -> None:
    with pytest.raises(ValueError, match=option):
        RedisLockBackend("redis://localhost", **{option: HUGE})


def test_backend_errors_hide_the_password_in_a_trio_link() -> None:
    async def main() -> str:
        manager = AsyncLockManager(
            {"a": 1},
            backend=RedisLockBackend(f"redis://:{SECRET}@127.0.0.1:1/0", lease=1.0),
        )
        try:
            async with manager:
                pass  # pragma: no cover
        except LockBackendError as exc:
            return str(exc)
        return ""  # pragma: no cover

    assert_no_secret(anyio.run(main, backend="trio"))
