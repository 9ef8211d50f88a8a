"""``python -m cc.concurrency`` in real environments, run as a real process.

Each environment is a fresh virtual environment (built with uv) into which
the wheels of this repository's five distributions are installed; then one
is uninstalled, replaced by a wheel of another version, or broken by
uninstalling a dependency of its own. The command must name each problem
with the command that repairs it, exit with status 1 and print no
traceback; ``import cc.concurrency`` must keep working there, and using a
name it could not import must say why.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from cc.concurrency._doctor import _range

PACKAGES = Path(__file__).resolve().parents[2]
DISTRIBUTIONS = [
    "cc-primitives",
    "cc-core-helpers",
    "cc-queues",
    "cc-locks",
    "cc-concurrency",
]
TIMEOUT = 300


def _uv() -> str:
    from uv import find_uv_bin  # a test requirement of this package

    return str(find_uv_bin())


def _run(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    return subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=check,
        env=env,
    )


def _required(name: str) -> str:
    """The range this cc-concurrency needs for ``name``, e.g. ``>=0.1.0,<0.2``."""
    for line in metadata.requires("cc-concurrency") or []:
        requirement = Requirement(line)
        if requirement.name == name:
            return _range(requirement)
    raise AssertionError(f"cc-concurrency does not require {name}")


@dataclass
class Env:
    """A virtual environment and how to run things in it."""

    root: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return _run(self.python, *args, check=False)

    def self_check(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run("-m", "cc.concurrency", *args)

    def uv_pip(self, *args: str | Path) -> None:
        _run(_uv(), "pip", *args, "--python", self.python)


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A wheel of each distribution, built once from this checkout."""
    out = tmp_path_factory.mktemp("wheels")
    built = {}
    for name in DISTRIBUTIONS:
        _run(_uv(), "build", "--wheel", "--out-dir", out / name, PACKAGES / name)
        (wheel,) = (out / name).glob("*.whl")
        built[name] = wheel
    return built


MakeEnv = Callable[[str], Env]


@pytest.fixture(scope="module")
def make_env(
    wheels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> MakeEnv:
    """Make a fresh environment with every distribution installed from its wheel."""

    def make(label: str) -> Env:
        env = Env(tmp_path_factory.mktemp(label) / "venv")
        _run(_uv(), "venv", "--python", sys.executable, env.root)
        env.uv_pip("install", *wheels.values())
        return env

    return make


def _no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_a_complete_installation_passes(make_env: MakeEnv) -> None:
    env = make_env("complete")
    proc = env.self_check()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in DISTRIBUTIONS[:-1]:
        assert re.search(
            rf"{name} +\S+ +\(needs {re.escape(_required(name))}\)  ok", proc.stdout
        )
    assert proc.stderr == ""
    # The console script is the same command.
    script = env.root / "bin" / "cc-concurrency"
    console = _run(script, check=False)
    assert console.returncode == 0
    assert console.stdout == proc.stdout


def test_help_version_and_a_usage_error(make_env: MakeEnv) -> None:
    env = make_env("cli")
    helped = env.self_check("--help")
    assert helped.returncode == 0
    assert helped.stdout.startswith("usage: python -m cc.concurrency")
    assert "--version" in helped.stdout
    version = env.self_check("--version")
    assert version.returncode == 0
    assert (
        version.stdout.strip() == f"cc-concurrency {metadata.version('cc-concurrency')}"
    )
    wrong = env.self_check("--frobnicate")
    assert wrong.returncode == 2
    assert "usage: python -m cc.concurrency" in wrong.stderr
    assert "unrecognized arguments: --frobnicate" in wrong.stderr
    assert wrong.stdout == ""
    _no_traceback(wrong)


def test_an_uninstalled_distribution_is_named_with_its_install_command(
    make_env: MakeEnv,
) -> None:
    env = make_env("missing")
    env.uv_pip("uninstall", "cc-queues")
    proc = env.self_check()
    assert proc.returncode == 1
    _no_traceback(proc)
    required = _required("cc-queues")
    assert re.search(
        rf"cc-queues +missing +\(needs {re.escape(required)}\)  MISSING", proc.stdout
    )
    assert "cc-queues is not installed (cc-concurrency" in proc.stderr
    assert f'fix: pip install "cc-queues{required}"' in proc.stderr
    # The other distributions are still reported as fine.
    assert re.search(r"cc-locks +\S+ +\(needs [^)]+\)  ok", proc.stdout)

    # cc.concurrency itself still imports; what it could not import says why.
    works = env.run(
        "-c", "import cc.concurrency; from cc.concurrency import Lock, async_gather"
    )
    assert works.returncode == 0, works.stderr
    fails = env.run("-c", "from cc.concurrency import WorkQueue")
    assert fails.returncode == 1
    assert "ImportError: cc.concurrency.WorkQueue is not available" in fails.stderr
    assert (
        "cc-queues (ModuleNotFoundError: No module named 'cc.queues')" in fails.stderr
    )
    assert "python -m cc.concurrency" in fails.stderr
    absent = env.run(
        "-c", "import cc.concurrency; print(hasattr(cc.concurrency, 'nope'))"
    )
    assert absent.stdout.strip() == "False"


def test_a_mismatched_version_is_named_with_its_install_command(
    make_env: MakeEnv, tmp_path: Path
) -> None:
    # A real wheel of cc-locks at a version outside the range.
    source = tmp_path / "cc-locks"
    shutil.copytree(PACKAGES / "cc-locks", source, ignore=shutil.ignore_patterns(".*"))
    about = source / "src" / "cc" / "locks" / "__about__.py"
    text = re.sub(r'__version__ = "[^"]+"', '__version__ = "9.0.0"', about.read_text())
    assert '"9.0.0"' in text
    about.write_text(text)
    _run(_uv(), "build", "--wheel", "--out-dir", tmp_path / "dist", source)
    (wheel,) = (tmp_path / "dist").glob("*.whl")

    env = make_env("mismatch")
    env.uv_pip("install", "--no-deps", "--reinstall", wheel)
    proc = env.self_check()
    assert proc.returncode == 1
    _no_traceback(proc)
    required = _required("cc-locks")
    assert re.search(r"cc-locks +9\.0\.0 +\(needs [^)]+\)  MISMATCH", proc.stdout)
    assert "cc-locks 9.0.0 is installed, but cc-concurrency" in proc.stderr
    assert f"needs cc-locks{required}" in proc.stderr
    assert f'fix: pip install "cc-locks{required}"' in proc.stderr


def test_a_distribution_that_cannot_be_imported_is_named(make_env: MakeEnv) -> None:
    env = make_env("broken")
    env.uv_pip("uninstall", "pydantic")  # cc-queues needs it
    proc = env.self_check()
    assert proc.returncode == 1
    _no_traceback(proc)
    assert re.search(r"cc-queues +\S+ +\(needs [^)]+\)  BROKEN", proc.stdout)
    assert "cc.queues cannot be imported: ModuleNotFoundError" in proc.stderr
    assert 'fix: pip install --force-reinstall "cc-queues' in proc.stderr
