from __future__ import annotations

from types import SimpleNamespace

import anyio
import pytest

import cc.primitives._tasks
from cc.primitives import current_task_key, task_name
from cc.primitives._tasks import task_info

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


async def test_task_info_is_anyio_s_view_of_the_task() -> None:
    info = task_info(current_task_key())
    assert info == anyio.get_current_task()
    assert info.name == anyio.get_current_task().name
    assert info.parent_id == anyio.get_current_task().parent_id


async def test_task_info_without_anyio_s_backend_class(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Should an anyio release drop its TaskInfo subclasses, cc still answers."""
    expected = anyio.get_current_task()
    without_classes = SimpleNamespace(import_module=lambda name: SimpleNamespace())
    monkeypatch.setattr(cc.primitives._tasks, "importlib", without_classes)
    info = task_info(current_task_key())
    assert type(info) is anyio.TaskInfo
    assert info == expected
    assert info.name == expected.name


async def test_task_info_of_an_anyio_task_id() -> None:
    me = anyio.get_current_task()
    assert task_info(me.id) == me
    with pytest.raises(LookupError, match="no running task"):
        task_info(-1)
