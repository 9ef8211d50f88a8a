"""Steps, and the two ways to wait for them: a thread blocks, a task awaits.

Whatever may wait is written once as a generator of steps; each step knows
how to :meth:`block` (a thread) and to :meth:`wait` (a task) for what it
stands for. :func:`run` and :func:`arun` drive such a generator.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Generator
from time import monotonic
from typing import Any, TypeVar

import anyio
import anyio.to_thread

__all__ = [
    "AWAIT", "DIRECT", "IN_THREAD", "Call", "Pause", "Shielded", "Steps",
    "TaskBoard", "ThreadBoard", "WaitLocal", "arun", "run",
]  # fmt: skip

T = TypeVar("T")
#: An operation made of steps, returning ``T``.
Steps = Generator[Any, Any, T]
# How a Call runs for tasks (threads always call directly).
DIRECT, AWAIT, IN_THREAD = 0, 1, 2


_DONE: Any = object()  # advance(): the steps ended (a loop ends without raising)


class _Driving:
    """Where a driver is in its steps: what to send or throw in next."""

    __slots__ = ("error", "result", "steps", "value")

    def __init__(self, steps: Steps[Any]) -> None:
        self.steps = steps
        self.value: Any = None
        self.error: BaseException | None = None
        self.result: Any = None

    def advance(self) -> Any:  # the next step, or _DONE (then see result)
        value, error, self.value, self.error = self.value, self.error, None, None
        try:
            return self.steps.send(value) if error is None else self.steps.throw(error)
        except StopIteration as stop:
            self.result = stop.value
            return _DONE


def run(steps: Steps[T]) -> T:
    """Perform ``steps`` in the calling thread, blocking where they wait."""
    driving = _Driving(steps)
    while (step := driving.advance()) is not _DONE:
        try:
            driving.value = step.block()
        except BaseException as exc:  # thrown into the steps, which decide
            driving.error = exc
    result: T = driving.result
    return result


async def arun(steps: Steps[T]) -> T:
    """Perform ``steps`` in the calling task, awaiting where they wait."""
    driving = _Driving(steps)
    while (step := driving.advance()) is not _DONE:
        try:
            driving.value = await step.wait()
        except BaseException as exc:  # thrown into the steps, which decide
            driving.error = exc
    result: T = driving.result
    return result


class WaitLocal:
    """A step: wait for a local lock until ``deadline`` (monotonic); say if taken."""

    __slots__ = ("deadline", "lock")

    def __init__(self, lock: Any, deadline: float) -> None:
        self.lock, self.deadline = lock, deadline

    def block(self) -> bool:
        """Wait for a :class:`threading.RLock` (or a lock like it)."""
        if self.deadline == math.inf:
            return bool(self.lock.acquire())
        remaining = self.deadline - monotonic()
        # threading refuses a timeout with blocking=False (a spent deadline
        # is one last try) and one above TIMEOUT_MAX (about 292 years).
        if remaining > 0:
            return bool(self.lock.acquire(True, min(remaining, threading.TIMEOUT_MAX)))
        return bool(self.lock.acquire(False))

    async def wait(self) -> bool:
        """Wait for a :class:`cc.primitives.Lock`."""
        with anyio.move_on_after(self.deadline - monotonic()):
            await self.lock.acquire()
            return True
        return False


class Call:
    """A step: ``fn(*args)``; for tasks, ``mode`` says how (:data:`AWAIT`...).

    ``limiter``: the :class:`anyio.CapacityLimiter` of an :data:`IN_THREAD`
    call's worker threads (``None``: anyio's default).
    """

    __slots__ = ("args", "fn", "limiter", "mode")

    def __init__(
        self,
        fn: Callable[..., Any],
        *args: Any,
        mode: int = DIRECT,
        limiter: Any = None,
    ) -> None:
        self.fn, self.args, self.mode, self.limiter = fn, args, mode, limiter

    def block(self) -> Any:
        """Call it in the calling thread."""
        return self.fn(*self.args)

    async def wait(self) -> Any:
        """Call it, await it, or run it in a worker thread."""
        if self.mode == AWAIT:
            return await self.fn(*self.args)
        if self.mode == IN_THREAD:
            return await anyio.to_thread.run_sync(
                self.fn, *self.args, limiter=self.limiter
            )
        return self.fn(*self.args)


class Pause:
    """A step: sleep until ``token`` of ``board`` is woken, or ``seconds`` pass."""

    __slots__ = ("board", "seconds", "token")

    def __init__(self, board: Any, token: Any, seconds: float | None) -> None:
        self.board, self.token, self.seconds = board, token, seconds

    def block(self) -> None:
        """Sleep on a :class:`ThreadBoard`."""
        self.board.block(self.token, self.seconds)

    async def wait(self) -> None:
        """Sleep on a :class:`TaskBoard`."""
        await self.board.wait(self.token, self.seconds)


class Shielded:
    """A step: run ``steps`` to the end even if the caller is cancelled.

    Tasks give them ``seconds`` at most (``None``: no limit), then raise
    :class:`TimeoutError`; threads are bounded by the store's socket timeouts.
    """

    __slots__ = ("seconds", "steps")

    def __init__(self, steps: Steps[Any], seconds: float | None) -> None:
        self.steps, self.seconds = steps, seconds

    def block(self) -> Any:
        """Run the steps."""
        return run(self.steps)

    async def wait(self) -> Any:
        """Run the steps in a shielded cancel scope."""
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(
                math.inf if self.seconds is None else self.seconds
            ):
                return await arun(self.steps)
        raise TimeoutError(f"gave up after {self.seconds} s")


class ThreadBoard:
    """Where threads sleep until a key (a lock's name) is woken.

    Each key has a condition of its own (all on one lock), so that waking a
    key wakes only the threads sleeping on it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # key -> [how many times it was woken, its condition]
        self._keys: dict[str, list[Any]] = {}
        self._closed = False

    def _entry(self, key: str) -> list[Any]:
        entry = self._keys.get(key)
        if entry is None:
            entry = self._keys[key] = [0, threading.Condition(self._lock)]
        return entry

    def prepare(self, key: str) -> tuple[str, int]:
        """Return the token to wait on for ``key``, from now on."""
        with self._lock:
            return key, self._entry(key)[0]

    def wake(self, key: str) -> None:
        """Wake the tokens of ``key``."""
        with self._lock:
            entry = self._entry(key)
            entry[0] += 1
            entry[1].notify_all()

    def wake_all(self) -> None:
        """Wake every token."""
        with self._lock:
            for entry in self._keys.values():
                entry[0] += 1
                entry[1].notify_all()

    def close(self) -> None:
        """Wake every token, now and from now on."""
        with self._lock:
            self._closed = True
            for entry in self._keys.values():
                entry[1].notify_all()

    def block(self, token: tuple[str, int], seconds: float | None) -> None:
        """Sleep until ``token`` is woken, or ``seconds`` pass."""
        key, seen = token
        with self._lock:
            entry = self._keys[key]
            if entry[0] == seen and not self._closed:
                entry[1].wait(seconds)


class TaskBoard:
    """Where tasks sleep until a key (a lock's name) is woken."""

    def __init__(self) -> None:
        self._events: dict[str, anyio.Event] = {}
        self._closed = False

    def prepare(self, key: str) -> anyio.Event:
        """Return the token to wait on for ``key``, from now on."""
        event = self._events.get(key)
        if event is None:
            event = self._events[key] = anyio.Event()
        return event

    def wake(self, key: str) -> None:
        """Wake the tokens of ``key``."""
        event = self._events.pop(key, None)
        if event is not None:
            event.set()

    def wake_all(self) -> None:
        """Wake every token."""
        events, self._events = self._events, {}
        for event in events.values():
            event.set()

    def close(self) -> None:
        """Wake every token, now and from now on."""
        self._closed = True
        self.wake_all()

    async def wait(self, token: anyio.Event, seconds: float | None) -> None:
        """Sleep until ``token`` is woken, or ``seconds`` pass."""
        if not self._closed:
            with anyio.move_on_after(math.inf if seconds is None else seconds):
                await token.wait()
