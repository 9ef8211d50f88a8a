"""The README's examples run against the installed packages."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CI_RUN = ROOT / ".ci" / "run"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


@pytest.mark.parametrize("index", range(len(_python_blocks())))
def test_readme_python_block_runs(index: int) -> None:
    code = _python_blocks()[index]
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    commands = re.findall(
        r"```\n((?:bash tools/system-packages.sh && )?"
        r"python3 -m pip install [^\n]+)\n```",
        README.read_text(),
    )
    assert len(commands) == 2, commands  # the demo command and the test command
    demo, tests = commands
    assert demo.endswith("nox -s demo")
    assert tests in CI_RUN.read_text().splitlines()
