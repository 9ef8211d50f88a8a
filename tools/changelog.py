"""News fragments: what a valid one looks like, and assembling them with towncrier.

Every user-visible change gets one fragment in its package's ``changelog.d/``:
``<issue>.<type>.md``, or ``<issue>.<type>.<n>.md`` (n = 1, 2, ...) for a
second one of the same issue and type, holding one or two sentences of
Markdown for users that end with ``(#<issue>)``. The notes written before
fragments existed are kept as ``pre-<nn>.<type>.md``, in their old order.
The release session assembles a package's fragments into its
``CHANGELOG.md`` with towncrier (configuration: ``tools/towncrier.toml``).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CONFIG",
    "TYPES",
    "Fragment",
    "FragmentError",
    "assemble",
    "check_fragments",
    "fragments",
]

TOOLS = Path(__file__).resolve().parent
CONFIG = TOOLS / "towncrier.toml"
TYPES = ("added", "changed", "removed", "fixed", "security", "performance")
FRAGMENTS_DIR = "changelog.d"
_NAME = re.compile(
    r"^(?P<issue>\d+|pre-\d+)\.(?P<type>[a-z]+)(?:\.(?P<counter>\d+))?\.md$"
)
_IGNORED = frozenset({"README.md", ".gitkeep"})


class FragmentError(ValueError):
    """A news fragment is misnamed or says too little."""


@dataclass(frozen=True)
class Fragment:
    """One news fragment file."""

    path: Path
    issue: str
    type: str
    counter: int

    @classmethod
    def parse(cls, path: Path) -> Fragment:
        """Read a fragment's name; raise :class:`FragmentError` if it is wrong."""
        match = _NAME.match(path.name)
        if match is None or match["type"] not in TYPES:
            raise FragmentError(
                f"{path}: a news fragment is named <issue>.<type>.md or "
                f"<issue>.<type>.<n>.md with type one of {', '.join(TYPES)}"
            )
        return cls(path, match["issue"], match["type"], int(match["counter"] or 0))

    def check_text(self) -> None:
        """Check the text: not empty, and ending with its issue (new fragments)."""
        text = self.path.read_text(encoding="utf-8").strip()
        if not text:
            raise FragmentError(f"{self.path}: the fragment is empty")
        if self.issue.isdigit() and not text.endswith(f"(#{self.issue})"):
            raise FragmentError(
                f"{self.path}: the text must end with (#{self.issue}), got "
                f"...{text[-40:]!r}"
            )


def fragments(package_dir: Path) -> list[Fragment]:
    """Return the fragments waiting in ``package_dir/changelog.d``."""
    folder = package_dir / FRAGMENTS_DIR
    if not folder.is_dir():
        return []
    return [
        Fragment.parse(path)
        for path in sorted(folder.iterdir())
        if path.name not in _IGNORED
    ]


def check_fragments(package_dir: Path) -> list[str]:
    """Every problem with the fragments of one package, one sentence each."""
    problems = []
    folder = package_dir / FRAGMENTS_DIR
    if not folder.is_dir():
        return []
    for path in sorted(folder.iterdir()):
        if path.name in _IGNORED:
            continue
        try:
            Fragment.parse(path).check_text()
        except FragmentError as exc:
            problems.append(str(exc))
    return problems


def assemble(
    package_dir: Path, version: str, date: str, *, towncrier: str = "towncrier"
) -> None:
    """Move the fragments of ``package_dir`` into its CHANGELOG.md.

    :raises FragmentError: when there is no fragment, or one is misnamed.
    """
    found = fragments(package_dir)
    if not found:
        raise FragmentError(
            f"no news fragments in {package_dir / FRAGMENTS_DIR}: write the notes "
            "first (one <issue>.<type>.md per user-visible change)"
        )
    problems = check_fragments(package_dir)
    if problems:
        raise FragmentError("\n".join(problems))
    done = subprocess.run(
        [towncrier, "build", "--yes", "--config", str(CONFIG),
         "--dir", str(package_dir), "--version", version, "--date", date],
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode:
        raise FragmentError(
            f"towncrier failed for {package_dir}:\n{done.stdout}{done.stderr}"
        )
