"""The release path end to end, against a real package index on 127.0.0.1.

Run by ``nox -s release-e2e`` (``python -m tools.release_e2e``) in an
environment with nox, uv and pypiserver. In a temporary clone of the
repository's HEAD, with a pypiserver on a free port of 127.0.0.1:

1. releases every package at its current version (their first release),
   builds and publishes them all;
2. releases a sibling (cc-queues, patch): the meta-package follows with its
   own version, since its pin moved; reruns the release (a no-op), builds
   the two from their tags, publishes them twice (the second run skips the
   files it finds), and proves that publish refuses a same-named file with
   other content before uploading anything;
3. releases the sibling again, with an uncommitted change in the tree that
   must not reach the artifacts, builds and publishes;
4. installs each of the two releases back into a fresh environment, from
   that index, and checks the installed versions and the meta-package's pins.

The server is stopped and every file removed afterwards, pass or fail. Each
step prints one line; the output of a failed command is printed in full.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from tools.release import compatible_range
from tools.workspace import META_PACKAGE, ROOT, load_packages

SIBLING = "cc-queues"
DATE = "2026-01-02"
_MARKER = "# uncommitted: must never reach an artifact"


class E2EError(AssertionError):
    """The release path did not do what it promises."""


def say(message: str) -> None:
    """One line per step."""
    print(f"release-e2e: {message}", flush=True)


def run(
    *command: str, cwd: Path | None = None, env: dict[str, str] | None = None,
    expect_failure: bool = False,
) -> str:  # fmt: skip
    """Run ``command``; return its output, print it all if it went wrong."""
    done = subprocess.run(
        command, cwd=cwd, env={**os.environ, **(env or {})},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    output = done.stdout + done.stderr
    if bool(done.returncode) != expect_failure:
        print(output, flush=True)
        outcome = "succeeded" if expect_failure else f"failed ({done.returncode})"
        raise E2EError(f"{' '.join(command)} {outcome}")
    return output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def package_index(folder: Path) -> Iterator[str]:
    """Run a pypiserver on 127.0.0.1 that serves and accepts ``folder``."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = folder.parent / "pypiserver.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "pypi-server"), "run",
             "--host", "127.0.0.1", "--port", str(port), "--disable-fallback",
             "-a", ".", "-P", ".", str(folder)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while True:
                if server.poll() is not None:
                    raise E2EError(f"pypiserver exited: {log_path.read_text()}")
                try:
                    with urllib.request.urlopen(f"{url}/simple/", timeout=2):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise E2EError(f"pypiserver did not answer at {url}") from None
                    time.sleep(0.2)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


class Clone:
    """A clone of the repository where the release sessions run."""

    def __init__(self, path: Path, url: str) -> None:
        self.path = path
        self.url = url
        run("git", "clone", "--quiet", str(ROOT), str(path))
        for key, value in (("user.name", "cc release test"),
                           ("user.email", "release-test@localhost")):  # fmt: skip
            run("git", "-C", str(path), "config", key, value)
        self.env = {"TWINE_USERNAME": "cc", "TWINE_PASSWORD": "cc",
                    "CC_RELEASE_DATE": DATE}  # fmt: skip

    def nox(self, *args: str, expect_failure: bool = False) -> str:
        """Run a session of the clone's own noxfile."""
        return run(
            sys.executable, "-m", "nox", "-r", "-f", str(self.path / "noxfile.py"),
            *args, cwd=self.path, env=self.env, expect_failure=expect_failure,
        )  # fmt: skip

    def version(self, dist: str) -> str:
        """Return the version of ``dist`` in the clone."""
        return load_packages(self.path)[dist].version

    def requirement_on(self, dependent: str, dist: str) -> str:
        """Return ``dependent``'s requirement on ``dist``."""
        for line in load_packages(self.path)[dependent].requirements:
            if line.startswith(dist):
                return line
        raise E2EError(f"{dependent} does not require {dist}")

    def tags(self) -> set[str]:
        """Return the clone's tags."""
        return set(run("git", "-C", str(self.path), "tag", "--list").split())

    def commit_change(self, dist: str, fragment: str) -> None:
        """Commit a change to ``dist``: a news fragment, as a real change has."""
        path = self.path / "packages" / dist / "changelog.d" / fragment
        path.parent.mkdir(exist_ok=True)
        path.write_text("A change released by the end-to-end test. (#16)\n")
        run("git", "-C", str(self.path), "add", str(path))
        run("git", "-C", str(self.path), "commit", "--quiet", "-m", f"{dist}: change")

    def release(self, dist: str, bump: str) -> tuple[str, str]:
        """Release ``dist``; check the sibling's and the meta's version and tag."""
        before = self.version(META_PACKAGE)
        self.nox("-s", "release", "--", dist, bump)
        new, meta = self.version(dist), self.version(META_PACKAGE)
        missing = {f"{dist}-v{new}", f"{META_PACKAGE}-v{meta}"} - self.tags()
        if missing:
            raise E2EError(f"tags missing after the release: {missing}")
        if meta == before:
            raise E2EError(f"{META_PACKAGE} pins moved but it stayed at {meta}")
        pin = self.requirement_on(META_PACKAGE, dist)
        if not pin.startswith(f"{dist}>={new},"):
            raise E2EError(f"{META_PACKAGE} requires {pin} after {dist} {new}")
        for name, version in ((dist, new), (META_PACKAGE, meta)):
            text = (self.path / "packages" / name / "CHANGELOG.md").read_text()
            if f"## {version} - {DATE}" not in text:
                raise E2EError(f"{name}'s changelog has no section for {version}")
        say(f"released {dist} {new} and {META_PACKAGE} {meta} (requires {pin})")
        return new, meta

    def build_and_publish(self, *dists: str) -> None:
        """Build ``dists`` from their tags, publish them, publish again (no-op)."""
        self.nox("-s", "build", "--", *dists)
        self.nox("-s", "publish", "--", self.url, *dists)
        rerun = self.nox("-s", "publish", "--", self.url, *dists)
        if "nothing to upload" not in rerun:
            raise E2EError(f"a second publish uploaded again:\n{rerun}")
        say(f"built from the tags and published {', '.join(dists) or 'everything'}")


def check_conflict_refused(clone: Clone, index_dir: Path, dist: str) -> None:
    """Publish must refuse a same-named file with other content, uploading nothing."""
    artifact = next((clone.path / "dist").glob(f"{dist.replace('-', '_')}-*.tar.gz"))
    original = artifact.read_bytes()
    before = sorted(p.name for p in index_dir.iterdir())
    artifact.write_bytes(original + b"\0")
    output = clone.nox(
        "-s", "publish", "--", clone.url, dist, META_PACKAGE, expect_failure=True
    )
    artifact.write_bytes(original)
    if "different content" not in output or artifact.name not in output:
        raise E2EError(f"publish failed, but not for the conflict:\n{output}")
    if sorted(p.name for p in index_dir.iterdir()) != before:
        raise E2EError("publish uploaded files although it refused")
    say(f"publish refused a different {artifact.name} and uploaded nothing")


def install_back(
    work: Path, url: str, requirements: list[str]
) -> tuple[dict[str, str], list[str]]:
    """Install from the index into a fresh env; return versions and meta's pins."""
    venv = work / f"env-{len(list(work.glob('env-*')))}"
    run("uv", "venv", "--quiet", "--python", sys.executable, str(venv))
    python = str(venv / "bin" / "python")
    run(
        "uv", "pip", "install", "--quiet", "--no-progress", "--python", python,
        "--no-cache", "--extra-index-url", f"{url}/simple/",
        "--index-strategy", "first-index", *requirements,
    )  # fmt: skip
    probe = (
        "import json\nfrom importlib import metadata\n"
        "print(json.dumps([{d.metadata['Name']: d.version for d in "
        "metadata.distributions() if d.metadata['Name'].startswith('cc-')}, "
        f"metadata.requires({META_PACKAGE!r})]))"
    )
    versions, requires = json.loads(run(python, "-c", probe))
    run(python, "-m", "cc.concurrency")  # the installation checks itself
    return versions, requires


def main() -> int:
    """Run the whole scenario; exit 1 with the reason if any step fails."""
    with tempfile.TemporaryDirectory(prefix="cc-release-e2e-") as tmp:
        work = Path(tmp)
        index_dir = work / "index"
        index_dir.mkdir()
        try:
            with package_index(index_dir) as url:
                scenario(work, index_dir, url)
        except E2EError as exc:
            print(f"release-e2e: FAILED: {exc}", file=sys.stderr, flush=True)
            return 1
    say("release path proven; server stopped and its files removed")
    return 0


def scenario(work: Path, index_dir: Path, url: str) -> None:
    """Run the four steps of the module docstring."""
    clone = Clone(work / "repo", url)
    packages = load_packages(clone.path)
    # Set-up, not under test: the first release of everything, straight
    # through the release module (the sessions are exercised from step 2 on).
    for dist in packages:
        run(sys.executable, "-m", "tools.release", "prepare", dist,
            clone.version(dist), cwd=clone.path, env=clone.env)  # fmt: skip
    say(f"first release of {', '.join(packages)}")
    clone.build_and_publish()

    clone.commit_change(SIBLING, "16.fixed.md")
    first, meta_first = clone.release(SIBLING, "patch")
    rerun = clone.nox("-s", "release", "--", SIBLING, "patch")
    if "nothing to do" not in rerun or clone.version(SIBLING) != first:
        raise E2EError(f"a second release at the tag did something:\n{rerun}")
    clone.build_and_publish(SIBLING, META_PACKAGE)
    check_conflict_refused(clone, index_dir, SIBLING)

    clone.commit_change(SIBLING, "16.fixed.1.md")
    second, meta_second = clone.release(SIBLING, "patch")
    module = clone.path / "packages" / SIBLING / "src/cc/queues/__init__.py"
    module.write_text(module.read_text() + f"\n{_MARKER}\n")
    clone.build_and_publish(SIBLING, META_PACKAGE)
    wheel = clone.path / "dist" / f"cc_queues-{second}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        if _MARKER in archive.read("cc/queues/__init__.py").decode():
            raise E2EError("an uncommitted change reached the wheel")
    say("an uncommitted change in the tree did not reach the artifacts")

    for meta, sibling in ((meta_first, first), (meta_second, second)):
        found, requires = install_back(
            work, url, [f"{META_PACKAGE}=={meta}", f"{SIBLING}=={sibling}"]
        )
        if found.get(META_PACKAGE) != meta or found.get(SIBLING) != sibling:
            raise E2EError(f"installed {found}, expected {meta} and {sibling}")
        pins = [Requirement(r) for r in requires]
        pins = [r for r in pins if r.name == SIBLING]
        wanted = SpecifierSet(compatible_range(sibling))
        if len(pins) != 1 or pins[0].specifier != wanted:
            raise E2EError(f"{META_PACKAGE} {meta} requires {requires}")
        say(f"installed back {META_PACKAGE} {meta} (requires {pins[0]}) and "
            f"{SIBLING} {sibling}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
