from __future__ import annotations

import anyio
import pytest

from cc.primitives import current_task_key, task_name

pytestmark = pytest.mark.anyio


async def test_key_is_stable_within_a_task_and_distinct_across_tasks() -> None:
    keys: dict[str, object] = {}

    async def record(name: str) -> None:
        keys[name] = current_task_key()
        await anyio.sleep(0.001)
        assert current_task_key() is keys[name]

    async with anyio.create_task_group() as tg:
        tg.start_soon(record, "a", name="task-a")
        tg.start_soon(record, "b", name="task-b")
    assert keys["a"] is not keys["b"]
    assert "task-a" in task_name(keys["a"])
    assert current_task_key() is not keys["a"]
    hash(current_task_key())


def test_outside_a_task_raises() -> None:
    with pytest.raises(RuntimeError, match="inside an async task"):
        current_task_key()


def test_task_name_of_other_objects() -> None:
    assert task_name(12345) == "task 12345"

    class Named:
        name = "worker-3"

    assert task_name(Named()) == "worker-3"
