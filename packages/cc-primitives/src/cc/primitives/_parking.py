"""The first-in first-out waiting primitive under every cc primitive, and their base."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from types import TracebackType

import anyio

from cc.primitives._backend import new_event
from cc.primitives._checkpoints import checkpoint_rule

__all__ = ["ParkingLot", "Primitive"]


class ParkingLot:
    """Tasks waiting in first-in first-out order, each woken with a value.

    :meth:`park` suspends the calling task until another task wakes it with
    :meth:`unpark`, :meth:`unpark_n` or :meth:`unpark_all`, and returns the
    value the waker passed. Tasks are woken in the order they parked. Waking
    is synchronous (not a checkpoint) and never fails for a parked task; the
    woken task resumes at its next scheduling.

    Every parked task has a *key* (the ``key`` argument, or a fresh object):
    :meth:`unpark` returns the key of the task it woke, so the waker can
    record who now owns what (a lock keys its waiters by task, a capacity
    limiter by borrower), and ``key in lot`` tells whether a key is parked.

    Cancellation is safe at every point:

    * a task cancelled while parked leaves the lot, and no waker sees it;
    * a task woken with a value and cancelled before it could resume calls
      ``hand_back(value)`` (from its :meth:`park` call) and then lets the
      cancellation propagate. ``hand_back`` must pass the value on (to the
      next parked task, or back to the structure it came from); it runs in
      the cancelled task, synchronously, before anything else runs.

    An idle lot costs one small object. Test ``lot.parked`` (the number of
    parked tasks) on a hot path: it is much cheaper than ``len(lot)`` or
    ``bool(lot)``. It belongs to the event loop of its tasks and is not
    thread safe.

    >>> import anyio
    >>> from cc.primitives.lowlevel import ParkingLot
    >>> async def main() -> list[str]:
    ...     lot, got = ParkingLot(), []
    ...     async def waiter(name: str) -> None:
    ...         got.append(f"{name}: {await lot.park(name)}")
    ...     async with anyio.create_task_group() as tg:
    ...         for name in ("a", "b", "c"):
    ...             tg.start_soon(waiter, name)
    ...             await anyio.wait_all_tasks_blocked()
    ...         assert lot.unpark("first") == "a"
    ...         assert lot.unpark_all("rest") == 2
    ...     return got
    >>> anyio.run(main)
    ['a: first', 'b: rest', 'c: rest']
    """

    __slots__ = ("_line", "_values", "parked")

    def __init__(self) -> None:
        # The event each parked task waits on, by key, in order; and the
        # values woken tasks have not collected yet (but for None, the usual
        # value, which needs no entry). Both exist only while needed.
        self._line: OrderedDict[Hashable, anyio.Event] | None = None
        self._values: dict[anyio.Event, object] | None = None
        #: How many tasks are parked (read it, never write it). Reading this
        #: attribute is the cheapest test a fast path can make.
        self.parked = 0

    def __repr__(self) -> str:
        return f"<{type(self).__name__} parked={self.parked}>"

    def __len__(self) -> int:
        return self.parked

    def __bool__(self) -> bool:
        return self.parked > 0

    def __contains__(self, key: object) -> bool:
        line = self._line
        return line is not None and key in line

    async def park(
        self,
        key: Hashable = None,
        hand_back: Callable[[object], object] | None = None,
    ) -> object:
        """Wait, last in line, until a waker passes a value; return that value.

        A wait is a cancellation point. If the task is cancelled after a
        waker gave it a value but before it resumed, ``hand_back(value)`` is
        called before the cancellation propagates (see the class docstring).

        :param key: what :meth:`unpark` returns for this task (hashable,
            unique among the tasks parked here); ``None`` for a fresh key
        :param hand_back: called with the value when the task is woken and
            cancelled at once; ``None`` when a lost value needs no action
        :return: the value passed to :meth:`unpark` (or ``unpark_n`` /
            ``unpark_all``)
        :raises RuntimeError: if ``key`` is already parked here
        """
        event = new_event()
        line = self._line
        if line is None:
            line = self._line = OrderedDict()
        if key is None:
            key = event
        elif key in line:
            raise RuntimeError(f"{key!r} is already parked in this ParkingLot")
        line[key] = event
        self.parked += 1
        try:
            await event.wait()
        except BaseException:
            if not event.is_set():
                # Still parked (only a waker sets the event): leave quietly.
                self._remove(key)
            else:
                value = self._collect(event)
                if hand_back is not None:
                    hand_back(value)
            raise
        return self._collect(event) if self._values else None

    def _collect(self, event: anyio.Event) -> object:
        values = self._values
        if not values:
            return None
        value = values.pop(event, None)
        if not values:
            self._values = None
        return value

    def _remove(self, key: Hashable) -> None:
        line = self._line
        assert line is not None
        del line[key]
        self.parked -= 1
        if not line:
            self._line = None

    def unpark(self, value: object = None) -> Hashable:
        """Wake the task that has waited longest, passing it ``value``.

        :return: the key the woken task parked with
        :raises LookupError: if no task is parked
        """
        line = self._line
        if line is None:
            raise LookupError("no task is parked in this ParkingLot")
        key, event = line.popitem(last=False)
        self.parked -= 1
        if not line:
            self._line = None
        if value is not None:
            values = self._values
            if values is None:
                values = self._values = {}
            values[event] = value
        event.set()
        return key

    def unpark_n(self, n: int, value: object = None) -> int:
        """Wake up to ``n`` tasks, longest-waiting first, each with ``value``.

        :return: how many tasks were woken
        """
        woken = 0
        while woken < n and self.parked:
            self.unpark(value)
            woken += 1
        return woken

    def unpark_all(self, value: object = None) -> int:
        """Wake every parked task, each with ``value``.

        :return: how many tasks were woken
        """
        return self.unpark_n(self.parked, value)

    def first(self) -> Hashable:
        """Return the key of the task that has waited longest, without waking it.

        :raises LookupError: if no task is parked
        """
        line = self._line
        if line is None:
            raise LookupError("no task is parked in this ParkingLot")
        return next(iter(line))


class Primitive:
    """The base of cc's primitives: a line of waiting tasks and a checkpoint rule.

    ``async with`` ends with ``release()``; ``repr()`` shows :meth:`_state`
    and how many tasks wait.
    """

    __slots__ = ("__weakref__", "_due", "_waiters")

    release: Callable[[], None]

    def __init__(self, fast_acquire: bool | None = None) -> None:
        self._due = checkpoint_rule(fast_acquire)
        self._waiters = ParkingLot()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._state()} waiting={self._waiters.parked}>"

    def _state(self) -> str:
        raise NotImplementedError

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
