"""Run every Python code block of the documentation, so the docs cannot rot.

Each fenced ``python`` block in ``docs/**/*.md`` is a complete program: it
runs on its own in a fresh interpreter (against the installed cc packages)
and must exit with status 0 within a few seconds. When the block is followed
by a fenced ``text`` block titled ``Output``, the program's standard output
must match it exactly. A block that only includes an example program (a
``--8<--`` snippet block, whose lines between two ``--8<--`` lines name the
files) is checked to name programs of ``examples/``, which
``test_examples.py`` runs. A block that names ``redis://localhost:6379/0``
runs against a redis-server of its own (``CC_REDIS_SERVER`` or the one on
PATH) on a free port of 127.0.0.1, started for the first such block.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"
BLOCK_TIMEOUT = 20.0  # generous: a block is meant to take well under a second
REDIS_URL = "redis://localhost:6379/0"  # what the pages show

_FENCE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<fence>`{3,})(?P<info>[^\n`]*)\n"
    r"(?P<body>.*?)^(?P=indent)(?P=fence)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
_SNIPPET_FENCE = "--8<--"


@dataclass(frozen=True)
class CodeBlock:
    """One fenced block of a Markdown page."""

    page: Path
    line: int
    language: str
    title: str
    code: str
    expected_output: str | None

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(DOCS).as_posix()}:{self.line}"


def _dedent(body: str, indent: str) -> str:
    lines = body.splitlines()
    return "\n".join(
        line[len(indent) :] if line.startswith(indent) else line.lstrip()
        for line in lines
    )


def _parse_info(info: str) -> tuple[str, str]:
    """The language and the ``title="..."`` of a fence's info string."""
    info = info.strip()
    language = info.split(maxsplit=1)[0].lstrip(".{").lower() if info else ""
    title = re.search(r'title="([^"]*)"', info)
    return language, (title.group(1) if title else "")


def collect_blocks(page: Path) -> list[CodeBlock]:
    """The Python blocks of ``page``, each with the output block after it."""
    text = page.read_text(encoding="utf-8")
    fences = list(_FENCE.finditer(text))
    blocks = []
    for index, match in enumerate(fences):
        language, title = _parse_info(match.group("info"))
        if language not in ("python", "py"):
            continue
        expected = None
        if index + 1 < len(fences):
            following = fences[index + 1]
            between = text[match.end() : following.start()]
            next_language, next_title = _parse_info(following.group("info"))
            if (
                next_language == "text"
                and next_title.lower() == "output"
                and not between.strip()
            ):
                expected = _dedent(following.group("body"), following.group("indent"))
        blocks.append(
            CodeBlock(
                page=page,
                line=text.count("\n", 0, match.start()) + 1,
                language=language,
                title=title,
                code=_dedent(match.group("body"), match.group("indent")),
                expected_output=expected,
            )
        )
    return blocks


PAGES = sorted(DOCS.rglob("*.md"))
BLOCKS = [block for page in PAGES for block in collect_blocks(page)]


def _snippet_paths(code: str) -> list[str] | None:
    """The files a snippet block includes, or ``None`` for ordinary code.

    Only the block form is used (``--8<--``, one path a line, ``--8<--``):
    the one-line form ``--8<-- "path"`` happens to be valid Python, which
    the formatter would rewrite.
    """
    lines = [line.strip() for line in code.splitlines() if line.strip()]
    if len(lines) >= 3 and lines[0] == lines[-1] == _SNIPPET_FENCE:
        return lines[1:-1]
    return None


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server without persistence on a free port, for this module."""
    executable = os.environ.get("CC_REDIS_SERVER") or shutil.which("redis-server")
    assert executable, "the Redis examples need redis-server (or CC_REDIS_SERVER)"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path_factory.mktemp("redis"))],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + BLOCK_TIMEOUT
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(BLOCK_TIMEOUT)


def test_the_docs_have_python_examples() -> None:
    assert PAGES, f"no Markdown pages under {DOCS}"
    assert len(BLOCKS) >= 10, "the documentation should be full of examples"


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_code_block_runs(
    block: CodeBlock, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    included = _snippet_paths(block.code)
    if included is not None:
        for path in included:
            assert (ROOT / path).is_file(), f"{block.id} includes missing {path}"
            assert (ROOT / path).parent == EXAMPLES, (
                f"{block.id}: only example programs may be included, not {path}"
            )
        return
    code = block.code
    if REDIS_URL in code:
        code = code.replace(REDIS_URL, request.getfixturevalue("redis_url"))
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    env = {**os.environ, "PYTHONWARNINGS": "error", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)
    completed = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
        check=False,
    )
    assert completed.returncode == 0, (
        f"{block.id} exited with {completed.returncode}\n"
        f"--- stdout ---\n{completed.stdout}\n--- stderr ---\n{completed.stderr}"
    )
    if block.expected_output is not None:
        assert completed.stdout.rstrip() == block.expected_output.rstrip(), (
            f"{block.id}: the output differs from the page's Output block"
        )
