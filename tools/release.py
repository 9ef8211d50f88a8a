"""The release path: prepare (version, changelog, pins, tag), build, publish.

Run by the nox sessions ``release``, ``build`` and ``publish`` inside their
own environment (``python -m tools.release <command> ...``); each command is
also a function, here (``prepare``) or in ``tools/artifacts.py`` (``build``,
``publish``), tested in ``tools/tests``.

* ``prepare <dist> <major|minor|patch|X.Y.Z>`` bumps the version, assembles
  the news fragments into the changelog (towncrier), and raises the pin on
  ``dist`` in every package that depends on it. A package whose pins change
  is released too, in the same commit, so that no published version number
  ever stands for two different sets of requirements: the meta-package
  always follows a sibling release (installing it must give users the new
  version), another dependent only when the new version falls outside the
  range it declares. Each released package gets its tag
  ``<dist>-v<version>``. Rerun at the tagged commit, it does nothing.
* ``build [<dist> ...]`` checks out each package's ``<dist>-v<version>`` tag
  into a fresh clone and builds the wheel and sdist from that clone only,
  then runs ``twine check --strict``.
* ``publish <index-url> [<dist> ...]`` uploads exactly the expected files,
  skips a file the index already holds with the same content, and refuses
  (before uploading anything) when the index holds a file of the same name
  with different content.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

from tools import changelog
from tools.workspace import (
    META_PACKAGE,
    ROOT,
    VERSION_RE,
    Package,
    closure,
    load_packages,
    requirement_name,
)

__all__ = [
    "RELEASE_DATE_ENV",
    "ReleaseError",
    "compatible_range",
    "git",
    "log",
    "main",
    "next_version",
    "prepare",
]

#: Set to YYYY-MM-DD to date the changelog explicitly (tests, reruns).
RELEASE_DATE_ENV = "CC_RELEASE_DATE"
_BUMPS = ("major", "minor", "patch")


class ReleaseError(Exception):
    """A release step refused to go on; the message says why and what to do."""


def log(message: str) -> None:
    """Say what the release does, one line at a time."""
    print(f"release: {message}", flush=True)


def git(root: Path, *args: str) -> str:
    """Run git in ``root`` and return its output, stripped."""
    done = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise ReleaseError(f"git {' '.join(args)} failed:\n{done.stderr.strip()}")
    return done.stdout.strip()


def next_version(current: str, bump: str, *, released: bool = True) -> str:
    """Return the version after ``current`` for ``bump``.

    :param bump: ``major``, ``minor``, ``patch`` or an explicit ``X.Y.Z``,
        which must be newer than ``current`` unless ``current`` itself was
        never released (``released=False``: a package's first release).
    :raises ReleaseError: for anything else.
    """
    parts = current.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ReleaseError(f"cannot bump {current!r}: versions here are X.Y.Z")
    major, minor, patch = (int(p) for p in parts)
    if bump in _BUMPS:
        return {
            "major": f"{major + 1}.0.0",
            "minor": f"{major}.{minor + 1}.0",
            "patch": f"{major}.{minor}.{patch + 1}",
        }[bump]
    if not re.fullmatch(r"\d+\.\d+\.\d+", bump):
        raise ReleaseError(f"expected major, minor, patch or X.Y.Z, got {bump!r}")
    wanted = tuple(int(p) for p in bump.split("."))
    if wanted < (major, minor, patch) or (wanted == (major, minor, patch) and released):
        raise ReleaseError(f"{bump} is not newer than the current {current}")
    return bump


def compatible_range(version: str) -> str:
    """Return ``>=version,<next-breaking`` (the next minor while at 0.x)."""
    major, minor, _ = (int(p) for p in version.split("."))
    upper = f"{major + 1}" if major else f"0.{minor + 1}"
    return f">={version},<{upper}"


@dataclass
class _Release:
    """One package released by :func:`prepare`."""

    package: Package
    old: str
    new: str
    reason: str = ""

    @property
    def tag(self) -> str:
        return f"{self.package.tag_prefix}{self.new}"


def _set_version(package: Package, version: str) -> None:
    text = package.about_file.read_text(encoding="utf-8")
    package.about_file.write_text(
        VERSION_RE.sub(f'__version__ = "{version}"', text), encoding="utf-8"
    )


@dataclass(frozen=True)
class _Pin:
    """A requirement line of a dependent that a release moved."""

    extra: str  # "" for a dependency, else the extra that names it
    old: str
    new: str

    def describe(self) -> str:
        """Return the new line, with the extra it belongs to (``... [redis]``)."""
        return f"{self.new} [{self.extra}]" if self.extra else self.new


def _repin(dependent: Package, released: str, version: str) -> list[_Pin]:
    """Raise ``dependent``'s pins on ``released``; return those that moved.

    Every line naming ``released`` moves, a dependency or an extra's
    (``cc-concurrency[redis]`` pins cc-redis): a pin is a pin, and a stale one
    in an extra makes the extra uninstallable with the new release. The
    meta-package always moves to the new version; another dependent only
    when the version falls outside the range it declares.
    """
    pyproject = dependent.path / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    moved: list[_Pin] = []
    for extra, line in dependent.pins(extras=True):
        if requirement_name(line) != released:
            continue
        inside = Requirement(line).specifier.contains(Version(version))
        if inside and dependent.dist != META_PACKAGE:
            continue
        new_line = f"{released}{compatible_range(version)}"
        if line == new_line:
            continue
        text = text.replace(f'"{line}"', f'"{new_line}"')
        moved.append(_Pin(extra, line, new_line))
    if moved:
        pyproject.write_text(text, "utf-8")
    return moved


def _dependent_bump(old_pins: Sequence[str], new_pins: Sequence[str]) -> str:
    """``minor`` when a pin's upper bound moved (a new range), else ``patch``."""
    uppers = [
        sorted(str(s) for s in Requirement(pin).specifier if s.operator == "<")
        for pin in (*old_pins, *new_pins)
    ]
    half = len(old_pins)
    return "patch" if uppers[:half] == uppers[half:] else "minor"


def prepare(root: Path, dist: str, bump: str, *, date: str | None = None) -> list[str]:
    """Release ``dist`` (and each dependent whose pins move); return the tags.

    :raises ReleaseError: on a dirty tree, an unknown package, a bad bump, an
        existing tag or missing news fragments (the tree is left as it was).
    """
    packages = load_packages(root)
    if dist not in packages:
        raise ReleaseError(f"unknown package {dist!r}; choose from {sorted(packages)}")
    current = packages[dist].version
    if f"{dist}-v{current}" in git(root, "tag", "--points-at", "HEAD").split():
        log(f"{dist} {current} is already released at HEAD: nothing to do")
        return []
    dirty = git(root, "status", "--porcelain", "--untracked-files=normal")
    if dirty:
        raise ReleaseError(f"the work tree is not clean (commit or stash):\n{dirty}")
    tags = set(git(root, "tag", "--list").split())
    first = f"{dist}-v{current}" not in tags
    date = date or os.environ.get(RELEASE_DATE_ENV) or datetime.date.today().isoformat()
    releases = [
        _Release(
            packages[dist], current, next_version(current, bump, released=not first)
        )
    ]
    try:
        _cascade(releases, packages, tags)
        for release in releases:
            if release.tag in tags:
                raise ReleaseError(f"tag {release.tag} exists already")
            _set_version(release.package, release.new)
            changelog.assemble(release.package.path, release.new, date)
            dist_name = release.package.dist
            log(f"{dist_name}: {release.old} -> {release.new}{release.reason}")
    except (ReleaseError, changelog.FragmentError) as exc:
        git(root, "checkout", "--", str(root / "packages"))
        git(root, "clean", "-fdq", "--", str(root / "packages"))
        raise ReleaseError(str(exc)) from None
    names = ", ".join(f"{r.package.dist} {r.new}" for r in releases)
    git(root, "add", "--all", str(root / "packages"))
    git(root, "commit", "--quiet", "-m", f"Release {names}")
    for release in releases:
        message = f"{release.package.dist} {release.new}"
        git(root, "tag", "-a", release.tag, "-m", message)
        log(f"tagged {release.tag}")
    return [release.tag for release in releases]


def _cascade(
    releases: list[_Release], packages: dict[str, Package], tags: set[str]
) -> None:
    """Append a release for every dependent whose pins the releases move.

    Packages are visited dependencies first, so a dependent sees every
    release it depends on before its own bump is chosen: ``minor`` when any
    pin moved to a new range, ``patch`` when pins only rose inside theirs. A
    dependent whose current version was never released (no tag) is released
    at that version: its first release.
    """
    released = {releases[0].package.dist: releases[0]}
    for name in closure_order(packages):
        dependent = packages[name]
        if name in released:
            continue
        moved: list[tuple[_Pin, _Release]] = []
        for sibling in dependent.siblings(packages, extras=True):
            if sibling not in released:
                continue
            for pin in _repin(dependent, sibling, released[sibling].new):
                where = f" (extra {pin.extra!r})" if pin.extra else ""
                log(f"{name}: {pin.old} -> {pin.new}{where}")
                moved.append((pin, released[sibling]))
        if not moved:
            continue
        bump = _dependent_bump([m[0].old for m in moved], [m[0].new for m in moved])
        if f"{dependent.tag_prefix}{dependent.version}" not in tags:
            bump = dependent.version
        follow = _Release(
            dependent, dependent.version,
            next_version(dependent.version, bump, released=bump in _BUMPS),
            " (requires " + ", ".join(m[0].describe() for m in moved) + ")",
        )  # fmt: skip
        folder = dependent.path / changelog.FRAGMENTS_DIR
        folder.mkdir(exist_ok=True)
        for pin, cause in moved:
            what = f"The `{pin.extra}` extra requires" if pin.extra else "Requires"
            suffix = f"-{pin.extra}" if pin.extra else ""
            fragment = folder / f"+{cause.package.dist}-{cause.new}{suffix}.changed.md"
            fragment.write_text(
                f"{what} `{pin.new}` ({cause.package.dist} {cause.new}).\n",
                encoding="utf-8",
            )
        released[name] = follow
        releases.append(follow)


def closure_order(packages: dict[str, Package]) -> list[str]:
    """Return every package, each after the siblings it pins (extras included)."""
    order: list[str] = []
    for name in packages:
        for needed in closure(name, packages, extras=True):
            if needed not in order:
                order.append(needed)
    return order


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m tools.release prepare|build|publish ...``."""
    parser = argparse.ArgumentParser(prog="python -m tools.release")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("prepare", help="version, changelog, pins, commit, tag")
    p.add_argument("package")
    p.add_argument("bump", help="major, minor, patch or X.Y.Z")
    b = commands.add_parser("build", help="build from the release tags into dist/")
    b.add_argument("packages", nargs="*")
    u = commands.add_parser("publish", help="upload dist/ to a package index")
    u.add_argument("url", nargs="?", default=os.environ.get("CC_PUBLISH_URL"))
    u.add_argument("packages", nargs="*")
    args = parser.parse_args(argv)
    from tools import artifacts  # build and publish (it imports this module)

    try:
        if args.command == "prepare":
            tags = prepare(ROOT, args.package, args.bump)
            for tag in tags[1:]:
                log(f"{tag.rsplit('-v', 1)[0]} was released with it: its pins moved")
        elif args.command == "build":
            artifacts.build(ROOT, args.packages, ROOT / "dist")
        else:
            if not args.url or "://" not in args.url:
                raise ReleaseError(
                    "usage: nox -s publish -- <index-url> [<package> ...] "
                    "(or set CC_PUBLISH_URL)"
                )
            artifacts.publish(
                ROOT, args.url, args.packages, ROOT / "dist",
                simple_url=os.environ.get("CC_PUBLISH_SIMPLE_URL", ""),
            )  # fmt: skip
    except ReleaseError as exc:
        print(f"release: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
