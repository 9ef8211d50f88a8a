"""Corners of the private helpers that the public API cannot reach."""

from __future__ import annotations

import sys

import anyio
import anyio.lowlevel
import pytest

from cc.locks._records import caller_site, format_site
from cc.locks._tasks import current_task, describe_task


def test_format_site_names_file_line_and_function() -> None:
    site = caller_site(0)
    line = sys._getframe(0).f_lineno - 1
    assert format_site(site) == (
        f"{__file__}:{line} in test_format_site_names_file_line_and_function"
    )
    assert format_site(None) == "an unknown place"


def test_describe_task_falls_back_to_the_repr() -> None:
    assert describe_task(12345) == "task 12345"


def test_current_task_outside_an_event_loop() -> None:
    with pytest.raises(RuntimeError, match="inside an async task"):
        current_task()


def test_current_task_is_stable_within_a_task_on_every_backend() -> None:
    for backend in ("asyncio", "trio"):

        async def main() -> tuple[object, object]:
            first = current_task()
            await anyio.lowlevel.checkpoint()
            return first, current_task()

        first, second = anyio.run(main, backend=backend)
        assert first is second
