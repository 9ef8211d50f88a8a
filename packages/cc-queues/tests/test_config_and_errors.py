"""QueueStatus, QueueConfig, QueueStateError and argument validation (no event loop)."""

from __future__ import annotations

import math
import pickle

import pytest
from pydantic import ValidationError

from cc.primitives import ConcurrencyError
from cc.queues import BoundedQueue, QueueConfig, QueueStateError, QueueStatus, WorkQueue


def test_status_values_are_strings() -> None:
    assert [s.value for s in QueueStatus] == [
        "idle",
        "processing",
        "stopping",
        "stopped",
    ]
    assert QueueStatus("stopped") is QueueStatus.STOPPED
    assert isinstance(QueueStatus.IDLE, str)


def test_config_defaults() -> None:
    config = QueueConfig()
    assert config.queue_capacity == 100
    assert config.capacity_refresh_time == 1.0
    assert config.concurrency_limit is None


@pytest.mark.parametrize(
    ("kwargs", "field", "rule"),
    [
        ({"queue_capacity": 0}, "queue_capacity", "greater than or equal to 1"),
        ({"queue_capacity": -5}, "queue_capacity", "greater than or equal to 1"),
        ({"queue_capacity": 2.5}, "queue_capacity", "valid integer"),
        ({"queue_capacity": True}, "queue_capacity", "not a bool"),
        ({"capacity_refresh_time": 0}, "capacity_refresh_time", "greater than 0"),
        ({"capacity_refresh_time": -1.0}, "capacity_refresh_time", "greater than 0"),
        ({"capacity_refresh_time": math.inf}, "capacity_refresh_time", "finite"),
        ({"capacity_refresh_time": math.nan}, "capacity_refresh_time", "finite"),
        ({"concurrency_limit": 0}, "concurrency_limit", "greater than or equal to 1"),
        ({"concurrency_limit": False}, "concurrency_limit", "not a bool"),
        ({"queue_capacty": 5}, "queue_capacty", "Extra inputs are not permitted"),
    ],
)
def test_config_rejects_invalid_values_naming_field_and_rule(
    kwargs: dict[str, object], field: str, rule: str
) -> None:
    with pytest.raises(ValidationError) as info:
        QueueConfig(**kwargs)  # type: ignore[arg-type]
    (error,) = info.value.errors()
    assert error["loc"] == (field,)
    message = str(info.value)
    assert field in message
    assert rule in message


def test_config_accepts_valid_values_and_is_frozen() -> None:
    config = QueueConfig(
        queue_capacity=1, capacity_refresh_time=0.25, concurrency_limit=1
    )
    assert (config.queue_capacity, config.concurrency_limit) == (1, 1)
    assert QueueConfig.model_validate({"queue_capacity": "7"}).queue_capacity == 7
    with pytest.raises(ValidationError, match="frozen"):
        config.queue_capacity = 5  # type: ignore[misc]


def test_queue_state_error_is_a_runtime_and_concurrency_error() -> None:
    error = QueueStateError("not running", QueueStatus.STOPPED)
    assert isinstance(error, RuntimeError)
    assert isinstance(error, ConcurrencyError)
    assert error.current_state is QueueStatus.STOPPED
    assert str(error) == "not running"
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is QueueStateError
    assert copy.current_state is QueueStatus.STOPPED
    assert str(copy) == "not running"


@pytest.mark.parametrize("maxsize", [0, -1])
def test_bounded_queue_rejects_maxsize_below_one(maxsize: int) -> None:
    with pytest.raises(ValueError, match="maxsize must be >= 1"):
        BoundedQueue[int](maxsize=maxsize)


@pytest.mark.parametrize("maxsize", [1.5, "3", True, None])
def test_bounded_queue_rejects_maxsize_that_is_not_an_int(maxsize: object) -> None:
    with pytest.raises(TypeError, match="maxsize must be an int"):
        BoundedQueue[int](maxsize=maxsize)  # type: ignore[arg-type]


@pytest.mark.parametrize("timeout", [-0.1, -math.inf, math.nan])
def test_bounded_queue_rejects_negative_or_nan_timeout(timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout must be >= 0"):
        BoundedQueue[int](timeout=timeout)


def test_bounded_queue_rejects_timeout_that_is_not_a_number() -> None:
    with pytest.raises(TypeError, match="timeout must be a number"):
        BoundedQueue[int](timeout="1")  # type: ignore[arg-type]


def test_bounded_queue_accepts_zero_and_infinite_timeouts() -> None:
    BoundedQueue[int](timeout=0)
    BoundedQueue[int](timeout=math.inf)


def test_fresh_bounded_queue_properties() -> None:
    queue = BoundedQueue[int](maxsize=3)
    assert queue.status is QueueStatus.IDLE
    assert queue.size == 0
    assert queue.maxsize == 3
    assert queue.is_empty
    assert not queue.is_full
    assert queue.worker_count == 0
    assert queue.unprocessed == []
    assert queue.metrics == {
        "enqueued": 0,
        "processed": 0,
        "errors": 0,
        "backpressure_events": 0,
        "refused_puts": 0,
        "handed_back": 0,
    }
    assert repr(queue) == "<BoundedQueue idle size=0/3 workers=0>"


def test_metrics_is_a_copy() -> None:
    queue = BoundedQueue[int]()
    queue.metrics["enqueued"] = 99
    assert queue.metrics["enqueued"] == 0


def test_task_done_without_get_raises() -> None:
    queue = BoundedQueue[int]()
    with pytest.raises(ValueError, match="more times than get"):
        queue.task_done()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"maxsize": 0}, ValueError, "maxsize must be >= 1"),
        ({"timeout": -1}, ValueError, "timeout must be >= 0"),
        ({"concurrency_limit": 0}, ValueError, "concurrency_limit must be >= 1"),
        ({"concurrency_limit": 2.0}, TypeError, "concurrency_limit must be an int"),
        ({"rate_limit": 0}, ValueError, "rate_limit must be >= 1"),
        ({"rate_limit": 5, "rate_window": 0}, ValueError, "positive finite"),
        ({"rate_limit": 5, "rate_window": math.inf}, ValueError, "positive finite"),
        ({"rate_limit": 5, "rate_window": -1}, ValueError, "rate_window must be"),
    ],
)
def test_work_queue_rejects_invalid_arguments(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        WorkQueue[int](**kwargs)  # type: ignore[arg-type]


def test_fresh_work_queue_properties() -> None:
    queue = WorkQueue[int](maxsize=7, concurrency_limit=2)
    assert queue.status is QueueStatus.IDLE
    assert (queue.size, queue.maxsize, queue.worker_count) == (0, 7, 0)
    assert queue.is_empty
    assert not queue.is_full
    assert queue.concurrency_limit == 2
    assert queue.rate_limit is None
    assert queue.unprocessed == []
    assert queue.metrics["enqueued"] == 0
    assert repr(queue) == "<WorkQueue idle size=0/7 workers=0 limit=2>"


def test_work_queue_from_config() -> None:
    config = QueueConfig(
        queue_capacity=12, capacity_refresh_time=0.5, concurrency_limit=4
    )
    plain = WorkQueue[int].from_config(config)
    assert (plain.maxsize, plain.concurrency_limit, plain.rate_limit) == (12, 4, None)
    limited = WorkQueue[int].from_config(config, rate_limited=True)
    assert limited.rate_limit == (12, 0.5)
    default = WorkQueue[int].from_config(QueueConfig())
    assert (default.maxsize, default.concurrency_limit) == (100, None)
