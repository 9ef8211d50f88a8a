"""benchmarks/instructions.py: instruction counts per operation, and their table."""

from __future__ import annotations

import importlib.util
import socket
import sys
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit

import pytest

from tools.workspace import ROOT


def _load() -> ModuleType:
    path = ROOT / "benchmarks" / "instructions.py"
    spec = importlib.util.spec_from_file_location("cc_bench_instructions", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


instructions = _load()


def _rlock_case() -> object:
    return next(c for c in instructions.CASES if c.name == "nested threading.RLock")


def test_one_operation_is_counted_without_the_start_up() -> None:
    # A real callgrind run: two threading.RLock acquisitions and releases
    # cost thousands of instructions; the interpreter's start-up (tens of
    # millions) must be gone from the figure.
    cost = instructions.per_operation(ROOT, _rlock_case(), ops=300)
    assert 1_000 < cost < 20_000


def test_a_missing_valgrind_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(instructions.shutil, "which", lambda _: None)
    with pytest.raises(RuntimeError, match="valgrind is not installed"):
        instructions.count(ROOT, _rlock_case(), 10)


def test_a_failing_case_reports_its_error(tmp_path: Path) -> None:
    # A tree without packages cannot import cc: the run fails, and says so.
    case = next(c for c in instructions.CASES if c.name.startswith("LockManager"))
    with pytest.raises(RuntimeError, match="No module named 'cc"):
        instructions.count(tmp_path, case, 10)


def test_the_table_shows_ratios_and_flags_a_change_over_ten_percent() -> None:
    yard, pair, nested = instructions.CASES[:3]
    counts = {
        ("base", yard): 4_000.0, ("base", pair): 12_000.0, ("base", nested): 20_000,
        ("new", yard): 4_000.0, ("new", pair): 14_000.0, ("new", nested): 20_400,
    }  # fmt: skip
    text = instructions.table(["base", "new"], [yard, pair, nested], counts)
    lines = {c.name: next(t for t in text.splitlines() if c.name in t)
             for c in (yard, pair, nested)}  # fmt: skip
    assert "3.00x" in lines[pair.name] and "3.50x" in lines[pair.name]
    assert "+17% (over 10%)" in lines[pair.name]
    assert "+2%" in lines[nested.name] and "over" not in lines[nested.name]
    assert "1.00x" in lines[yard.name] and "%" not in lines[yard.name]


def _on_redis(cases: list[object]) -> list[object]:
    return [c for c in cases if "on redis" in c.group]  # type: ignore[attr-defined]


def test_the_cases_on_redis_get_a_server_of_their_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(instructions.REDIS_URL, raising=False)
    cases = _on_redis(instructions.CASES)
    assert len(cases) == 4  # redis-py's Lock and a manager, threads and asyncio
    with instructions._redis_server(cases) as kept:
        assert kept == cases
        where = urlsplit(instructions.os.environ[instructions.REDIS_URL])
        address = (where.hostname, where.port)
        with socket.create_connection(address, 5) as sock:
            sock.sendall(b"PING\r\n")
            assert sock.recv(16).startswith(b"+PONG")
    with pytest.raises(ConnectionRefusedError):  # stopped with the counts
        socket.create_connection(address, 5).close()


def test_without_redis_server_the_cases_on_redis_are_left_out(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    redis = instructions._bench("locks_redis")
    monkeypatch.setattr(redis, "_start_server", lambda directory: None)
    with instructions._redis_server(list(instructions.CASES)) as kept:
        assert not _on_redis(kept) and _rlock_case() in kept
    assert "no redis-server" in capsys.readouterr().out
    plain = [_rlock_case()]  # nothing on Redis: no server started
    with instructions._redis_server(plain) as kept:
        assert kept is plain
