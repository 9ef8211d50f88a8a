"""A hypothesis state machine that checks BoundedQueue against a simple model.

Rules put and get items (at once, with a timeout, or blocking in a task of
their own), cancel blocked producers and consumers, mark items done, and
start and stop the queue; after every step the queue's size, flags, status
and metrics must match the model, and the nothing-lost equation must hold:
``enqueued == size + taken by get() + handed back``.

Hypothesis rules are synchronous, so the queue lives in an event loop run by
an anyio blocking portal in another thread. ``start()`` and ``stop()`` must
run in one task; they are relayed to a long-lived host task in that loop.
The test runs on every backend of the shared ``anyio_backend`` fixture.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from contextlib import ExitStack
from typing import Any

import anyio
import pytest
from anyio.abc import ObjectReceiveStream
from anyio.from_thread import start_blocking_portal
from anyio.lowlevel import checkpoint
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from cc.queues import BoundedQueue, QueueStateError, QueueStatus

HostCall = tuple[Callable[[], Awaitable[Any]], "Future[Any]"]


async def _host(receive: ObjectReceiveStream[HostCall]) -> None:
    async with receive:
        async for func, future in receive:
            try:
                future.set_result(await func())
            except Exception as exc:
                future.set_exception(exc)


async def _settle() -> None:
    for _ in range(20):
        await checkpoint()


def _running(machine: QueueMachine) -> bool:
    return machine.status is QueueStatus.PROCESSING


def _full(machine: QueueMachine) -> bool:
    return _running(machine) and len(machine.items) == machine.maxsize


class QueueMachine(RuleBasedStateMachine):
    backend = "asyncio"
    backend_options: dict[str, Any] = {}  # noqa: RUF012 - set per backend

    def __init__(self) -> None:
        super().__init__()
        self.stack = ExitStack()
        self.portal = self.stack.enter_context(
            start_blocking_portal(self.backend, self.backend_options)
        )
        self.send, receive = anyio.create_memory_object_stream[HostCall](math.inf)
        self.portal.start_task_soon(_host, receive)
        self.queue = BoundedQueue[int]()
        self.maxsize = self.queue.maxsize
        self.status = QueueStatus.IDLE
        self.items: deque[int] = deque()
        self.putters: deque[tuple[int, Future[bool]]] = deque()
        self.getters: deque[Future[int]] = deque()
        self.enqueued = 0
        self.processed = 0
        self.backpressure = 0
        self.refused = 0
        self.handed_back = 0
        self.outstanding = 0  # returned by get(), not yet marked done
        self.last_value = 0

    # -- helpers -------------------------------------------------------------

    def new_value(self) -> int:
        self.last_value += 1
        return self.last_value

    def in_host(self, func: Callable[[], Awaitable[Any]]) -> Any:
        future: Future[Any] = Future()
        self.portal.call(self.send.send, (func, future))
        return future.result(timeout=30)

    def settle(self) -> None:
        self.portal.call(_settle)

    def serve_getters(self) -> None:
        while self.getters and self.items:
            assert self.getters.popleft().result(timeout=1) == self.items.popleft()
            self.outstanding += 1

    def admit_putters(self) -> None:
        while self.putters and len(self.items) < self.maxsize:
            value, future = self.putters.popleft()
            assert future.result(timeout=1) is True
            self.items.append(value)
            self.enqueued += 1

    # -- rules ---------------------------------------------------------------

    @initialize(maxsize=st.integers(1, 4), start=st.booleans())
    def create(self, maxsize: int, start: bool) -> None:
        self.queue = BoundedQueue[int](maxsize=maxsize, timeout=0)
        self.maxsize = maxsize
        if start:
            self.start()

    @precondition(lambda self: not _running(self))
    @rule()
    def start(self) -> None:
        self.in_host(self.queue.start)
        self.status = QueueStatus.PROCESSING

    @precondition(_running)
    @rule(timeout=st.sampled_from([None, 0, 1.0]))
    def stop(self, timeout: float | None) -> None:
        leftovers = self.in_host(lambda: self.queue.stop(timeout))
        assert leftovers == list(self.items)
        self.settle()
        waiting: list[Future[Any]] = [f for _, f in self.putters] + list(self.getters)
        for future in waiting:
            assert isinstance(future.exception(timeout=1), QueueStateError)
        self.handed_back += len(self.items)
        self.items.clear()
        self.putters.clear()
        self.getters.clear()
        self.status = QueueStatus.STOPPED

    @precondition(_running)
    @rule()
    def stop_from_another_task_is_refused(self) -> None:
        with pytest.raises(QueueStateError, match="task that started"):
            self.portal.call(self.queue.stop)

    @precondition(lambda self: not _running(self))
    @rule(operation=st.sampled_from(["put", "get"]))
    def refused_unless_running(self, operation: str) -> None:
        func: Callable[[], Awaitable[Any]] = (
            (lambda: self.queue.put(self.new_value()))
            if operation == "put"
            else self.queue.get
        )
        with pytest.raises(QueueStateError) as info:
            self.portal.call(func)
        assert info.value.current_state is self.status

    @precondition(_running)
    @rule()
    def put_at_once(self) -> None:
        value = self.new_value()
        accepted = self.portal.call(self.queue.put, value, 0)
        assert accepted is (len(self.items) < self.maxsize)
        if accepted:
            self.items.append(value)
            self.enqueued += 1
            self.settle()
            self.serve_getters()
        else:
            self.backpressure += 1
            self.refused += 1

    @precondition(lambda self: _running(self) and not self.getters)
    @rule()
    def fill_up(self) -> None:
        while len(self.items) < self.maxsize:
            value = self.new_value()
            assert self.portal.call(self.queue.put, value, 0) is True
            self.items.append(value)
            self.enqueued += 1

    @precondition(_full)
    @rule(timeout=st.sampled_from([None, 0.001]))
    def put_times_out(self, timeout: float | None) -> None:
        assert self.portal.call(self.queue.put, self.new_value(), timeout) is False
        self.backpressure += 1
        self.refused += 1

    @precondition(_full)
    @rule()
    def put_blocks(self) -> None:
        value = self.new_value()
        future = self.portal.start_task_soon(self.queue.put, value, math.inf)
        self.settle()
        assert not future.done()
        self.backpressure += 1  # it waits for room: backpressure applies
        self.putters.append((value, future))

    @precondition(lambda self: _running(self) and self.items)
    @rule()
    def get_at_once(self) -> None:
        assert self.portal.call(self.queue.get) == self.items.popleft()
        self.outstanding += 1
        self.settle()
        self.admit_putters()

    @precondition(lambda self: _running(self) and not self.items)
    @rule()
    def get_blocks(self) -> None:
        future = self.portal.start_task_soon(self.queue.get)
        self.settle()
        assert not future.done()
        self.getters.append(future)

    @precondition(lambda self: self.putters)
    @rule(data=st.data())
    def cancel_a_blocked_putter(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(0, len(self.putters) - 1), label="putter")
        _, future = self.putters[index]
        del self.putters[index]
        future.cancel()
        self.settle()  # its item must not appear: the invariants check it

    @precondition(lambda self: self.getters)
    @rule(data=st.data())
    def cancel_a_blocked_getter(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(0, len(self.getters) - 1), label="getter")
        future = self.getters[index]
        del self.getters[index]
        future.cancel()
        self.settle()

    @precondition(lambda self: self.outstanding > 0)
    @rule()
    def task_done(self) -> None:
        self.portal.call(self.queue.task_done)
        self.outstanding -= 1
        self.processed += 1

    @precondition(lambda self: self.outstanding == 0)
    @rule()
    def task_done_too_often(self) -> None:
        with pytest.raises(ValueError, match="more times than get"):
            self.portal.call(self.queue.task_done)

    # -- invariants ----------------------------------------------------------

    @invariant()
    def matches_the_model(self) -> None:
        queue = self.queue

        def snapshot() -> tuple[Any, ...]:
            return (
                queue.status,
                queue.size,
                queue.is_full,
                queue.is_empty,
                queue.metrics,
                queue.worker_count,
            )

        status, size, is_full, is_empty, metrics, workers = self.portal.call(snapshot)
        assert status is self.status
        assert size == len(self.items) <= self.maxsize
        assert is_full is (size == self.maxsize)
        assert is_empty is (size == 0)
        assert workers == 0
        assert metrics == {
            "enqueued": self.enqueued,
            "processed": self.processed,
            "errors": 0,
            "backpressure_events": self.backpressure,
            "refused_puts": self.refused,
            "handed_back": self.handed_back,
        }
        taken = self.outstanding + self.processed
        assert metrics["enqueued"] == size + taken + metrics["handed_back"]

    def teardown(self) -> None:
        try:
            if _running(self):
                self.stop(None)
            self.portal.call(self.send.aclose)
        finally:
            self.stack.close()


def test_bounded_queue_matches_its_model(
    anyio_backend: tuple[str, dict[str, Any]],
) -> None:
    name, options = anyio_backend
    machine = type(
        "QueueMachine", (QueueMachine,), {"backend": name, "backend_options": options}
    )
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=40,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
