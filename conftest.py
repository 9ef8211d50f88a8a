"""Shared pytest configuration for every cc test suite.

Each package's tests, the integration tests and the stress tests run every
async test on asyncio, asyncio with uvloop (not on Windows) and
trio, through anyio's pytest plugin. Tests about time run instead on asyncio
and trio with a virtual clock (``virtual_time_backend``): exact, and immune
to a loaded machine.
"""

from __future__ import annotations

import asyncio
import selectors
import sys
from typing import Any

import pytest

_BACKENDS: list[Any] = [pytest.param(("asyncio", {}), id="asyncio")]
if sys.platform != "win32":  # uvloop does not exist on Windows
    _BACKENDS.append(
        pytest.param(("asyncio", {"use_uvloop": True}), id="asyncio+uvloop")
    )
_BACKENDS.append(pytest.param(("trio", {}), id="trio"))


@pytest.fixture(params=_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    return request.param


# -- virtual time ------------------------------------------------------------------


class _JumpingSelector(selectors.BaseSelector):
    """A selector that, instead of sleeping until the next timer, moves the clock.

    When nothing is ready and a timer is due in ``timeout`` seconds, the
    loop's virtual clock jumps ahead by ``timeout`` at once; with no timer
    at all it waits for real I/O (a worker thread's result, say).
    """

    def __init__(self, loop: VirtualTimeLoop) -> None:
        self._real = selectors.DefaultSelector()
        self._loop = loop

    def register(self, fileobj: Any, events: int, data: Any = None) -> Any:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> Any:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> Any:
        return self._real.modify(fileobj, events, data)

    def get_key(self, fileobj: Any) -> Any:
        return self._real.get_key(fileobj)

    def get_map(self) -> Any:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()

    def select(self, timeout: float | None = None) -> Any:
        ready = self._real.select(0)
        if ready or (timeout is not None and timeout <= 0):
            return ready
        if timeout is None:
            return self._real.select(None)
        self._loop.virtual_now += timeout
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An asyncio event loop on a virtual clock, for tests about time.

    The clock starts at 0 and stands still while any task can run; when
    every task waits, it jumps straight to the next timer (as trio's
    ``MockClock(autojump_threshold=0)``). So sleeps, deadlines and rate
    windows take no real time and their arithmetic is exact, however loaded
    the machine is. Only for tests whose tasks wait on the clock and on each
    other: a worker thread or a socket still takes real time, and a timer
    would fire (virtually) while it works.
    """

    def __init__(self) -> None:
        self.virtual_now = 0.0
        super().__init__(_JumpingSelector(self))

    def time(self) -> float:
        return self.virtual_now


_VIRTUAL_TIME_BACKENDS = [
    pytest.param("asyncio", id="asyncio+virtual-clock"),
    pytest.param("trio", id="trio+virtual-clock"),
]


@pytest.fixture(params=_VIRTUAL_TIME_BACKENDS)
def virtual_time_backend(request: pytest.FixtureRequest) -> Any:
    """asyncio and trio, each on a virtual clock that jumps when all tasks wait.

    A test module about time runs on it with::

        @pytest.fixture
        def anyio_backend(virtual_time_backend):
            return virtual_time_backend
    """
    if request.param == "asyncio":
        return ("asyncio", {"loop_factory": VirtualTimeLoop})
    import trio.testing

    return ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})
