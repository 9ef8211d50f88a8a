"""async_run on asyncio, asyncio with uvloop, and trio (synchronous tests)."""

from __future__ import annotations

import asyncio
import inspect
import sys
from typing import Any

import anyio
import pytest
import sniffio

from cc.core_helpers import ValidationError, async_run, async_sleep


async def where(tag: str, *extra: object) -> tuple[str, str, tuple[object, ...]]:
    """Report the running async library and event loop class."""
    await async_sleep(0)
    library = sniffio.current_async_library()
    loop = type(asyncio.get_running_loop()).__module__ if library == "asyncio" else ""
    return tag, f"{library} {loop}".strip(), extra


def test_runs_on_asyncio_by_default() -> None:
    tag, place, extra = async_run(where, "a", 1, 2)
    assert (tag, extra) == ("a", (1, 2))
    assert place.startswith("asyncio asyncio.")


@pytest.mark.skipif(sys.platform == "win32", reason="uvloop does not exist on Windows")
def test_runs_on_uvloop_when_asked() -> None:
    _, place, _ = async_run(where, "u", backend_options={"use_uvloop": True})
    assert place == "asyncio uvloop"


def test_runs_on_trio() -> None:
    assert async_run(where, "t", backend="trio") == ("t", "trio", ())


def test_debug_mode_on_asyncio() -> None:
    async def debug_flag() -> bool:
        return asyncio.get_running_loop().get_debug()

    assert async_run(debug_flag, debug=True) is True
    assert async_run(debug_flag) is False


def test_errors_of_main_propagate_as_themselves() -> None:
    boom = LookupError("boom")

    async def fails() -> None:
        await async_sleep(0)
        raise boom

    for backend in ("asyncio", "trio"):
        with pytest.raises(LookupError) as caught:
            async_run(fails, backend=backend)
        assert caught.value is boom


def test_a_callable_returning_an_awaitable_is_fine() -> None:
    tag, place, _ = async_run(lambda: where("lambda"))
    assert tag == "lambda"
    assert place.startswith("asyncio asyncio.")


@pytest.mark.parametrize("main", [None, 42, "main"])
def test_main_must_be_callable(main: Any) -> None:
    with pytest.raises(ValidationError, match="main must be callable"):
        async_run(main)


def test_passing_a_coroutine_instead_of_the_function() -> None:
    started = False

    async def main() -> None:
        nonlocal started
        started = True  # pragma: no cover

    with pytest.raises(ValidationError, match=r"pass the async function itself, not"):
        async_run(coroutine := main())  # type: ignore[arg-type]
    assert inspect.getcoroutinestate(coroutine) == inspect.CORO_CLOSED
    assert not started


def test_main_must_return_an_awaitable() -> None:
    with pytest.raises(ValidationError, match="main must be an async function"):
        async_run(len, "abc")  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", ["curio", "uvloop", "", None])
def test_unknown_backend(backend: Any) -> None:
    with pytest.raises(
        ValidationError, match="backend must be one of 'asyncio', 'trio'"
    ):
        async_run(where, "x", backend=backend)


def test_backend_options_must_be_a_mapping() -> None:
    with pytest.raises(ValidationError, match="backend_options must be a mapping"):
        async_run(where, "x", backend_options=[("use_uvloop", True)])  # type: ignore[arg-type]


def test_debug_is_asyncio_only() -> None:
    with pytest.raises(
        ValidationError, match="debug=True is only available on the asyncio"
    ):
        async_run(where, "x", backend="trio", debug=True)


@pytest.mark.parametrize(
    ("module", "kwargs"),
    [
        ("uvloop", {"backend_options": {"use_uvloop": True}}),
        ("trio", {"backend": "trio"}),
    ],
)
def test_a_missing_optional_dependency_is_reported_clearly(
    monkeypatch: pytest.MonkeyPatch, module: str, kwargs: dict[str, Any]
) -> None:
    # A None entry in sys.modules makes the module impossible to import.
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(
        ValidationError, match=f"needs {module}: pip install {module}"
    ) as caught:
        async_run(where, "x", **kwargs)
    assert isinstance(caught.value, ImportError)
    assert caught.value.name == module


@pytest.mark.anyio
async def test_it_cannot_run_inside_a_running_event_loop() -> None:
    with pytest.raises(RuntimeError):
        async_run(where, "nested")
    with pytest.raises(RuntimeError):
        async_run(where, "nested", backend="trio")


def test_anyio_backends_are_used() -> None:
    # async_run goes through anyio, so anyio works inside main on both.
    async def uses_anyio() -> float:
        with anyio.move_on_after(0.001):
            await anyio.sleep(1)
        return 1.0

    assert async_run(uses_anyio) == async_run(uses_anyio, backend="trio") == 1.0
