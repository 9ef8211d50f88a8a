"""Every argument of every helper: extremes that must work, junk that must be refused.

A number too large for a float (``10**400``) is "forever" where the argument
is a duration that may be infinite (a sleep, a timeout) and simply a very
large limit elsewhere; it never surfaces as a bare ``OverflowError``. Other
real numbers (float subclasses, fractions) are durations too; booleans where
a number is expected, and strings or ``None`` where a bool is expected, are
refused with a :class:`ValidationError` that names the argument.
"""

from __future__ import annotations

import inspect
import math
from decimal import Decimal
from fractions import Fraction
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from cc.core_helpers import (
    ValidationError,
    async_gather,
    async_map,
    async_run,
    async_sleep,
    async_wait_for,
)

HUGE = 10**400  # float(HUGE) raises OverflowError
ENORMOUS = 10**5000  # too many digits even to print by default (3.11+)
# pytest cannot make test ids out of ENORMOUS: name the values.
HUGE_P = pytest.param(HUGE, id="10**400")
ENORMOUS_P = pytest.param(ENORMOUS, id="10**5000")
MINUS_ENORMOUS_P = pytest.param(-ENORMOUS, id="-10**5000")


class Index:
    """An integer type that is not int (like numpy.int64): it has __index__."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __index__(self) -> int:
        return self.value


async def waits(result: str = "done") -> str:
    await anyio.lowlevel.checkpoint()
    return result


async def at_once(result: str = "done") -> str:
    return result


def closed(coroutine: Any) -> bool:
    return inspect.getcoroutinestate(coroutine) == inspect.CORO_CLOSED


# -- durations ------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("delay", [HUGE_P, ENORMOUS_P, Fraction(HUGE, 3), math.inf])
async def test_a_sleep_longer_than_a_float_sleeps_until_cancelled(delay: Any) -> None:
    with anyio.move_on_after(0.01) as scope:
        await async_sleep(delay)
    assert scope.cancelled_caught


@pytest.mark.anyio
@pytest.mark.parametrize("delay", [Fraction(1, 1000), -0.0, 0.0, 0])
async def test_other_real_delays_sleep(delay: Any) -> None:
    assert await async_sleep(delay) is None


@pytest.mark.anyio
@pytest.mark.parametrize("timeout", [HUGE_P, ENORMOUS_P, Fraction(HUGE, 7)])
async def test_a_timeout_longer_than_a_float_is_no_limit(timeout: Any) -> None:
    assert await async_wait_for(waits("waited"), timeout) == "waited"
    assert await async_wait_for(at_once("at once"), timeout) == "at once"
    # No limit: only a cancellation from outside ends work that never ends.
    with anyio.move_on_after(0.01) as scope:
        await async_wait_for(anyio.sleep_forever(), timeout)
    assert scope.cancelled_caught


@pytest.mark.anyio
async def test_a_fraction_is_a_timeout_and_negative_zero_is_zero() -> None:
    assert await async_wait_for(waits(), Fraction(5, 1)) == "done"
    with pytest.raises(TimeoutError):
        await async_wait_for(anyio.sleep_forever(), Fraction(1, 100))
    with pytest.raises(TimeoutError):
        await async_wait_for(waits(), -0.0)
    assert await async_wait_for(at_once(), -0.0) == "done"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (-HUGE, "Sleep delay must be non-negative, got -1000"),
        pytest.param(
            -ENORMOUS,
            "Sleep delay must be non-negative, got <int object>",
            id="-10**5000",
        ),
        (Fraction(-1, 2), "must be non-negative"),
        (Decimal("1"), r"Sleep delay must be a number, got Decimal\('1'\)"),
        (Decimal("NaN"), "Sleep delay must be a number"),
        (1j, "Sleep delay must be a number"),
        (False, "Sleep delay must be a number, got False"),
    ],
)
async def test_bad_delays(bad: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        await async_sleep(bad)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (-HUGE, "Timeout must be non-negative"),
        (Decimal("2"), "Timeout must be a number of seconds or None"),
        (float("nan"), "Timeout must be non-negative"),
        (False, "Timeout must be a number of seconds or None, got False"),
    ],
)
async def test_bad_timeouts(bad: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        await async_wait_for(coroutine := waits(), bad)
    assert closed(coroutine)


# -- limits ---------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("limit", [HUGE_P, ENORMOUS_P, Index(2)])
async def test_large_and_non_int_integer_limits(limit: Any) -> None:
    assert await async_gather(waits("a"), at_once("b"), limit=limit) == ["a", "b"]
    assert await async_map(waits, ["x", "y"], limit=limit) == ["x", "y"]
    assert [r async for r in async_map(waits, ["x", "y"], limit=limit)] == ["x", "y"]


@pytest.mark.anyio
@pytest.mark.parametrize("limit", [Index(0), -HUGE, MINUS_ENORMOUS_P, 2.0, Fraction(2)])
async def test_bad_limits(limit: Any) -> None:
    with pytest.raises(ValidationError, match="limit must be None or an integer >= 1"):
        await async_gather(coroutine := waits(), limit=limit)
    assert closed(coroutine)
    with pytest.raises(ValidationError, match="limit must be an integer >= 1, got"):
        async_map(waits, [1], limit=limit)


def test_an_enormous_limit_is_shown_without_failing() -> None:
    with pytest.raises(ValidationError, match=r"got <int object> \(int\)"):
        async_map(waits, [1], limit=-ENORMOUS)


# -- flags ------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("flag", ["False", "yes", None, 0, 1, 1.0])
async def test_return_exceptions_must_be_a_bool(flag: Any) -> None:
    with pytest.raises(
        ValidationError, match=r"return_exceptions must be True or False, got"
    ):
        await async_gather(coroutine := waits(), return_exceptions=flag)
    assert closed(coroutine)
    with pytest.raises(
        ValidationError, match=r"return_exceptions must be True or False, got"
    ):
        async_map(waits, [1], limit=1, return_exceptions=flag)


@pytest.mark.parametrize("flag", ["False", None, 1])
def test_debug_must_be_a_bool(flag: Any) -> None:
    with pytest.raises(ValidationError, match=r"debug must be True or False, got"):
        async_run(at_once, debug=flag)
