"""What the tooling knows about the monorepo: its packages and their needs.

Everything here is read from the repository's files (each package's
``pyproject.toml``, ``__about__.py`` and ``tools/system-packages.txt``), so a
new package under ``packages/`` needs no change to the noxfile or to the
release tools. A package's test needs are declared in its own pyproject::

    [tool.cc.tests]
    programs = ["redis-server"]   # executables, exposed to tests as CC_REDIS_SERVER
    extras = ["redis"]            # extras of this package installed for its tests
    requirements = []             # further test-only requirements

The noxfile loads this module by path; the release tools import it. It uses
the standard library only (``tomli`` on Python 3.10, which nox depends on).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - nox depends on tomli there
    import tomli as tomllib

__all__ = [
    "META_PACKAGE",
    "ROOT",
    "Package",
    "TestNeeds",
    "WorkspaceError",
    "closure",
    "debian_packages",
    "load_packages",
    "program_variable",
    "requirement_name",
]

ROOT = Path(__file__).resolve().parents[1]
#: The distribution that installs and re-exports the others.
META_PACKAGE = "cc-concurrency"
#: Where ``tools/system-packages.sh`` and the sessions learn which Debian
#: package provides an executable.
SYSTEM_PACKAGES_FILE = Path(__file__).resolve().with_name("system-packages.txt")
VERSION_RE = re.compile(r'^__version__ = "(?P<version>[^"]+)"$', re.MULTILINE)
_TEST_NEEDS_KEYS = frozenset({"programs", "extras", "requirements"})


class WorkspaceError(Exception):
    """A package's files do not say what the tooling needs, or say it wrongly."""


def requirement_name(requirement: str) -> str:
    """Return the distribution name of a PEP 508 requirement string."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if match is None:
        raise WorkspaceError(f"not a requirement: {requirement!r}")
    return match.group(1).lower().replace("_", "-")


def program_variable(program: str) -> str:
    """Return the environment variable that names ``program`` to the tests."""
    return "CC_" + re.sub(r"[^A-Za-z0-9]", "_", program).upper()


@dataclass(frozen=True)
class TestNeeds:
    """What a package's own tests need beyond the package ([tool.cc.tests])."""

    programs: tuple[str, ...] = ()
    extras: tuple[str, ...] = ()
    requirements: tuple[str, ...] = ()

    @classmethod
    def from_table(cls, table: Any, where: Path) -> TestNeeds:
        """Validate a ``[tool.cc.tests]`` table read from ``where``."""
        if not isinstance(table, dict):
            raise WorkspaceError(f"{where}: [tool.cc.tests] must be a table")
        unknown = sorted(set(table) - _TEST_NEEDS_KEYS)
        if unknown:
            raise WorkspaceError(
                f"{where}: unknown keys {unknown} in [tool.cc.tests]; allowed: "
                f"{sorted(_TEST_NEEDS_KEYS)}"
            )
        values = {}
        for key in _TEST_NEEDS_KEYS:
            value = table.get(key, [])
            if not isinstance(value, list) or not all(
                isinstance(item, str) and item for item in value
            ):
                raise WorkspaceError(
                    f"{where}: [tool.cc.tests] {key} must be a list of non-empty "
                    f"strings, got {value!r}"
                )
            values[key] = tuple(value)
        return cls(**values)


@dataclass(frozen=True)
class Package:
    """One distribution under ``packages/``."""

    path: Path
    dist: str
    module: str
    requirements: tuple[str, ...]
    optional: dict[str, tuple[str, ...]] = field(default_factory=dict)
    test_needs: TestNeeds = TestNeeds()

    @classmethod
    def load(cls, path: Path) -> Package:
        """Read the package in the folder ``path``."""
        pyproject = path / "pyproject.toml"
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        project = data["project"]
        source = path / "src" / "cc"
        modules = (
            sorted(p.name for p in source.iterdir() if p.is_dir())
            if (source.is_dir())
            else []
        )
        modules = [m for m in modules if not m.startswith((".", "_"))]
        if len(modules) != 1:
            raise WorkspaceError(
                f"{project['name']} must ship exactly one cc.<name> module under "
                f"{source}, found {modules}"
            )
        tests = data.get("tool", {}).get("cc", {}).get("tests", {})
        return cls(
            path=path,
            dist=project["name"],
            module=f"cc.{modules[0]}",
            requirements=tuple(project.get("dependencies", [])),
            optional={
                name: tuple(reqs)
                for name, reqs in project.get("optional-dependencies", {}).items()
            },
            test_needs=TestNeeds.from_table(tests, pyproject),
        )

    @property
    def about_file(self) -> Path:
        """The file that holds ``__version__``."""
        return self.path / "src" / Path(*self.module.split(".")) / "__about__.py"

    @property
    def version(self) -> str:
        """The version in :attr:`about_file`."""
        match = VERSION_RE.search(self.about_file.read_text(encoding="utf-8"))
        if match is None:
            raise WorkspaceError(f'no __version__ = "..." in {self.about_file}')
        return match["version"]

    @property
    def tag_prefix(self) -> str:
        """Tags of this package's releases are ``<dist>-v<version>``."""
        return f"{self.dist}-v"

    def pins(self, *, extras: bool = False) -> list[tuple[str, str]]:
        """Return ``(extra, requirement)`` for each requirement line.

        ``extra`` is ``""`` for a dependency; with ``extras=True`` the lines
        of every ``[project.optional-dependencies]`` extra follow, named.
        """
        lines = [("", line) for line in self.requirements]
        if extras:
            lines += [
                (extra, line)
                for extra, requirements in sorted(self.optional.items())
                for line in requirements
            ]
        return lines

    def siblings(
        self, names: set[str] | dict[str, Package], *, extras: bool = False
    ) -> list[str]:
        """Return the workspace distributions among this package's dependencies.

        With ``extras=True``, also those that an extra names
        (``cc-concurrency[redis]``: cc-redis), once each: what a release of
        the package pins, as opposed to what installing it brings.
        """
        found: list[str] = []
        for _, line in self.pins(extras=extras):
            name = requirement_name(line)
            if name in names and name not in found:
                found.append(name)
        return found

    def test_extras_valid(self) -> None:
        """Check that every test extra is an extra this package declares."""
        unknown = sorted(set(self.test_needs.extras) - set(self.optional))
        if unknown:
            raise WorkspaceError(
                f"{self.dist}: [tool.cc.tests] extras {unknown} are not in "
                f"[project.optional-dependencies] ({sorted(self.optional)})"
            )


def load_packages(root: Path = ROOT) -> dict[str, Package]:
    """Every package under ``root/packages``, by distribution name, sorted."""
    found = [
        Package.load(path)
        for path in sorted((root / "packages").iterdir())
        if (path / "pyproject.toml").is_file()
    ]
    for package in found:
        package.test_extras_valid()
    return {package.dist: package for package in sorted(found, key=lambda p: p.dist)}


def closure(
    dist: str, packages: dict[str, Package], *, extras: bool = False
) -> list[str]:
    """``dist`` and every sibling it needs, dependencies first.

    With ``extras=True``, siblings named by extras count as needed too.
    """
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            raise WorkspaceError(f"dependency cycle: {' -> '.join((*path, name))}")
        for sibling in packages[name].siblings(packages, extras=extras):
            visit(sibling, (*path, name))
        if name not in order:
            order.append(name)

    visit(dist, ())
    return order


def debian_packages(path: Path = SYSTEM_PACKAGES_FILE) -> dict[str, str]:
    """Map each executable to the Debian package that provides it."""
    mapping: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) != 2:
            raise WorkspaceError(
                f"{path}:{number}: expected '<executable> <debian-package>', "
                f"got {line!r}"
            )
        mapping[words[0]] = words[1]
    return mapping
