"""Every build, test and release task of the cc monorepo is a nox session.

``nox`` runs what CI needs; ``nox -l`` lists everything. Sessions share small
helpers (``_install_package``, ``_build_wheels``) rather than repeating
install logic, in the manner of urllib3's noxfile.
"""

from __future__ import annotations

import ast
import datetime
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import nox

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - nox itself depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent
PACKAGES_DIR = ROOT / "packages"
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
DEFAULT_PYTHON = "3.11"

TOOLS = ROOT / "tools"
# Test tooling installed next to the package under test (never a sibling).
TEST_REQUIREMENTS = ["-r", str(TOOLS / "requirements-tests.txt")]


def _load_workspace() -> Any:
    """Import tools/workspace.py by its path (tools/ is not an installed package)."""
    spec = importlib.util.spec_from_file_location(
        "cc_tools_workspace", TOOLS / "workspace.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


workspace = _load_workspace()

nox.needs_version = ">=2024.3.2"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.error_on_missing_interpreters = True
# What CI needs. Plain ``nox`` runs the ``ci`` session, which runs these in
# parallel worker processes; ``nox -s <name>`` runs any one of them directly.
CI_SESSIONS = [
    "lint",
    "tools",
    "typecheck",
    "tests",
    "integration",
    "stress",
    "isolation",
    "release-e2e",
    "docs",
    "demo",
]
nox.options.sessions = ["ci"]


def _expose_pyenv_interpreters() -> None:
    """Let nox find every pyenv-installed Python, not only the global one.

    The machines this project runs on carry Python 3.10 to 3.13 through
    pyenv, whose shims answer only for the versions named in PYENV_VERSION.
    """
    versions_dir = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    versions_dir /= "versions"
    if not versions_dir.is_dir():
        return
    installed = sorted(p.name for p in versions_dir.iterdir() if p.is_dir())
    wanted = [
        max(
            (v for v in installed if v.startswith(f"{py}.")),
            key=lambda v: tuple(int(x) for x in v.split(".") if x.isdigit()),
        )
        for py in PYTHONS
        if any(v.startswith(f"{py}.") for v in installed)
    ]
    if wanted:
        # Keep what is already selected (running nox through a pyenv shim sets
        # PYENV_VERSION to that one version) and add the missing ones.
        selected = [v for v in os.environ.get("PYENV_VERSION", "").split(":") if v]
        selected += [v for v in wanted if v not in selected]
        os.environ["PYENV_VERSION"] = ":".join(selected)
        # Also put their bin directories on PATH for uv's interpreter lookup.
        bins = [str(versions_dir / v / "bin") for v in wanted]
        os.environ["PATH"] = os.pathsep.join([*bins, os.environ.get("PATH", "")])


_expose_pyenv_interpreters()
# Machines here reach package registries only: never let uv try to download
# an interpreter; a missing one must fail at once with a clear message.
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")


class Package:
    """What the noxfile needs to know about one distribution."""

    def __init__(self, path: Path) -> None:
        data = tomllib.loads((path / "pyproject.toml").read_text())
        self.path = path
        self.dist: str = data["project"]["name"]
        modules = [p.name for p in (path / "src" / "cc").iterdir() if p.is_dir()]
        if len(modules) != 1:
            raise RuntimeError(f"{self.dist} must ship exactly one cc.<name> module")
        self.module = f"cc.{modules[0]}"
        self.requirements: list[str] = list(data["project"]["dependencies"])
        self.optional: dict[str, list[str]] = data["project"].get(
            "optional-dependencies", {}
        )

    @property
    def siblings(self) -> list[str]:
        """Sibling distributions this package declares as dependencies."""
        names = []
        for requirement in self.requirements:
            name = requirement.split(";")[0].strip()
            for sep in "<>=!~[ ":
                name = name.split(sep)[0]
            if name in _package_names():
                names.append(name)
        return names


def _package_names() -> set[str]:
    return {p.name for p in PACKAGES_DIR.iterdir() if (p / "pyproject.toml").exists()}


def _packages() -> dict[str, Package]:
    return {name: Package(PACKAGES_DIR / name) for name in sorted(_package_names())}


def _closure(dist: str, packages: dict[str, Package]) -> list[str]:
    """The package and every sibling it needs, dependencies first."""
    order: list[str] = []

    def visit(name: str) -> None:
        for sibling in packages[name].siblings:
            visit(sibling)
        if name not in order:
            order.append(name)

    visit(dist)
    return order


def _install_package(
    session: nox.Session, dist: str, *extra: str, extras: str = ""
) -> None:
    """Install ``dist`` (with optional ``extras``) and only its declared siblings.

    Siblings that an extra asks for (cc-concurrency[redis]: cc-redis) are
    installed from the work tree too, never from a package index.
    """
    packages = _packages()
    paths = [str(packages[name].path) for name in _closure(dist, packages)]
    for name in extras.split(",") if extras else ():
        for requirement in packages[dist].optional.get(name, []):
            sibling = workspace.requirement_name(requirement)
            if sibling in packages:
                paths[:0] = [
                    str(packages[each].path)
                    for each in _closure(sibling, packages)
                    if str(packages[each].path) not in paths
                ]
    if extras:
        paths[-1] += f"[{extras}]"
    session.install(*paths, *extra)


def _programs_env(session: nox.Session, programs: Iterable[str]) -> dict[str, str]:
    """CC_<PROGRAM> variables naming each program; a missing one stops the session.

    Sessions never install system packages: tools/system-packages.sh does
    (the README's test command runs it first).
    """
    known = workspace.debian_packages()
    env = {}
    for program in programs:
        found = shutil.which(program)
        if found is None:
            package = known.get(program)
            if package is None:
                session.error(
                    f"{program} is needed but no Debian package for it is listed "
                    "in tools/system-packages.txt: add a line there"
                )
            session.error(
                f"{program} is not installed: install Debian's '{package}' "
                "package (bash tools/system-packages.sh installs every one the "
                f"sessions need, or: apt-get install {package})"
            )
        env[workspace.program_variable(program)] = found
    return env


PACKAGE_NAMES = sorted(_package_names())


def _uv() -> str:
    """The uv executable: the one installed next to nox, else one on PATH."""
    try:
        from uv import find_uv_bin
    except ImportError:
        found = shutil.which("uv")
        if found is None:
            raise RuntimeError(
                "uv is required: python3 -m pip install nox uv"
            ) from None
        return found
    return str(find_uv_bin())


def _pytest(
    session: nox.Session,
    tests_dir: Path,
    *options: str,
    env: dict[str, str] | None = None,
) -> None:
    """Run pytest on ``tests_dir`` with the workspace configuration."""
    session.run(
        "pytest",
        f"--rootdir={ROOT}",
        f"-c={ROOT / 'pyproject.toml'}",
        "-p",
        "no:cacheprovider",
        *options,
        str(tests_dir),
        *session.posargs,
        env=env,
    )


@nox.session(python=PYTHONS)
@nox.parametrize("package", PACKAGE_NAMES)
def tests(session: nox.Session, package: str) -> None:
    """Run one package's own tests against that package installed alone."""
    pkg = _packages()[package]
    needs = workspace.load_packages(ROOT)[package].test_needs
    env = _programs_env(session, needs.programs)
    _install_package(
        session,
        package,
        *TEST_REQUIREMENTS,
        *needs.requirements,
        extras=",".join(needs.extras),
    )
    tests_dir = pkg.path / "tests"
    env["COVERAGE_FILE"] = str(Path(session.create_tmp()) / ".coverage")
    _pytest(
        session,
        tests_dir,
        f"--cov={pkg.module}",
        "--cov-branch",
        "--cov-report=term-missing:skip-covered",
        "--cov-fail-under=95",
        env=env,
    )


@nox.session(python=DEFAULT_PYTHON)
def integration(session: nox.Session) -> None:
    """Cross-package tests in tests-integration/ against the installed meta-package."""
    _install_package(
        session,
        "cc-concurrency",
        *TEST_REQUIREMENTS,
        "-r",
        str(ROOT / "tests-integration" / "requirements.txt"),
        extras="redis",
    )
    _pytest(session, ROOT / "tests-integration")


@nox.session(python=DEFAULT_PYTHON)
def stress(session: nox.Session) -> None:
    """Load, fault and bad-input suites in tests-stress/ (meta-package installed).

    Prints a short report of the load survived (items moved, faults injected,
    checks passed) at the end.
    """
    _install_package(
        session,
        "cc-concurrency",
        *TEST_REQUIREMENTS,
        "-r",
        str(ROOT / "tests-stress" / "requirements.txt"),
    )
    _pytest(session, ROOT / "tests-stress")


def _imported_cc_modules(source_root: Path) -> set[str]:
    """The ``cc.<name>`` modules that the sources under ``source_root`` import."""
    found: set[str] = set()
    for path in source_root.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: Iterable[str] = ()
            if isinstance(node, ast.Import):
                names = (alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = (node.module,)
            for name in names:
                parts = name.split(".")
                if parts[0] == "cc" and len(parts) > 1:
                    found.add(f"cc.{parts[1]}")
    return found


def _build_wheels(session: nox.Session, outdir: Path, *, sdist: bool) -> None:
    kinds = ["--wheel", "--sdist"] if sdist else ["--wheel"]
    for pkg in _packages().values():
        session.run(
            _uv(), "build", *kinds, "--out-dir", str(outdir), str(pkg.path),
            external=True,
        )  # fmt: skip


@nox.session(python=DEFAULT_PYTHON)
def isolation(session: nox.Session) -> None:
    """Install each built wheel alone and prove it imports no undeclared sibling."""
    packages = _packages()
    module_to_dist = {pkg.module: name for name, pkg in packages.items()}
    failures: list[str] = []

    # Static check: every cc.<x> a package's source imports must be declared
    # (as a dependency, or in an extra: cc-concurrency[redis] for cc.redis).
    for name, pkg in packages.items():
        optional = {
            workspace.requirement_name(requirement)
            for requirements in pkg.optional.values()
            for requirement in requirements
        }
        allowed = {packages[s].module for s in pkg.siblings} | {pkg.module}
        allowed |= {packages[s].module for s in optional if s in packages}
        for module in sorted(_imported_cc_modules(pkg.path / "src") - allowed):
            failures.append(
                f"{name} imports {module} ({module_to_dist.get(module, '?')}) "
                "without declaring it in its pyproject dependencies"
            )

    # Dynamic check: in a fresh environment holding only the package and its
    # declared dependencies, import the public module and see what got loaded.
    with tempfile.TemporaryDirectory(prefix="cc-isolation-") as tmp:
        wheelhouse = Path(tmp) / "wheels"
        _build_wheels(session, wheelhouse, sdist=False)
        for name, pkg in packages.items():
            env_dir = Path(tmp) / name
            session.run(
                _uv(), "venv", "--quiet", "--python", str(session.python),
                str(env_dir), external=True,
            )  # fmt: skip
            python = str(env_dir / "bin" / "python")
            # Install by name, as a user would: the resolver must find the
            # siblings (among the fresh wheels) from the declared dependencies.
            session.run(
                _uv(), "pip", "install", "--quiet", "--python", python,
                "--find-links", str(wheelhouse), name, external=True,
            )  # fmt: skip
            permitted = sorted(
                {packages[s].module for s in pkg.siblings} | {pkg.module}
            )
            probe = (
                "import importlib, sys\n"
                f"importlib.import_module({pkg.module!r})\n"
                "loaded = sorted({'.'.join(m.split('.')[:2]) for m in sys.modules"
                " if m.startswith('cc.')})\n"
                f"extra = [m for m in loaded if m not in {permitted!r}]\n"
                "print('loaded:', ', '.join(loaded))\n"
                "sys.exit('undeclared sibling imported: ' + ', '.join(extra)"
                " if extra else 0)\n"
            )
            session.log(f"{name}: importing {pkg.module} in a fresh environment")
            session.run(python, "-c", probe, external=True)
            installed = session.run(
                _uv(), "pip", "freeze", "--python", python,
                external=True, silent=True,
            )  # fmt: skip
            everything = sorted(
                line.split("==")[0].split(" @ ")[0].lower()
                for line in str(installed).splitlines()
                if "==" in line or " @ " in line  # uv also logs its target
            )
            cc_installed = [d for d in everything if d.startswith("cc-")]
            expected = sorted(_closure(name, packages))
            session.log(f"pip install {name} installed: {', '.join(everything)}")
            if cc_installed != expected:
                failures.append(f"{name} installed {cc_installed}, expected {expected}")
            if "cc-queues" not in expected and "pydantic" in everything:
                failures.append(f"{name} pulled in pydantic without needing it")
    if failures:
        session.error("isolation failed:\n  " + "\n  ".join(failures))


@nox.session(python=DEFAULT_PYTHON)
def tools(session: nox.Session) -> None:
    """The tests of the release and changelog tools in tools/."""
    session.install(
        "-r",
        str(TOOLS / "requirements-release.txt"),
        "pytest>=8",
        "pytest-timeout>=2.3",
    )
    session.run(
        "python", "-m", "pytest", f"--rootdir={ROOT}", f"-c={ROOT / 'pyproject.toml'}",
        "-p", "no:cacheprovider", str(TOOLS / "tests"), *session.posargs,
    )  # fmt: skip


@nox.session(python=DEFAULT_PYTHON)
def lint(session: nox.Session) -> None:
    """Ruff lint and format check over the whole repository."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=DEFAULT_PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict over every package's sources and the noxfile."""
    session.install(
        "mypy>=1.10",
        "nox",
        "tomli",
        "pydantic>=2.6",
        "anyio[trio]>=4.5",
        "redis>=5",
        "pytest>=8",
    )
    session.run(
        "mypy",
        "--strict",
        *(str(p.path / "src") for p in _packages().values()),
        "noxfile.py",
        "tools",
    )


# -- release workflow (modelled on pip's release sessions) -------------------

VERSION_RE = re.compile(r'^__version__ = "(?P<version>[^"]+)"$', re.MULTILINE)
RELEASE_DATE_ENV = "CC_RELEASE_DATE"  # pin the changelog date (tests, reruns)


def _git(session: nox.Session, *args: str, cwd: Path = ROOT) -> str:
    return str(
        session.run("git", "-C", str(cwd), *args, external=True, silent=True)
    ).strip()


def _require_clean_tree(session: nox.Session, cwd: Path = ROOT) -> None:
    dirty = _git(session, "status", "--porcelain", "--untracked-files=normal", cwd=cwd)
    if dirty:
        session.error(
            "refusing to continue: the work tree is not clean (commit or stash "
            f"first):\n{dirty}"
        )


def _about_file(pkg: Package) -> Path:
    return pkg.path / "src" / Path(*pkg.module.split(".")) / "__about__.py"


def _read_version(pkg: Package) -> str:
    match = VERSION_RE.search(_about_file(pkg).read_text())
    if match is None:
        raise RuntimeError(f"no __version__ in {_about_file(pkg)}")
    return match["version"]


def _next_version(current: str, bump: str) -> str:
    parts = [int(p) for p in current.split(".")]
    if len(parts) != 3:
        raise ValueError(f"cannot bump non X.Y.Z version {current!r}")
    major, minor, patch = parts
    if bump == "major":
        return f"{major + 1}.0.0"
    if bump == "minor":
        return f"{major}.{minor + 1}.0"
    if bump == "patch":
        return f"{major}.{minor}.{patch + 1}"
    if re.fullmatch(r"\d+\.\d+\.\d+", bump):
        if tuple(int(p) for p in bump.split(".")) <= (major, minor, patch):
            raise ValueError(f"{bump} is not newer than the current {current}")
        return bump
    raise ValueError(f"expected major, minor, patch or X.Y.Z, got {bump!r}")


def _assemble_changelog(
    session: nox.Session, pkg: Package, version: str, date: str
) -> None:
    """Move the package's news fragments into its CHANGELOG.md (towncrier)."""
    fragments = [
        p for p in (pkg.path / "changelog.d").glob("*.md") if p.name != "README.md"
    ]
    if not fragments:
        raise ValueError(
            f"no news fragments in {pkg.path / 'changelog.d'}: write the notes first"
        )
    session.run(
        "towncrier", "build", "--yes", "--config", str(TOOLS / "towncrier.toml"),
        "--dir", str(pkg.path), "--version", version, "--date", date,
        silent=True,
    )  # fmt: skip


def _compatible_range(version: str) -> str:
    major, minor, _ = (int(p) for p in version.split("."))
    upper = f"{major + 1}" if major else f"0.{minor + 1}"
    return f">={version},<{upper}"


def _raise_dependents(
    session: nox.Session, released: str, version: str, packages: dict[str, Package]
) -> list[str]:
    """Raise the lower bound on ``released`` where a dependent needs it.

    The meta-package always moves to the new release (installing it must give
    users the new version); other dependents move only when the new version
    falls outside the range they declare.
    """
    from packaging.requirements import Requirement
    from packaging.version import Version

    changed = []
    for name, pkg in packages.items():
        if released not in pkg.siblings:
            continue
        pyproject = pkg.path / "pyproject.toml"
        text = pyproject.read_text()
        for line in pkg.requirements:
            requirement = Requirement(line)
            if requirement.name != released:
                continue
            inside = requirement.specifier.contains(Version(version))
            if inside and name != "cc-concurrency":
                continue
            new_line = f"{released}{_compatible_range(version)}"
            if line == new_line:
                continue
            text = text.replace(f'"{line}"', f'"{new_line}"')
            session.log(f"{name}: {line} -> {new_line}")
            changed.append(name)
        pyproject.write_text(text)
    return changed


@nox.session(python=DEFAULT_PYTHON)
def release(session: nox.Session) -> None:
    """Prepare a release: ``nox -s release -- <package> <major|minor|patch|X.Y.Z>``.

    Refuses a dirty tree; bumps the version, assembles the package's news
    fragments (changelog.d/) into its changelog under the new version and
    date, raises the lower bound on the package in its dependents where
    needed, commits and tags
    ``<package>-v<version>``. Rerunning after success does nothing.
    """
    if len(session.posargs) != 2:
        session.error("usage: nox -s release -- <package> <major|minor|patch|X.Y.Z>")
    dist, bump = session.posargs
    packages = _packages()
    if dist not in packages:
        session.error(f"unknown package {dist!r}; choose from {sorted(packages)}")
    pkg = packages[dist]
    current = _read_version(pkg)
    head_tags = _git(session, "tag", "--points-at", "HEAD").split()
    if f"{dist}-v{current}" in head_tags:
        session.log(f"{dist} {current} is already released at HEAD: nothing to do")
        return
    _require_clean_tree(session)
    try:
        version = _next_version(current, bump)
    except ValueError as exc:
        session.error(str(exc))
    tag = f"{dist}-v{version}"
    if tag in _git(session, "tag", "--list", tag).split():
        session.error(f"tag {tag} exists already")
    date = os.environ.get(RELEASE_DATE_ENV) or datetime.date.today().isoformat()
    about = _about_file(pkg)
    about.write_text(VERSION_RE.sub(f'__version__ = "{version}"', about.read_text()))
    session.install("-r", str(TOOLS / "requirements-release.txt"))
    try:
        _assemble_changelog(session, pkg, version, date)
    except ValueError as exc:
        _git(session, "checkout", "--", str(about))
        session.error(str(exc))
    session.log(f"{dist}: {current} -> {version}; changelog dated {date}")
    changed = _raise_dependents(session, dist, version, packages)
    _git(session, "add", "--all", str(PACKAGES_DIR))
    _git(session, "commit", "--quiet", "-m", f"Release {dist} {version}")
    _git(session, "tag", "-a", tag, "-m", f"{dist} {version}")
    session.log(f"committed and tagged {tag}")
    for name in changed:
        session.log(f"note: {name} now requires {dist}>={version}: release it too")


def _expected_artifacts(packages: Iterable[Package]) -> set[str]:
    names = set()
    for pkg in packages:
        stem = f"{pkg.dist.replace('-', '_')}-{_read_version(pkg)}"
        names |= {f"{stem}-py3-none-any.whl", f"{stem}.tar.gz"}
    return names


def _artifacts_in(dist: Path) -> list[str]:
    """The files in ``dist`` (uv adds a ``.gitignore`` there, which is not one)."""
    if not dist.is_dir():
        return []
    return sorted(p.name for p in dist.iterdir() if not p.name.startswith("."))


def _selected_packages(session: nox.Session, names: list[str]) -> list[Package]:
    packages = _packages()
    unknown = [n for n in names if n not in packages]
    if unknown:
        session.error(f"unknown packages {unknown}; choose from {sorted(packages)}")
    return [packages[n] for n in names] if names else list(packages.values())


@nox.session(python=DEFAULT_PYTHON)
def build(session: nox.Session) -> None:
    """Build wheels and sdists from a clean checkout into dist/, then twine check.

    ``nox -s build [-- <package> ...]`` (default: every package). Refuses a
    dirty tree, and builds from a fresh clone of HEAD so that nothing
    uncommitted can leak into an artifact.
    """
    _require_clean_tree(session)
    selected = _selected_packages(session, list(session.posargs))
    session.install("twine>=5", "uv")
    dist = ROOT / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    dist.mkdir()
    with tempfile.TemporaryDirectory(prefix="cc-build-") as tmp:
        checkout = Path(tmp) / "checkout"
        session.run(
            "git", "clone", "--quiet", "--no-local", str(ROOT), str(checkout),
            external=True,
        )  # fmt: skip
        head = _git(session, "rev-parse", "HEAD", cwd=checkout)
        session.log(f"building from a clean clone at {head[:12]}")
        for pkg in selected:
            source = checkout / pkg.path.relative_to(ROOT)
            session.run(
                _uv(), "build", "--quiet", "--wheel", "--sdist", "--out-dir",
                str(dist), str(source), external=True,
            )  # fmt: skip
    built = _artifacts_in(dist)
    expected = sorted(_expected_artifacts(selected))
    if built != expected:
        session.error(f"built {built}, expected {expected}")
    session.run("twine", "check", "--strict", *(str(dist / n) for n in built))
    session.log("built: " + ", ".join(built))


@nox.session(python=DEFAULT_PYTHON)
def publish(session: nox.Session) -> None:
    """Upload dist/ with twine: ``nox -s publish -- <index-url> [<package> ...]``.

    The index may instead come from ``CC_PUBLISH_URL``; credentials come from
    ``TWINE_USERNAME`` / ``TWINE_PASSWORD``. Refuses when dist/ holds anything
    other than exactly the artifacts of the selected packages' current
    versions. Already uploaded files are skipped, so a rerun is safe.
    """
    args = list(session.posargs)
    url = args.pop(0) if args and "://" in args[0] else os.environ.get("CC_PUBLISH_URL")
    if not url:
        session.error("usage: nox -s publish -- <index-url> [<package> ...]")
    selected = _selected_packages(session, args)
    dist = ROOT / "dist"
    present = _artifacts_in(dist)
    expected = sorted(_expected_artifacts(selected))
    if present != expected:
        unexpected = sorted(set(present) - set(expected))
        missing = sorted(set(expected) - set(present))
        session.error(
            "refusing to publish: dist/ does not hold exactly the expected files"
            f" (unexpected: {unexpected}, missing: {missing}); run nox -s build"
        )
    simple = os.environ.get("CC_PUBLISH_SIMPLE_URL") or url.rstrip("/") + "/simple/"
    already = _files_on_index(simple, selected)
    to_upload = [name for name in expected if name not in already]
    for name in sorted(already & set(expected)):
        session.log(f"already on the index, skipped: {name}")
    if not to_upload:
        session.log(f"nothing to upload: all {len(expected)} files are on {url}")
        return
    session.install("twine>=5")
    session.run(
        "twine", "upload", "--non-interactive", "--repository-url", url,
        *(str(dist / n) for n in to_upload),
    )  # fmt: skip
    session.log(f"published {len(to_upload)} files to {url}: {', '.join(to_upload)}")


def _files_on_index(simple_url: str, packages: Iterable[Package]) -> set[str]:
    """File names the index already lists for these packages (PEP 503 pages).

    twine's --skip-existing works only with some servers, so a rerun checks
    the index's simple pages itself.
    """
    import urllib.error
    import urllib.request

    found: set[str] = set()
    for pkg in packages:
        try:
            with urllib.request.urlopen(f"{simple_url}{pkg.dist}/", timeout=30) as page:
                html = page.read().decode()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                continue
            raise
        found |= set(re.findall(r">([^<>]+\.(?:whl|tar\.gz))</a>", html))
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@nox.session(python=DEFAULT_PYTHON, name="release-e2e")
def release_e2e(session: nox.Session) -> None:
    """Prove the release path end to end against a real local package index.

    In a temporary clone: release cc-queues (patch), build, publish every
    package to a pypiserver on 127.0.0.1; then install cc-queues and
    cc-concurrency from that index into a fresh environment (third-party
    dependencies from the default index) and import them. The server is
    stopped and its files removed afterwards, pass or fail.
    """
    session.install("nox", "uv", "pypiserver>=2", "passlib")
    with tempfile.TemporaryDirectory(prefix="cc-release-e2e-") as tmp:
        work = Path(tmp)
        packages_dir = work / "index"
        packages_dir.mkdir()
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        log = (work / "pypiserver.log").open("w")
        server = subprocess.Popen(
            [
                str(Path(session.bin) / "pypi-server"), "run",
                "--host", "127.0.0.1", "--port", str(port),
                "--disable-fallback", "-a", ".", "-P", ".", str(packages_dir),
            ],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            _wait_for_http(session, f"{url}/simple/", server)
            clone = work / "repo"
            session.run("git", "clone", "--quiet", str(ROOT), str(clone), external=True)
            for key, value in (("user.name", "cc release test"),
                               ("user.email", "release-test@localhost")):  # fmt: skip
                _git(session, "config", key, value, cwd=clone)
            env = {
                "TWINE_USERNAME": "cc",
                "TWINE_PASSWORD": "cc",
                RELEASE_DATE_ENV: "2026-01-02",
            }

            def nox_in_clone(*args: str) -> None:
                session.run(
                    "python", "-m", "nox", "-f", str(clone / "noxfile.py"),
                    "--no-error-on-missing-interpreters", *args, env=env,
                )  # fmt: skip

            queues = Package(clone / "packages" / "cc-queues")
            before = _read_version(queues)
            nox_in_clone("-s", "release", "--", "cc-queues", "patch")
            nox_in_clone("-s", "release", "--", "cc-queues", "patch")  # rerun: no-op
            after = _read_version(Package(clone / "packages" / "cc-queues"))
            if after != _next_version(before, "patch"):
                session.error(f"cc-queues went from {before} to {after}")
            tags = _git(session, "tag", "--list", "cc-queues-v*", cwd=clone).split()
            if f"cc-queues-v{after}" not in tags:
                session.error(f"tag cc-queues-v{after} missing: {tags}")
            changelog = (clone / "packages/cc-queues/CHANGELOG.md").read_text()
            if f"## {after} - 2026-01-02" not in changelog:
                session.error("the changelog was not dated for the release")
            meta = (clone / "packages/cc-concurrency/pyproject.toml").read_text()
            if f"cc-queues>={after}," not in meta:
                session.error(
                    "cc-concurrency's lower bound on cc-queues was not raised"
                )
            nox_in_clone("-s", "build")
            nox_in_clone("-s", "publish", "--", url)
            nox_in_clone("-s", "publish", "--", url)  # rerun: skips existing files
            uploaded = sorted(p.name for p in packages_dir.iterdir())
            session.log(f"the index holds: {', '.join(uploaded)}")

            venv = work / "fresh-env"
            session.run(_uv(), "venv", "--quiet", "--python", str(session.python),
                        str(venv), external=True)  # fmt: skip
            python = str(venv / "bin" / "python")
            session.run(
                _uv(), "pip", "install", "--python", python, "--no-cache",
                # The local index comes first; what it lacks (anyio,
                # pydantic...) comes from the default index.
                "--extra-index-url", f"{url}/simple/",
                "--index-strategy", "first-index",
                "cc-queues", "cc-concurrency", external=True,
            )  # fmt: skip
            session.run(
                python, "-c",
                "import cc.queues, cc.concurrency; from importlib import metadata; "
                f"v = metadata.version('cc-queues'); assert v == {after!r}, v; "
                "print('installed from the local index: cc-queues', v)",
                external=True,
            )  # fmt: skip
            session.run(python, "-m", "cc.concurrency", external=True)
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
            log.close()
    session.log("release path proven; server stopped and its files removed")


def _wait_for_http(
    session: nox.Session, url: str, server: subprocess.Popen[bytes]
) -> None:
    import urllib.request

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            session.error(f"pypiserver exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    session.error(f"pypiserver did not answer at {url}")


@nox.session(python=DEFAULT_PYTHON)
def bench(session: nox.Session) -> None:
    """Run the benchmarks and print the side-by-side comparison table.

    ``nox -s bench -- --quick`` for a short run, ``--only primitives queues``
    for some modules; results are also written as JSON.
    """
    packages = workspace.load_packages(ROOT)
    programs = sorted({p for pkg in packages.values() for p in pkg.test_needs.programs})
    env = _programs_env(session, programs)
    # Every package (with the extras its tests use), so that bench modules of
    # packages outside the meta-package can run too.
    session.install(
        *(
            str(pkg.path)
            + (f"[{','.join(pkg.test_needs.extras)}]" if pkg.test_needs.extras else "")
            for pkg in packages.values()
        ),
        "-r",
        str(ROOT / "benchmarks" / "requirements.txt"),
    )
    session.run(
        "python", str(ROOT / "benchmarks" / "run.py"), *session.posargs, env=env
    )


@nox.session(python=DEFAULT_PYTHON)
def demo(session: nox.Session) -> None:
    """Install the meta-package in a fresh environment and run the demo."""
    _install_package(session, "cc-concurrency", "anyio[trio]>=4.5")
    session.run("python", str(ROOT / "examples" / "demo.py"), *session.posargs)


DOCS_REQUIREMENTS = [
    "mkdocs>=1.6",
    "mkdocs-material>=9.5",
    "mkdocstrings[python]>=0.26",
]


@nox.session(python=DEFAULT_PYTHON)
def docs(session: nox.Session) -> None:
    """Build the documentation site strictly into site/, then check it renders.

    The render check opens every built page in headless Chromium (Debian's
    package, installed when missing) and fails on a broken page or a console
    error.
    """
    _install_package(
        session, "cc-concurrency", *DOCS_REQUIREMENTS,
        "playwright>=1.45", "pytest>=8", "pytest-timeout>=2.3", extras="redis",
    )  # fmt: skip
    site = ROOT / "site"
    shutil.rmtree(site, ignore_errors=True)
    session.run(
        "mkdocs", "build", "--strict", "--site-dir", str(site),
        env={"NO_MKDOCS_2_WARNING": "1"},  # Material's banner, not our warning
    )  # fmt: skip
    env = _programs_env(session, ["chromium"])
    env["CC_DOCS_SITE"] = str(site)
    _pytest(session, ROOT / "docs" / "tests", env=env)


@nox.session(python=False)
def ci(session: nox.Session) -> None:
    """Run every CI session, several at a time, and summarise.

    Most of the test time is spent waiting (timeouts, sleeps, process
    start-up), so a few sessions side by side finish far sooner than one
    after another, even on two cores. Each session's full output is printed
    when it ends; the run fails if any session fails. ``-- --jobs N`` sets the
    parallelism (default: the number of CPUs plus one).
    """
    import concurrent.futures

    jobs = (os.cpu_count() or 2) + 1
    args = list(session.posargs)
    if args[:1] == ["--jobs"] and len(args) >= 2:
        jobs = int(args[1])
    listed = subprocess.run(
        [sys.executable, "-m", "nox", "-f", str(ROOT / "noxfile.py"), "--list",
         "--json", "-s", *CI_SESSIONS],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    import json

    names = [entry["session"] for entry in json.loads(listed.stdout)]
    # The longest sessions first, so that they do not start last.
    names.sort(key=lambda n: (not n.startswith(("docs", "release")), n))

    def run_one(name: str) -> tuple[str, int, float, str]:
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "nox", "-f", str(ROOT / "noxfile.py"),
             "-s", name],
            capture_output=True, text=True, cwd=ROOT, check=False,
        )  # fmt: skip
        return (
            name,
            proc.returncode,
            time.monotonic() - started,
            proc.stdout + proc.stderr,
        )

    results: list[tuple[str, int, float]] = []
    test_counts: dict[str, tuple[int, int]] = {}
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for name, code, seconds, output in pool.map(run_one, names):
            print(f"\n===== {name}: {'ok' if code == 0 else 'FAILED'} "
                  f"in {seconds:.0f}s =====", flush=True)  # fmt: skip
            print(output, flush=True)
            results.append((name, code, seconds))
            test_counts[name] = _pytest_counts(output)
    print(
        f"\n===== summary ({jobs} at a time, {time.monotonic() - started:.0f}s) ====="
    )
    for name, code, seconds in results:
        print(f"  {'ok    ' if code == 0 else 'FAILED'} {seconds:6.0f}s  {name}")
    passed_tests = sum(counts[0] for counts in test_counts.values())
    failed_tests = sum(counts[1] for counts in test_counts.values())
    print(f"pytest, all sessions: {passed_tests} passed, {failed_tests} failed")
    failed = [name for name, code, _ in results if code]
    if failed:
        session.error(f"{len(failed)} of {len(results)} sessions failed: {failed}")


def _pytest_counts(output: str) -> tuple[int, int]:
    """Passed and failed test counts from pytest's closing lines in ``output``."""
    passed = failed = 0
    for line in output.splitlines():
        if not re.match(r"^=+ .* in [\d.]+s", line):
            continue
        for number, what in re.findall(r"(\d+) (passed|failed|error)", line):
            if what == "passed":
                passed += int(number)
            else:
                failed += int(number)
    return passed, failed
