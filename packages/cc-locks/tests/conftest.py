"""Fixtures shared by the cc-locks tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cc.locks import get_lock_manager

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


@pytest.fixture
def global_lock_manager() -> Iterator[None]:
    """Leave the process-wide LockManager empty after the test."""
    yield
    get_lock_manager().reset()


def _wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.001)


@pytest.fixture
def wait_until() -> Callable[..., None]:
    """Poll a predicate from a thread until it holds (fail after 5 s)."""
    return _wait_until
