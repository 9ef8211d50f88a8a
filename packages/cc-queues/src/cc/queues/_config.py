"""Validated configuration from which a :class:`~cc.queues.WorkQueue` is built."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["QueueConfig"]


class QueueConfig(BaseModel):
    """The settings of a work queue, validated when the object is created.

    Pass it to :meth:`WorkQueue.from_config <cc.queues.WorkQueue.from_config>`:
    ``queue_capacity`` becomes the queue's maximum size, ``concurrency_limit``
    its worker count, and ``capacity_refresh_time`` the window of the optional
    start-rate limit (at most ``queue_capacity`` items started in any window of
    that many seconds) that ``from_config(..., rate_limited=True)`` switches on.

    The model is frozen (a configuration is a value) and refuses unknown
    fields, so a misspelt setting fails instead of being silently ignored.
    Invalid values raise :class:`pydantic.ValidationError`, whose message
    names the field and the rule it broke.

    :ivar queue_capacity: maximum number of queued items, at least 1
        (default 100)
    :ivar capacity_refresh_time: length in seconds of the rate-limit window,
        a positive finite number (default 1.0)
    :ivar concurrency_limit: maximum number of items processed at once, at
        least 1, or ``None`` for the default of one worker (default ``None``)

    >>> from cc.queues import QueueConfig
    >>> config = QueueConfig(queue_capacity=200, concurrency_limit=10)
    >>> config.queue_capacity, config.capacity_refresh_time, config.concurrency_limit
    (200, 1.0, 10)
    >>> QueueConfig(queue_capacity=0)
    Traceback (most recent call last):
      ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for QueueConfig
    queue_capacity
      Input should be greater than or equal to 1 ...
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    queue_capacity: int = Field(default=100, ge=1)
    capacity_refresh_time: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    concurrency_limit: int | None = Field(default=None, ge=1)

    @field_validator("queue_capacity", "concurrency_limit", mode="before")
    @classmethod
    def _refuse_bool(cls, value: object) -> object:
        # pydantic's lax mode reads True as 1; a flag here is always a mistake.
        if isinstance(value, bool):
            raise ValueError("must be an integer, not a bool")
        return value
