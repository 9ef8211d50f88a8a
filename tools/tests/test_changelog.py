"""News fragments: every package's are well named, and towncrier assembles them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tools import changelog, workspace

PACKAGES = workspace.load_packages()


@pytest.mark.parametrize("dist", sorted(PACKAGES))
def test_every_fragment_of_the_repository_is_valid(dist: str) -> None:
    assert changelog.check_fragments(PACKAGES[dist].path) == []


@pytest.mark.parametrize(
    "name",
    ["12", "12.fixed", "12.bugfix.md", "12.fixed.txt", "x12.fixed.md", "12.fixed.a.md"],
)
def test_a_misnamed_fragment_is_refused_by_name(tmp_path: Path, name: str) -> None:
    with pytest.raises(changelog.FragmentError, match=r"<issue>\.<type>\.md"):
        changelog.Fragment.parse(tmp_path / name)


def test_a_fragment_must_end_with_its_issue(tmp_path: Path) -> None:
    path = tmp_path / "12.fixed.md"
    path.write_text("Fixed a thing. (#13)\n")
    with pytest.raises(changelog.FragmentError, match=r"must end with \(#12\)"):
        changelog.Fragment.parse(path).check_text()
    path.write_text("")
    with pytest.raises(changelog.FragmentError, match="empty"):
        changelog.Fragment.parse(path).check_text()


def _package(tmp_path: Path) -> Path:
    """A package folder where the shared config finds ../../tools/ (as in the repo)."""
    package = tmp_path / "packages" / "cc-demo"
    (package / "changelog.d").mkdir(parents=True)
    (tmp_path / "tools").mkdir()
    for name in ("towncrier.toml", "changelog-template.md.jinja"):
        shutil.copy(changelog.TOOLS / name, tmp_path / "tools" / name)
    (package / "CHANGELOG.md").write_text(
        "# Changelog of cc-demo\n\nIntro.\n\n<!-- towncrier release notes start -->\n"
        "\n## 0.1.0 - 2025-01-01\n\n### Added\n\n- The first thing.\n"
    )
    return package


def test_towncrier_assembles_counters_types_and_old_notes(tmp_path: Path) -> None:
    package = _package(tmp_path)
    notes = {
        "12.fixed.md": "First fix, which is long\nand goes on. (#12)",
        "12.fixed.1.md": "Second fix of the same issue. (#12)",
        "12.fixed.2.md": "Third fix of the same issue. (#12)",
        "7.added.md": "A feature with `code`. (#7)",
        "16.performance.md": "Faster. (#16)",
        "pre-01.added.md": "An old note, written before fragments.",
        "pre-02.added.md": "Another old note.",
    }
    for name, text in notes.items():
        (package / "changelog.d" / name).write_text(text + "\n")
    config = tmp_path / "tools" / "towncrier.toml"
    done = subprocess.run(
        ["towncrier", "build", "--yes", "--config", str(config), "--dir",
         str(package), "--version", "0.2.0", "--date", "2026-01-02"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    text = (package / "CHANGELOG.md").read_text()
    release = text.split("<!-- towncrier release notes start -->\n", 1)[1]
    assert release.startswith("\n## 0.2.0 - 2026-01-02\n\n### Added\n\n")
    # Every note is there once, as one bullet; the old ones keep their order
    # and come first; issue fragments carry their own reference, no other.
    for body in notes.values():
        first_line = body.splitlines()[0]
        assert release.count(f"- {first_line}") == 1, first_line
    assert release.index("An old note") < release.index("Another old note")
    assert release.index("Another old note") < release.index("A feature")
    assert "  and goes on. (#12)\n" in release
    headings = re.findall(r"^### (\w+)$", release, flags=re.MULTILINE)
    assert headings == ["Added", "Fixed", "Performance", "Added"]
    assert "(#12) (#12)" not in release and "[#12]" not in release
    assert release.endswith(
        "## 0.1.0 - 2025-01-01\n\n### Added\n\n- The first thing.\n"
    )
    assert list((package / "changelog.d").iterdir()) == []


def test_assemble_refuses_a_package_without_fragments(tmp_path: Path) -> None:
    package = _package(tmp_path)
    with pytest.raises(changelog.FragmentError, match="no news fragments"):
        changelog.assemble(package, "0.2.0", "2026-01-02")
    (package / "changelog.d" / "12.fixes.md").write_text("Wrong type. (#12)\n")
    with pytest.raises(changelog.FragmentError, match="type one of"):
        changelog.assemble(package, "0.2.0", "2026-01-02")
