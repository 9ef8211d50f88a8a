from __future__ import annotations

import os
import sys
import warnings
from types import SimpleNamespace

import anyio
import pytest

import cc.primitives._backend
from cc.primitives import current_task_key, task_name
from cc.primitives._backend import task_info

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
    monkeypatch.setattr(cc.primitives._backend, "importlib", without_classes)
    info = task_info(current_task_key())
    assert type(info) is anyio.TaskInfo
    assert info == expected
    assert info.name == expected.name


async def test_task_info_of_an_anyio_task_id() -> None:
    me = anyio.get_current_task()
    assert task_info(me.id) == me
    with pytest.raises(LookupError, match="no running task"):
        task_info(-1)


def test_each_thread_finds_its_backend_again_when_it_changes() -> None:
    """One thread runs asyncio, then trio, then asyncio again: the key is the
    running backend's task each time (a stale way of asking is replaced)."""
    import asyncio

    import trio

    async def on_asyncio() -> bool:
        return current_task_key() is asyncio.current_task()

    async def on_trio() -> bool:
        return current_task_key() is trio.lowlevel.current_task()

    assert anyio.run(on_asyncio)
    assert anyio.run(on_trio, backend="trio")
    assert anyio.run(on_asyncio)
    assert anyio.run(on_asyncio, backend_options={"use_uvloop": True})
    assert anyio.run(on_trio, backend="trio")


def test_a_forked_child_finds_its_backend_afresh() -> None:
    async def key_then_fork() -> int:
        current_task_key()  # this thread now remembers how to ask
        with warnings.catch_warnings():  # "multi-threaded": the child only exits
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child: nothing remembered from the parent
            os._exit(
                0 if "fetch" not in vars(cc.primitives._backend._per_thread) else 1
            )
        return os.waitpid(pid, 0)[1]  # noqa: ASYNC222 (the child exits at once)

    assert anyio.run(key_then_fork) == 0


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_trio_without_its_private_run_context_uses_the_public_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import trio

    monkeypatch.setitem(sys.modules, "trio._core._run", SimpleNamespace())
    monkeypatch.delattr(cc.primitives._backend._per_thread, "fetch")
    assert current_task_key() is trio.lowlevel.current_task()
    assert cc.primitives._backend._per_thread.fetch is trio.lowlevel.current_task
    monkeypatch.undo()
    del cc.primitives._backend._per_thread.fetch  # find the fast one again
    assert current_task_key() is trio.lowlevel.current_task()
