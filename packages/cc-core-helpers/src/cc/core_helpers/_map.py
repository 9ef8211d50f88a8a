"""async_map: apply an async function over an iterable with bounded concurrency."""

from __future__ import annotations

import math
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Iterator,
)
from typing import Any, Generic, Literal, TypeVar, overload

from cc.core_helpers._errors import ValidationError
from cc.core_helpers._pool import FatalError, JobPool
from cc.core_helpers._validation import (
    check_flag,
    check_limit,
    describe,
    is_awaitable,
)
from cc.primitives.lowlevel import checkpoint_rule, take_checkpoint

__all__ = ["AsyncMap", "async_map"]

_T = TypeVar("_T")
_R = TypeVar("_R")

# AsyncMap states
_FRESH = "not started"
_AWAITED = "awaited"
_ITERATING = "iterating"
_RUNNING = "running"
_CLOSED = "closed"


class AsyncMap(Generic[_R]):
    """What :func:`async_map` returns: await it for a list, or iterate over it.

    * ``await async_map(...)`` runs every call (at most ``limit`` at a time,
      starting the next as soon as one finishes) and returns the list of
      results in input order.
    * ``async for result in async_map(...)`` hands out results in input order
      while holding at most ``limit`` of them: it starts up to ``limit`` calls,
      waits until they have all finished, hands out their results one by one,
      and only then starts the next ``limit`` calls. Nothing runs while the
      body of your loop runs, so a consumer that breaks out of the loop early
      (or raises) leaves nothing behind: no task, no cancel scope, nothing to
      close, on every backend and without ``aclosing``. The price is that a
      window waits for its slowest call before the next window starts; if you
      want calls to keep running while your loop body works, await the list
      instead.
    * It can also be used as ``async with async_map(...) as results:`` (or with
      :func:`contextlib.aclosing`); leaving the block closes it. :meth:`aclose`
      ends the iteration early: later ``__anext__`` calls raise
      :class:`StopAsyncIteration`.

    If a call fails (and ``return_exceptions`` is false), the other calls in
    flight are cancelled and the first failure is raised, by the ``await`` or
    by the ``__anext__`` that was running them; the iteration is then over.

    An :class:`AsyncMap` can be consumed once: awaiting it twice, or awaiting
    it after iterating over it, raises :class:`RuntimeError`. It does not
    close the iterable it was given.
    """

    __slots__ = ("_due", "_func", "_limit", "_pending", "_pool", "_state")

    def __init__(
        self,
        func: Callable[[Any], Awaitable[Any]],
        source: Iterator[Any] | AsyncIterator[Any],
        *,
        is_async: bool,
        limit: int,
        return_exceptions: bool,
    ) -> None:
        # cc's checkpoint rule, bound once: every step of the iteration spends it.
        self._due = checkpoint_rule(None)
        self._func = func
        self._pool = JobPool(
            source,
            name="async_map",
            limit=limit,
            return_exceptions=return_exceptions,
            call=self._call,
            is_async=is_async,
        )
        self._limit = limit
        self._state = _FRESH
        # Results of the current window not yet handed out, last one first.
        self._pending: list[_R] = []

    def _call(self, item: Any) -> Awaitable[Any]:
        # In the job's own task: func must give an awaitable, or the map fails.
        awaitable = self._func(item)
        if not is_awaitable(awaitable):
            raise FatalError(
                ValidationError(
                    f"async_map: func must return an awaitable (be an async "
                    f"function), but it returned {describe(awaitable)}"
                )
            )
        return awaitable

    def __repr__(self) -> str:
        func = getattr(self._func, "__qualname__", repr(self._func))
        return f"<{type(self).__name__} {func} limit={self._limit} {self._state}>"

    def __await__(self) -> Generator[Any, None, list[_R]]:
        if self._state is not _FRESH:
            raise RuntimeError(
                f"this async_map can be consumed only once; it is already {self._state}"
            )
        self._state = _AWAITED
        return self._collect().__await__()

    async def _collect(self) -> list[_R]:
        if next(self._due):
            self._due = await take_checkpoint(self._due)
        return await self._pool.next_results(math.inf)

    def __aiter__(self) -> AsyncMap[_R]:
        if self._state is _FRESH:
            self._state = _ITERATING
        elif self._state is _AWAITED:
            raise RuntimeError("this async_map has been awaited; it cannot be iterated")
        return self

    async def __anext__(self) -> _R:
        if next(self._due):  # cc's checkpoint rule, before taking anything
            self._due = await take_checkpoint(self._due)
        pending = self._pending
        if pending:
            return pending.pop()
        state = self._state
        if state is _CLOSED:
            raise StopAsyncIteration
        if state is _RUNNING:
            raise RuntimeError(
                "async_map: __anext__ is already running in another task"
            )
        if state is _AWAITED:
            raise RuntimeError("this async_map has been awaited; it cannot be iterated")
        self._state = _RUNNING
        try:
            results = await self._pool.next_results(self._limit)
        except BaseException:
            self._state = _CLOSED
            raise
        if not results:
            self._state = _CLOSED
            raise StopAsyncIteration
        self._state = _ITERATING
        results.reverse()
        self._pending = results
        first: _R = results.pop()
        return first

    async def aclose(self) -> None:
        """Stop the iteration: drop results not handed out, start nothing more.

        Nothing is running between two steps of the iteration, so there is
        nothing to cancel or wait for. Closing twice is harmless. It closes
        first and only then applies cc's checkpoint rule, so even a cancelled
        ``aclose()`` has closed.

        :raises RuntimeError: if ``__anext__`` is running in another task
        """
        if self._state is _RUNNING:
            raise RuntimeError("async_map: cannot close it while __anext__ is running")
        self._state = _CLOSED
        self._pending = []
        if next(self._due):
            self._due = await take_checkpoint(self._due)

    async def __aenter__(self) -> AsyncMap[_R]:
        if next(self._due):
            self._due = await take_checkpoint(self._due)
        return self.__aiter__()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


@overload
def async_map(
    func: Callable[[_T], Awaitable[_R]],
    iterable: Iterable[_T] | AsyncIterable[_T],
    *,
    limit: int,
    return_exceptions: Literal[False] = False,
) -> AsyncMap[_R]: ...


@overload
def async_map(
    func: Callable[[_T], Awaitable[_R]],
    iterable: Iterable[_T] | AsyncIterable[_T],
    *,
    limit: int,
    return_exceptions: bool,
) -> AsyncMap[_R | Exception]: ...


def async_map(
    func: Callable[[Any], Awaitable[Any]],
    iterable: Iterable[Any] | AsyncIterable[Any],
    *,
    limit: int,
    return_exceptions: bool = False,
) -> AsyncMap[Any]:
    """Call the async function ``func`` on every item, ``limit`` calls at a time.

    The items come from ``iterable``, which may be an ordinary iterable or an
    async iterable (an async generator, a stream); they are taken one at a
    time, only when a call can start, so an endless or huge source is fine.
    Results always come back in input order, whatever order the calls finish
    in. See :class:`AsyncMap` for the two ways to consume it:
    ``await async_map(...)`` returns a list; ``async for`` hands results out
    while holding at most ``limit`` of them at a time.

    Like :func:`async_gather`, it is structured (no call outlives the
    ``await`` or the ``__anext__`` that started it; a failure cancels the
    calls in flight before it propagates, as itself, never in an exception
    group) and each call runs in a task of its own (``func`` is called in
    that task too). The items are taken from ``iterable`` by the task that
    awaits or iterates, as a ``for`` loop there would take them.

    :param func: an async function taking one item
    :param iterable: the items, an iterable or an async iterable
    :param limit: at most this many calls run at once (an integer ``>= 1``)
    :param return_exceptions: put a call's exception in its place among the
        results instead of raising it; exceptions raised by the iterable
        itself are always raised
    :return: an :class:`AsyncMap`, to be awaited or iterated over once
    :raises ValidationError: if ``func`` is not callable, ``iterable`` is
        neither iterable nor async iterable, ``limit`` is not an integer of
        at least 1 or ``return_exceptions`` is not a bool (raised by the call
        itself, before anything runs); when
        ``func`` returns something that is not awaitable (raised by the
        ``await`` or ``async for``)

    >>> import anyio
    >>> from cc.core_helpers import async_map, async_sleep
    >>> async def square(n: int) -> int:
    ...     await async_sleep(0.01 * (3 - n))  # finish out of order
    ...     return n * n
    >>> async def main() -> tuple[list[int], list[int]]:
    ...     everything = await async_map(square, range(4), limit=2)
    ...     streamed = [r async for r in async_map(square, range(4), limit=2)]
    ...     return everything, streamed
    >>> anyio.run(main)
    ([0, 1, 4, 9], [0, 1, 4, 9])
    >>> anyio.run(main, backend="trio")
    ([0, 1, 4, 9], [0, 1, 4, 9])
    """
    if not callable(func):
        raise ValidationError(
            f"func must be callable (an async function), got {describe(func)}"
        )
    limit_value = int(check_limit(limit, allow_none=False))
    check_flag("return_exceptions", return_exceptions)
    source: Iterator[Any] | AsyncIterator[Any]
    if hasattr(type(iterable), "__aiter__"):
        source = aiter(iterable)  # type: ignore[arg-type]
        is_async = True
    else:
        try:
            source = iter(iterable)  # type: ignore[arg-type]
        except TypeError:
            raise ValidationError(
                f"iterable must be an iterable or an async iterable, got "
                f"{describe(iterable)}"
            ) from None
        is_async = False
    return AsyncMap(
        func,
        source,
        is_async=is_async,
        limit=limit_value,
        return_exceptions=return_exceptions,
    )
