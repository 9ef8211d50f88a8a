"""Bad input to the shared limits: the documented error, naming the argument.

Credentials in a URL never show: not in reprs, errors or log lines.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import pytest

from cc.locks import LockBackendError
from cc.redis import RedisCapacityLimiter, RedisLockBackend, RedisRateLimiter

URL = "redis://127.0.0.1:1/0"
HUGE = 10**400
SECRET = "s3cr%3At-pw"
DECODED = "s3cr:t-pw"


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (0, ValueError, "rate must be from 1 to 1_000_000_000, got 0"),
        (-5, ValueError, "rate must be from 1 to"),
        (HUGE, ValueError, "rate must be from 1 to .*, got an int of 401 digits"),
        (10**9 + 1, ValueError, "rate must be from 1"),
        (2.5, TypeError, "rate must be a whole number \\(int\\), not float"),
        (True, TypeError, "rate must be a whole number \\(int\\), not bool"),
        ("10", TypeError, "rate must be a whole number \\(int\\), not str"),
        (None, TypeError, "rate must be a whole number"),
    ],
)
def test_bad_rates(value: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        RedisRateLimiter(value, 1.0, key="k", url=URL)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (0, ValueError), (-1.0, ValueError), (math.inf, ValueError),
        (math.nan, ValueError), (HUGE, ValueError), (1e8, ValueError),
        ("1", TypeError), (None, TypeError), (False, TypeError),
    ],
)  # fmt: skip
def test_bad_periods(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="period must be a number of seconds"):
        RedisRateLimiter(1, value, key="k", url=URL)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (0, ValueError), (-1, ValueError), (HUGE, ValueError),
        (math.inf, TypeError), (2.0, TypeError), ("3", TypeError), (None, TypeError),
    ],
)  # fmt: skip
def test_bad_token_counts(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="total_tokens must be"):
        RedisCapacityLimiter(value, key="k", url=URL)
    limiter = RedisCapacityLimiter(2, key="k", url=URL)
    with pytest.raises(error, match="total_tokens must be"):
        limiter.total_tokens = value
    assert limiter.total_tokens == 2


@pytest.mark.parametrize("kind", [RedisRateLimiter, RedisCapacityLimiter])
@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"key": ""}, ValueError, "key must be a non-empty str"),
        ({"key": 7}, TypeError, "key must be a str, not int"),
        ({"url": None}, TypeError, "give either url= .* or backend="),
        ({"backend": RedisLockBackend(URL)}, TypeError, "give either url="),
        ({"url": 6379}, TypeError, "url must be a str, not int"),
        ({"url": "http://127.0.0.1/"}, ValueError, "url must be a redis://"),
        ({"url": "127.0.0.1:6379"}, ValueError, "url must be a redis://"),
        ({"url": None, "backend": "redis://x"}, TypeError,
         "backend must be a cc.redis.RedisLockBackend, not str"),
        ({"url": None, "backend": RedisLockBackend(URL), "namespace": "x"},
         TypeError, "namespace: with backend=, these come from the backend"),
        ({"namespace": ""}, ValueError, "namespace must be a non-empty str"),
    ],
)  # fmt: skip
def test_bad_places(
    kind: Any, options: dict[str, Any], error: type[Exception], message: str
) -> None:
    arguments = {"key": "k", "url": URL, **options}
    with pytest.raises(error, match=message):
        kind(*([1, 1.0] if kind is RedisRateLimiter else [1]), **arguments)


@pytest.mark.parametrize("option", ["lease", "renew_interval", "recheck_interval"])
@pytest.mark.parametrize("value", [0, -1.0, HUGE, math.nan])
def test_bad_lease_settings_name_the_setting(option: str, value: Any) -> None:
    with pytest.raises(ValueError, match=option):
        RedisCapacityLimiter(1, key="k", url=URL, **{option: value})


def test_lease_settings_with_a_backend_are_refused() -> None:
    with pytest.raises(TypeError, match="lease: with backend="):
        RedisCapacityLimiter(1, key="k", backend=RedisLockBackend(URL), lease=3.0)


def _assert_no_secret(text: str) -> None:
    assert SECRET not in text and DECODED not in text and "s3cr" not in text, text


@pytest.mark.parametrize(
    "url",
    [
        f"redis://:{SECRET}@127.0.0.1:1/0",
        f"rediss://admin:{SECRET}@127.0.0.1:1/0",
        f"unix:///tmp/none.sock?db=0&password={SECRET}",
        f"http://admin:{SECRET}@127.0.0.1:1/0",  # refused, still not shown
    ],
)
@pytest.mark.anyio
async def test_credentials_never_show(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    try:
        limiters = [
            RedisRateLimiter(1, 1.0, key="k", url=url),
            RedisCapacityLimiter(1, key="k", url=url, lease=1.0),
        ]
    except ValueError as exc:
        texts.append(str(exc))
        assert url.startswith("http")
    else:
        for limiter in limiters:
            texts.append(repr(limiter))
            with pytest.raises(LockBackendError) as caught:
                async with limiter.connect():
                    await limiter.acquire()
            texts += [str(caught.value), str(caught.value.__cause__)]
    _assert_no_secret("\n".join([*texts, caplog.text]))
