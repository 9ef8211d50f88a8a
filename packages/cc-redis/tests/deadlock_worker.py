"""A separate OS process for the deadlock tests across processes.

Usage: ``python deadlock_worker.py SCENARIO API SETTINGS`` where API is
``threads`` (LockManager), ``asyncio`` or ``trio`` (AsyncLockManager) and
SETTINGS a JSON object: ``url``, ``namespace``, ``policy``, ``hierarchy``,
``first``, ``second``, ``timeout``, ``recheck`` and optionally ``lease``
(30 s by default: waits last a lease, so a stalled test machine does not
make one lapse).

* ``cycle``: take ``first``, print ``holding``, wait for a line on stdin,
  print ``asking``, then take ``second`` (holding ``first``) within
  ``timeout`` and let both go.
* ``order``: take ``first``, then ``second`` while holding it (locks of
  learned order). With ``linger``, then print ``taken``, wait for a line on
  stdin and report what ``detect_potential_deadlocks()`` says once it names
  another process (or after ``timeout``).

The last line printed is a JSON object: ``outcome`` (``acquired``, or the
name of the error raised), ``message``, ``warnings`` (what cc logged at
WARNING or above), ``reports`` (``detect_potential_deadlocks()``), ``pid``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from typing import Any

import anyio
import anyio.to_thread

from cc.locks import AsyncLockManager, LockManager
from cc.redis import RedisLockBackend


class Recorder(logging.Handler):
    """Keeps every message cc logs at WARNING or above."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def say(text: str) -> None:
    print(text, flush=True)


def backend(settings: dict[str, Any]) -> RedisLockBackend:
    return RedisLockBackend(
        settings["url"], namespace=settings["namespace"],
        lease=settings.get("lease", 30.0), recheck_interval=settings["recheck"],
    )  # fmt: skip


def names_another_process(reports: list[str]) -> bool:
    pids = {int(pid) for r in reports for pid in re.findall(r"pid (\d+) on", r)}
    return bool(pids - {os.getpid()})


def run_threads(
    scenario: str, settings: dict[str, Any], result: dict[str, Any]
) -> None:
    manager = LockManager(
        settings["hierarchy"], policy=settings["policy"], backend=backend(settings)
    )
    with manager:
        try:
            with manager.acquire(settings["first"]):
                if scenario == "cycle":
                    say("holding")
                    sys.stdin.readline()
                    say("asking")
                with manager.acquire(settings["second"], timeout=settings["timeout"]):
                    result["outcome"] = "acquired"
            if scenario == "order" and settings.get("linger"):
                say("taken")
                sys.stdin.readline()
                deadline = time.monotonic() + settings["timeout"]
                reports = manager.detect_potential_deadlocks()
                while (
                    not names_another_process(reports) and time.monotonic() < deadline
                ):
                    time.sleep(0.05)
                    reports = manager.detect_potential_deadlocks()
        except Exception as exc:
            result.update(outcome=type(exc).__name__, message=str(exc))
        result["reports"] = manager.detect_potential_deadlocks()


async def run_tasks(
    scenario: str, settings: dict[str, Any], result: dict[str, Any]
) -> None:
    manager = AsyncLockManager(
        settings["hierarchy"], policy=settings["policy"], backend=backend(settings)
    )
    async with manager:
        try:
            async with manager.acquire(settings["first"]):
                if scenario == "cycle":
                    say("holding")
                    await anyio.to_thread.run_sync(sys.stdin.readline)
                    say("asking")
                async with manager.acquire(
                    settings["second"], timeout=settings["timeout"]
                ):
                    result["outcome"] = "acquired"
            if scenario == "order" and settings.get("linger"):
                say("taken")
                await anyio.to_thread.run_sync(sys.stdin.readline)
                with anyio.move_on_after(settings["timeout"]):
                    while not names_another_process(  # noqa: ASYNC110 (the store)
                        await manager.detect_potential_deadlocks()
                    ):
                        await anyio.sleep(0.05)
        except Exception as exc:
            result.update(outcome=type(exc).__name__, message=str(exc))
        result["reports"] = await manager.detect_potential_deadlocks()


def main() -> None:
    scenario, api, settings_text = sys.argv[1:]
    settings = json.loads(settings_text)
    recorder = Recorder()
    logging.getLogger("cc").addHandler(recorder)
    result: dict[str, Any] = {"outcome": None, "message": "", "pid": os.getpid()}
    if api == "threads":
        run_threads(scenario, settings, result)
    else:
        anyio.run(run_tasks, scenario, settings, result, backend=api)
    result["warnings"] = recorder.messages
    say(json.dumps(result))


if __name__ == "__main__":
    main()
