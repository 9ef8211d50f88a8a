"""Every build, test and release task of the cc monorepo is a nox session.

``nox`` runs what CI needs; ``nox -l`` lists everything. Sessions share small
helpers (``_install_package``, ``_build_wheels``) rather than repeating
install logic, in the manner of urllib3's noxfile.
"""

from __future__ import annotations

import ast
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

import nox

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - nox itself depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent
PACKAGES_DIR = ROOT / "packages"
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
DEFAULT_PYTHON = "3.11"

# Test tooling installed next to the package under test (never a sibling).
TEST_REQUIREMENTS = [
    "pytest>=8",
    "pytest-timeout>=2.3",
    "pytest-cov>=5",
    "hypothesis>=6.100",
    "anyio[trio]>=4.5",
    "uvloop>=0.19; sys_platform != 'win32'",
]

nox.needs_version = ">=2024.3.2"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.error_on_missing_interpreters = True
nox.options.sessions = [
    "lint",
    "typecheck",
    "tests",
    "integration",
    "isolation",
    "demo",
]


def _expose_pyenv_interpreters() -> None:
    """Let nox find every pyenv-installed Python, not only the global one.

    The machines this project runs on carry Python 3.10 to 3.13 through
    pyenv, whose shims answer only for the versions named in PYENV_VERSION.
    """
    versions_dir = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    versions_dir /= "versions"
    if not versions_dir.is_dir() or "PYENV_VERSION" in os.environ:
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
        os.environ["PYENV_VERSION"] = ":".join(wanted)
        # Also put their bin directories on PATH for uv's interpreter lookup.
        bins = [str(versions_dir / v / "bin") for v in wanted]
        os.environ["PATH"] = os.pathsep.join([*bins, os.environ.get("PATH", "")])


_expose_pyenv_interpreters()


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


def _install_package(session: nox.Session, dist: str, *extra: str) -> None:
    """Install ``dist`` and only its declared siblings from the local tree."""
    packages = _packages()
    paths = [str(packages[name].path) for name in _closure(dist, packages)]
    session.install(*paths, *extra)


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


@nox.session(python=PYTHONS)
@nox.parametrize("package", PACKAGE_NAMES)
def tests(session: nox.Session, package: str) -> None:
    """Run one package's own tests against that package installed alone."""
    pkg = _packages()[package]
    _install_package(session, package, *TEST_REQUIREMENTS)
    tests_dir = pkg.path / "tests"
    session.run(
        "pytest",
        f"--rootdir={ROOT}",
        f"-c={ROOT / 'pyproject.toml'}",
        f"--cov={pkg.module}",
        "--cov-branch",
        "--cov-report=term-missing:skip-covered",
        "--cov-fail-under=95",
        "-p",
        "no:cacheprovider",
        str(tests_dir),
        *session.posargs,
        env={"COVERAGE_FILE": str(Path(session.create_tmp()) / ".coverage")},
    )


@nox.session(python=DEFAULT_PYTHON)
def integration(session: nox.Session) -> None:
    """Cross-package tests in tests-integration/ against the installed meta-package."""
    _install_package(session, "cc-concurrency", *TEST_REQUIREMENTS)
    session.run(
        "pytest",
        f"--rootdir={ROOT}",
        f"-c={ROOT / 'pyproject.toml'}",
        "-p",
        "no:cacheprovider",
        str(ROOT / "tests-integration"),
        *session.posargs,
    )


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

    # Static check: every cc.<x> a package's source imports must be declared.
    for name, pkg in packages.items():
        allowed = {packages[s].module for s in pkg.siblings} | {pkg.module}
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
            wheels = [
                str(next(wheelhouse.glob(f"{d.replace('-', '_')}-*.whl")))
                for d in _closure(name, packages)
            ]
            session.run(
                _uv(), "pip", "install", "--quiet", "--python", python, *wheels,
                external=True,
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
            cc_installed = sorted(
                line.split("==")[0].split(" @ ")[0]
                for line in str(installed).splitlines()
                if line.startswith("cc-")
            )
            expected = sorted(_closure(name, packages))
            session.log(f"{name}: installed cc distributions {cc_installed}")
            if cc_installed != expected:
                failures.append(f"{name} installed {cc_installed}, expected {expected}")
    if failures:
        session.error("isolation failed:\n  " + "\n  ".join(failures))


@nox.session(python=DEFAULT_PYTHON)
def lint(session: nox.Session) -> None:
    """Ruff lint and format check over the whole repository."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=DEFAULT_PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict over every package's sources and the noxfile."""
    session.install("mypy>=1.10", "nox", "tomli", "pydantic>=2.6", "anyio[trio]>=4.5")
    session.run(
        "mypy",
        "--strict",
        *(str(p.path / "src") for p in _packages().values()),
        "noxfile.py",
    )


@nox.session(python=DEFAULT_PYTHON)
def build(session: nox.Session) -> None:
    """Build the wheel and sdist of every package into dist/."""
    dist = ROOT / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    _build_wheels(session, dist, sdist=True)
    session.log("built: " + ", ".join(sorted(p.name for p in dist.iterdir())))


@nox.session(python=DEFAULT_PYTHON)
def bench(session: nox.Session) -> None:
    """Run the benchmarks and print the side-by-side comparison table."""
    _install_package(session, "cc-concurrency", "anyio[trio]>=4.5", "uvloop")
    session.run("python", str(ROOT / "benchmarks" / "run.py"), *session.posargs)


@nox.session(python=DEFAULT_PYTHON)
def demo(session: nox.Session) -> None:
    """Install the meta-package in a fresh environment and run the demo."""
    _install_package(session, "cc-concurrency", "anyio[trio]>=4.5")
    session.run("python", str(ROOT / "examples" / "demo.py"), *session.posargs)


def _ensure_debian_package(session: nox.Session, executable: str, package: str) -> str:
    """Return the path of ``executable``, installing Debian's ``package`` if absent.

    CI machines start without it; the project installs what it needs itself.
    """
    found = shutil.which(executable)
    if found:
        return found
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        session.error(
            f"{executable} is missing and cannot be installed here: "
            f"install Debian's '{package}' package (apt-get install {package})"
        )
    session.log(f"installing Debian's {package} for {executable}")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    session.run("apt-get", "update", "-qq", external=True, env=env)
    session.run(
        "apt-get", "install", "-y", "-qq", "--no-install-recommends", package,
        external=True, env=env,
    )  # fmt: skip
    found = shutil.which(executable)
    if not found:
        session.error(f"installing {package} did not provide {executable}")
    return found


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
        "playwright>=1.45", "pytest>=8", "pytest-timeout>=2.3",
    )  # fmt: skip
    site = ROOT / "site"
    shutil.rmtree(site, ignore_errors=True)
    session.run("mkdocs", "build", "--strict", "--site-dir", str(site))
    chromium = _ensure_debian_package(session, "chromium", "chromium")
    session.run(
        "pytest",
        f"--rootdir={ROOT}",
        f"-c={ROOT / 'pyproject.toml'}",
        "-p",
        "no:cacheprovider",
        str(ROOT / "docs" / "tests"),
        *session.posargs,
        env={"CC_DOCS_SITE": str(site), "CC_CHROMIUM": chromium},
    )
