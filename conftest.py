"""Shared pytest configuration for every cc test suite.

Each package's tests, the integration tests and the stress tests run every
async test on asyncio, asyncio with uvloop (not on Windows) and
trio, through anyio's pytest plugin.
"""

from __future__ import annotations

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
