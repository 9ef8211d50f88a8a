"""Build release artifacts from release tags, and publish exactly those.

``build`` checks out each package's ``<dist>-v<version>`` tag into a fresh
clone and builds the wheel and sdist from that clone only, then runs
``twine check --strict``. ``publish`` uploads exactly the expected files,
skips a file the index already holds with the same content, and refuses
(before uploading anything) when the index holds a file of the same name
with different content. Both run through ``python -m tools.release``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from tools import index
from tools.release import ReleaseError, git, log
from tools.workspace import Package, load_packages

__all__ = ["artifacts_in", "build", "expected_artifacts", "publish"]


def expected_artifacts(packages: Iterable[Package]) -> list[str]:
    """Return the wheel and sdist names of each package at its current version."""
    names = []
    for package in packages:
        stem = f"{package.dist.replace('-', '_')}-{package.version}"
        names += [f"{stem}-py3-none-any.whl", f"{stem}.tar.gz"]
    return sorted(names)


def artifacts_in(folder: Path) -> list[str]:
    """Return the artifacts in ``folder`` (not uv's ``.gitignore``)."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def _select(root: Path, names: Sequence[str]) -> list[Package]:
    packages = load_packages(root)
    unknown = [n for n in names if n not in packages]
    if unknown:
        raise ReleaseError(
            f"unknown packages {unknown}; choose from {sorted(packages)}"
        )
    return [packages[n] for n in names] if names else list(packages.values())


def build(root: Path, names: Sequence[str], out: Path, *, uv: str = "uv") -> list[str]:
    """Build each package from a clean clone of its release tag into ``out``.

    The version is the one the work tree's ``__about__.py`` names; its tag
    ``<dist>-v<version>`` must exist (``prepare`` makes it). Nothing of the
    work tree, committed or not, reaches an artifact except through the tag.

    :raises ReleaseError: when a tag is missing, or the tag's version differs.
    """
    selected = _select(root, names)
    tags = set(git(root, "tag", "--list").split())
    missing = [f"{p.tag_prefix}{p.version}" for p in selected]
    missing = [tag for tag in missing if tag not in tags]
    if missing:
        raise ReleaseError(
            f"no release tag {', '.join(missing)}: run nox -s release -- <package> "
            "<bump> first (build makes artifacts only from release tags)"
        )
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="cc-build-") as tmp:
        for package in selected:
            tag = f"{package.tag_prefix}{package.version}"
            checkout = Path(tmp) / tag
            git(root, "clone", "--quiet", "--no-local", "--depth", "1",
                "--branch", tag, f"file://{root}", str(checkout))  # fmt: skip
            source = checkout / package.path.relative_to(root)
            tagged = Package.load(source).version
            if tagged != package.version:
                raise ReleaseError(f"tag {tag} holds {package.dist} {tagged}")
            log(f"building {package.dist} {tagged} from a clean checkout of {tag}")
            done = subprocess.run(
                [uv, "build", "--quiet", "--no-progress", "--wheel", "--sdist",
                 "--out-dir", str(out), str(source)],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if done.returncode:
                raise ReleaseError(f"building {tag} failed:\n{done.stderr}")
    built, expected = artifacts_in(out), expected_artifacts(selected)
    if built != expected:
        raise ReleaseError(f"built {built}, expected {expected}")
    checked = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict",
         *(str(out / name) for name in built)],
        check=False,
    )  # fmt: skip
    if checked.returncode:
        raise ReleaseError("twine check --strict failed (see above)")
    log("built: " + ", ".join(built))
    return built


def publish(
    root: Path, url: str, names: Sequence[str], dist: Path, *, simple_url: str = ""
) -> list[str]:
    """Upload what ``dist`` holds for the selected packages; return what was sent.

    :raises ReleaseError: when ``dist`` does not hold exactly the expected
        files, or the index holds a file of the same name with other content
        (nothing is uploaded then).
    """
    selected = _select(root, names)
    present, expected = artifacts_in(dist), expected_artifacts(selected)
    if present != expected:
        raise ReleaseError(
            "refusing to publish: dist/ does not hold exactly the expected files "
            f"(unexpected: {sorted(set(present) - set(expected))}, missing: "
            f"{sorted(set(expected) - set(present))}); run nox -s build"
        )
    simple = simple_url or url.rstrip("/") + "/simple/"
    listed = index.files_on_index(simple, [p.dist for p in selected])
    same, different = index.compare(dist, expected, listed)
    if different:
        raise ReleaseError(
            "refusing to publish: the index already holds a file of the same name "
            "with different content (a published file can never be replaced; "
            "release a new version):\n  " + "\n  ".join(different)
        )
    for name in same:
        log(f"already on the index with the same content, skipped: {name}")
    to_upload = [name for name in expected if name not in same]
    if not to_upload:
        log(f"nothing to upload: all {len(expected)} files are on {url}")
        return []
    uploaded = subprocess.run(
        [sys.executable, "-m", "twine", "upload", "--non-interactive",
         "--disable-progress-bar", "--repository-url", url,
         *(str(dist / name) for name in to_upload)],
        check=False,
    )  # fmt: skip
    if uploaded.returncode:
        raise ReleaseError(f"twine upload to {url} failed (see above)")
    log(f"published {len(to_upload)} files to {url}: {', '.join(to_upload)}")
    return to_upload
