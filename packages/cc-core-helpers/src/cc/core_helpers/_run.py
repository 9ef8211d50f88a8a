"""async_run: the synchronous entry point that runs an async function to completion."""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NoReturn, TypeVar

import anyio

from cc.core_helpers._errors import ValidationError
from cc.core_helpers._validation import (
    check_flag,
    describe,
    is_awaitable,
    short_repr,
)

__all__ = ["async_run"]

_T = TypeVar("_T")

_BACKENDS = ("asyncio", "trio")


class MissingDependencyError(ValidationError, ModuleNotFoundError):
    """An optional dependency needed for the requested option is not installed.

    Private: raised by :func:`~cc.core_helpers.async_run` as a
    :class:`ValidationError` that is also a :class:`ModuleNotFoundError`, so
    that both ``except ValidationError`` and ``except ImportError`` work.
    """


def async_run(
    main: Callable[..., Awaitable[_T]],
    *args: object,
    backend: str = "asyncio",
    backend_options: Mapping[str, Any] | None = None,
    debug: bool = False,
) -> _T:
    """Run ``main(*args)`` in a new event loop and return its result.

    This is the synchronous entry point of a program, like
    :func:`asyncio.run` or :func:`anyio.run`, with the backend chosen by name.
    It must be called from synchronous code (not from inside a running event
    loop).

    * ``backend="asyncio"`` (the default). Pass
      ``backend_options={"use_uvloop": True}`` to run on uvloop; uvloop is an
      optional dependency, imported only then, and a clear error says so if
      it is missing (it does not exist on Windows).
    * ``backend="trio"`` needs trio installed (``pip install trio``).

    ``backend_options`` are handed to :func:`anyio.run` (see anyio's
    documentation for what each backend accepts).

    :param main: an async function (or any callable returning an awaitable)
    :param args: positional arguments for ``main``
    :param backend: ``"asyncio"`` or ``"trio"``
    :param backend_options: options for the backend, as :func:`anyio.run`
        takes them
    :param debug: run asyncio in debug mode (asyncio only: trio has no such
        mode)
    :return: what ``main(*args)`` returned
    :raises ValidationError: if ``main`` is not callable or does not return an
        awaitable, ``backend`` is unknown, ``backend_options`` is not a
        mapping, ``debug`` is not a bool or is requested on trio, or the
        requested backend or uvloop is not installed (then it is also a
        :class:`ModuleNotFoundError`)
    :raises RuntimeError: if an event loop is already running in this thread

    >>> from cc.core_helpers import async_run, async_sleep
    >>> async def main(greeting: str) -> str:
    ...     await async_sleep(0.01)
    ...     return greeting
    >>> async_run(main, "hello")
    'hello'
    >>> async_run(main, "hello from trio", backend="trio")
    'hello from trio'
    """
    if not callable(main):
        _reject_main(main)
    if backend not in _BACKENDS:
        raise ValidationError(
            f"backend must be one of {', '.join(map(repr, _BACKENDS))}, "
            f"got {short_repr(backend)}"
        )
    check_flag("debug", debug)
    if backend_options is not None and not isinstance(backend_options, Mapping):
        raise ValidationError(
            "backend_options must be a mapping or None, got "
            f"{describe(backend_options)}"
        )
    options = dict(backend_options or {})
    if debug:
        if backend != "asyncio":
            raise ValidationError(
                f"debug=True is only available on the asyncio backend, not {backend!r}"
            )
        options["debug"] = True
    if backend == "trio":
        _require("trio", "backend='trio' needs trio: pip install trio")
    elif options.get("use_uvloop"):
        _require(
            "uvloop",
            "use_uvloop=True needs uvloop: pip install uvloop "
            "(it is not available on Windows)",
        )
    return anyio.run(_call_main, main, args, backend=backend, backend_options=options)


def _reject_main(main: object) -> NoReturn:
    hint = ""
    if inspect.iscoroutine(main):
        main.close()  # it will never run; do not let Python warn about it
        hint = " (pass the async function itself, not the coroutine main())"
    raise ValidationError(
        f"main must be callable (an async function), got {describe(main)}{hint}"
    )


def _require(module: str, message: str) -> None:
    # find_spec only looks for the module; anyio imports it when it runs.
    if importlib.util.find_spec(module) is None:
        error = MissingDependencyError(message)
        error.name = module
        raise error


async def _call_main(
    main: Callable[..., Awaitable[_T]], args: tuple[object, ...]
) -> _T:
    awaitable = main(*args)
    if not is_awaitable(awaitable):
        raise ValidationError(
            f"main must be an async function, but main(...) returned "
            f"{describe(awaitable)}, which is not awaitable"
        )
    return await awaitable
