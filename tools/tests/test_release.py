"""The release steps on a real clone of the repository, with real git and towncrier.

The end-to-end run against a package index is ``nox -s release-e2e``; these
tests pin each rule down on its own.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools import artifacts, release, workspace
from tools.release import ReleaseError


def _git(root: Path, *args: str) -> str:
    return release.git(root, *args)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A clone of the repository's HEAD, with every package released once."""
    root = tmp_path / "repo"
    subprocess.run(
        ["git", "clone", "--quiet", str(workspace.ROOT), str(root)], check=True
    )
    _git(root, "config", "user.name", "test")
    _git(root, "config", "user.email", "test@localhost")
    for dist, package in workspace.load_packages(root).items():
        _git(root, "tag", f"{dist}-v{package.version}")
    return root


def _change(root: Path, dist: str, name: str = "16.fixed.md") -> None:
    folder = root / "packages" / dist / "changelog.d"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text("A change. (#16)\n")
    _git(root, "add", "--all")
    _git(root, "commit", "--quiet", "-m", f"{dist}: change")


@pytest.mark.parametrize(
    ("current", "bump", "expected"),
    [
        ("0.1.0", "patch", "0.1.1"),
        ("0.1.3", "minor", "0.2.0"),
        ("0.9.3", "major", "1.0.0"),
        ("0.1.0", "0.3.0", "0.3.0"),
    ],
)
def test_next_version(current: str, bump: str, expected: str) -> None:
    assert release.next_version(current, bump) == expected


def test_next_version_refuses_what_is_not_newer_unless_never_released() -> None:
    with pytest.raises(ReleaseError, match="not newer"):
        release.next_version("0.2.0", "0.1.9")
    with pytest.raises(ReleaseError, match="not newer"):
        release.next_version("0.2.0", "0.2.0")
    assert release.next_version("0.2.0", "0.2.0", released=False) == "0.2.0"
    with pytest.raises(ReleaseError, match=r"major, minor, patch or X\.Y\.Z"):
        release.next_version("0.2.0", "huge")


def test_compatible_range() -> None:
    assert release.compatible_range("0.1.4") == ">=0.1.4,<0.2"
    assert release.compatible_range("2.3.0") == ">=2.3.0,<3"


def test_a_sibling_release_also_releases_the_meta_package(repo: Path) -> None:
    _change(repo, "cc-queues")
    tags = release.prepare(repo, "cc-queues", "patch", date="2026-01-02")
    assert tags == ["cc-queues-v0.1.1", "cc-concurrency-v0.1.1"]
    packages = workspace.load_packages(repo)
    assert packages["cc-queues"].version == "0.1.1"
    assert packages["cc-concurrency"].version == "0.1.1"
    assert "cc-queues>=0.1.1,<0.2" in packages["cc-concurrency"].requirements
    meta_log = (repo / "packages/cc-concurrency/CHANGELOG.md").read_text()
    assert "## 0.1.1 - 2026-01-02" in meta_log
    assert "Requires `cc-queues>=0.1.1,<0.2` (cc-queues 0.1.1)." in meta_log
    assert _git(repo, "status", "--porcelain") == ""
    assert set(_git(repo, "tag", "--points-at", "HEAD").split()) == set(tags)
    # A rerun at the tag does nothing.
    assert release.prepare(repo, "cc-queues", "patch") == []


def test_a_new_range_releases_every_dependent_whose_pin_moves(repo: Path) -> None:
    _change(repo, "cc-primitives")
    tags = release.prepare(repo, "cc-primitives", "minor", date="2026-01-02")
    packages = workspace.load_packages(repo)
    # Every dependent's range <0.2 excluded 0.2.0: each moves to a new minor,
    # the meta-package last (it pins all of them, cc-redis in its extra).
    assert tags[0] == "cc-primitives-v0.2.0"
    assert tags[-1] == "cc-concurrency-v0.2.0"
    assert sorted(tags) == sorted(
        f"{dist}-v0.2.0"
        for dist, package in packages.items()
        if dist == "cc-primitives" or "cc-primitives" in package.siblings(packages)
    )
    released = {tag.rsplit("-v", 1)[0] for tag in tags}
    for dist, package in packages.items():
        for _, line in package.pins(extras=True):
            if workspace.requirement_name(line) in released:
                assert line.endswith(">=0.2.0,<0.3"), (dist, line)
    # An extra's pin is a pin: cc-concurrency[redis] must install with the
    # cc-redis released alongside, not the 0.1 line that excludes cc-primitives 0.2.
    assert packages["cc-concurrency"].optional["redis"] == ("cc-redis>=0.2.0,<0.3",)
    meta_log = (repo / "packages/cc-concurrency/CHANGELOG.md").read_text()
    assert "The `redis` extra requires `cc-redis>=0.2.0,<0.3` (cc-redis 0.2.0)." in (
        meta_log
    )


def test_a_release_of_a_sibling_named_by_an_extra_moves_the_meta_package(
    repo: Path,
) -> None:
    _change(repo, "cc-redis")
    tags = release.prepare(repo, "cc-redis", "patch", date="2026-01-02")
    assert tags == ["cc-redis-v0.1.1", "cc-concurrency-v0.1.1"]
    packages = workspace.load_packages(repo)
    assert packages["cc-concurrency"].optional["redis"] == ("cc-redis>=0.1.1,<0.2",)
    assert "cc-redis" not in packages["cc-concurrency"].siblings(packages)
    assert _git(repo, "status", "--porcelain") == ""


def test_prepare_refuses_a_dirty_tree_and_missing_notes(repo: Path) -> None:
    _change(repo, "cc-locks")  # a change elsewhere: cc-queues has no notes
    (repo / "stray.txt").write_text("x")
    with pytest.raises(ReleaseError, match="not clean"):
        release.prepare(repo, "cc-queues", "patch")
    (repo / "stray.txt").unlink()
    for fragment in (repo / "packages/cc-queues/changelog.d").glob("*.md"):
        fragment.unlink()
    _git(repo, "commit", "--quiet", "-am", "drop the notes")
    with pytest.raises(ReleaseError, match="no news fragments"):
        release.prepare(repo, "cc-queues", "patch")
    assert _git(repo, "status", "--porcelain") == ""  # nothing half-done
    with pytest.raises(ReleaseError, match="unknown package"):
        release.prepare(repo, "cc-nothing", "patch")


def test_build_refuses_a_version_without_its_tag(repo: Path, tmp_path: Path) -> None:
    _git(repo, "tag", "--delete", "cc-queues-v0.1.0")
    with pytest.raises(ReleaseError, match=r"no release tag cc-queues-v0\.1\.0"):
        artifacts.build(repo, ["cc-queues"], tmp_path / "dist")


class _Index:
    """A PEP 503 simple index served from a folder on 127.0.0.1."""

    def __init__(self, root: Path) -> None:
        self.root = root
        handler = functools.partial(_Quiet, directory=str(root))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def list_file(self, project: str, path: Path, *, with_hash: bool) -> None:
        page = self.root / "simple" / project
        page.mkdir(parents=True, exist_ok=True)
        (self.root / "files").mkdir(exist_ok=True)
        (self.root / "files" / path.name).write_bytes(path.read_bytes())
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        href = f"../../files/{path.name}" + (f"#sha256={digest}" if with_hash else "")
        with (page / "index.html").open("a") as listing:
            listing.write(f'<a href="{href}">{path.name}</a><br>\n')


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def index(tmp_path: Path) -> Iterator[_Index]:
    served = _Index(tmp_path / "index")
    served.root.mkdir()
    thread = threading.Thread(target=served.server.serve_forever)
    thread.start()
    yield served
    served.server.shutdown()
    thread.join()
    served.server.server_close()


def _fake_dist(repo: Path, folder: Path) -> list[Path]:
    folder.mkdir()
    queues = workspace.load_packages(repo)["cc-queues"]
    paths = []
    for name in artifacts.expected_artifacts([queues]):
        (folder / name).write_bytes(f"the content of {name}".encode())
        paths.append(folder / name)
    return paths


@pytest.mark.parametrize("with_hash", [True, False])
def test_publish_skips_the_same_file_and_refuses_another(
    repo: Path, tmp_path: Path, index: _Index, with_hash: bool
) -> None:
    dist = tmp_path / "dist"
    wheel, sdist = _fake_dist(repo, dist)
    index.list_file("cc-queues", wheel, with_hash=with_hash)
    index.list_file("cc-queues", sdist, with_hash=with_hash)
    # Everything is there with the same content: nothing to upload (no twine).
    assert artifacts.publish(repo, index.url, ["cc-queues"], dist) == []
    sdist.write_bytes(b"rebuilt with other content")
    with pytest.raises(ReleaseError, match="different content") as caught:
        artifacts.publish(repo, index.url, ["cc-queues"], dist)
    assert sdist.name in str(caught.value) and wheel.name not in str(caught.value)


def test_publish_refuses_a_dist_folder_that_is_not_exactly_expected(
    repo: Path, tmp_path: Path, index: _Index
) -> None:
    dist = tmp_path / "dist"
    _fake_dist(repo, dist)
    (dist / "cc_queues-0.0.9.tar.gz").write_text("old")
    with pytest.raises(ReleaseError, match=r"unexpected: \['cc_queues-0\.0\.9"):
        artifacts.publish(repo, index.url, ["cc-queues"], dist)


def test_a_dependent_never_released_is_released_at_its_own_version(
    repo: Path,
) -> None:
    _git(repo, "tag", "--delete", "cc-concurrency-v0.1.0")
    _change(repo, "cc-queues")
    tags = release.prepare(repo, "cc-queues", "patch", date="2026-01-02")
    assert tags == ["cc-queues-v0.1.1", "cc-concurrency-v0.1.0"]
