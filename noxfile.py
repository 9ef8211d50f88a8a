"""Every build, test and release task of the cc monorepo is a nox session.

``python3 -m nox`` runs what CI runs (the ``ci`` session); ``nox -l`` lists
every session. Sessions stay short: what they need to know about the
packages comes from ``tools/workspace.py`` (each package's own pyproject
declares its test needs in ``[tool.cc.tests]``), and the longer procedures
live in ``tools/`` as modules with tests of their own (``nox -s tools``):
the release path (``tools/release.py``, ``tools/release_e2e.py``), the
isolation check and the parallel CI runner. Nothing here changes the
environment: interpreters are found by nox (the repository's
``.python-version`` selects Python 3.10 to 3.13 under pyenv) and system
programs are installed by ``tools/system-packages.sh``, never by a session.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

import nox

ROOT = Path(__file__).resolve().parent
TOOLS = ROOT / "tools"
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
DEFAULT_PYTHON = "3.11"

nox.needs_version = ">=2025.10.14"  # nox.options.download_python
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.error_on_missing_interpreters = True
# The machines reach package registries only: find interpreters, never fetch.
nox.options.download_python = "never"
nox.options.sessions = ["ci"]
# What CI runs (``nox`` runs them side by side through the ``ci`` session).
CI_SESSIONS = [
    "lint", "typecheck", "tools", "tests", "integration", "stress",
    "isolation", "release-e2e", "docs", "demo",
]  # fmt: skip
# Off a terminal (CI, the ci session's logs): no progress bars, no colour codes.
QUIET = (
    {}
    if sys.stdout.isatty()
    else {"UV_NO_PROGRESS": "1", "NO_COLOR": "1", "PY_COLORS": "0"}
)


def _load_workspace() -> ModuleType:
    """Import tools/workspace.py by its path (nox puts no folder on sys.path)."""
    spec = importlib.util.spec_from_file_location(
        "cc_tools_workspace", TOOLS / "workspace.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


workspace = _load_workspace()
PACKAGES = workspace.load_packages(ROOT)


def _requirements(path: Path) -> list[str]:
    return ["-r", str(path)]


TEST_REQUIREMENTS = _requirements(TOOLS / "requirements-tests.txt")
RELEASE_REQUIREMENTS = _requirements(TOOLS / "requirements-release.txt")
DOCS_REQUIREMENTS = _requirements(TOOLS / "requirements-docs.txt")


def _install(
    session: nox.Session, dist: str, *extra: str, extras: Iterable[str] = ()
) -> None:
    """Install ``dist`` (with ``extras``) and only the siblings it declares.

    Siblings that an extra asks for (``cc-concurrency[redis]``: cc-redis) come
    from the work tree too, never from a package index.
    """
    names = workspace.closure(dist, PACKAGES)
    for extra_name in extras:
        for requirement in PACKAGES[dist].optional.get(extra_name, ()):
            sibling = workspace.requirement_name(requirement)
            if sibling in PACKAGES:
                wanted = workspace.closure(sibling, PACKAGES)
                names = [n for n in wanted if n not in names] + names
    paths = [str(PACKAGES[name].path) for name in names]
    if extras:
        paths[-1] += f"[{','.join(extras)}]"
    session.install(*paths, *extra, env=QUIET)


def _install_everything(session: nox.Session, *extra: str) -> None:
    """Install every package, with the extras its own tests use."""
    everything = [
        f"{pkg.path}[{','.join(pkg.test_needs.extras)}]"
        if pkg.test_needs.extras
        else str(pkg.path)
        for pkg in PACKAGES.values()
    ]
    session.install(*everything, *extra, env=QUIET)


def _programs(session: nox.Session, programs: Iterable[str]) -> dict[str, str]:
    """``CC_<PROGRAM>`` variables naming each program; a missing one stops here.

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
                    f"{program} is needed, but tools/system-packages.txt names no "
                    "Debian package for it: add a line there"
                )
            session.error(
                f"{program} is not installed: it comes with Debian's '{package}' "
                "package; run 'bash tools/system-packages.sh' (installs every "
                f"one the sessions need) or 'apt-get install {package}'"
            )
        env[workspace.program_variable(program)] = found
    return env


def _pytest(
    session: nox.Session, where: Path, *options: str, env: dict[str, str] | None = None
) -> None:
    """Run pytest on ``where`` with the workspace configuration."""
    session.run(
        "python", "-m", "pytest", f"--rootdir={ROOT}", f"-c={ROOT / 'pyproject.toml'}",
        "-p", "no:cacheprovider", *options, str(where), *session.posargs,
        env={**QUIET, **(env or {})},
    )  # fmt: skip


def _tool(session: nox.Session, module: str, *args: str) -> None:
    """Run ``python -m tools.<module>`` from the repository root."""
    session.run("python", "-m", f"tools.{module}", *args, env=QUIET)


# -- tests -----------------------------------------------------------------


@nox.session(python=PYTHONS)
@nox.parametrize("package", list(PACKAGES))
def tests(session: nox.Session, package: str) -> None:
    """Run one package's own tests against that package installed alone.

    What the tests need beyond the package comes from ``[tool.cc.tests]`` in
    its pyproject: extras, requirements, and programs (``CC_<PROGRAM>``).
    """
    pkg = PACKAGES[package]
    needs = pkg.test_needs
    env = _programs(session, needs.programs)
    _install(
        session, package, *TEST_REQUIREMENTS, *needs.requirements, extras=needs.extras
    )
    env["COVERAGE_FILE"] = str(Path(session.create_tmp()) / ".coverage")
    _pytest(
        session, pkg.path / "tests", f"--cov={pkg.module}", "--cov-branch",
        "--cov-report=term-missing:skip-covered", "--cov-fail-under=95", env=env,
    )  # fmt: skip


def _suite(session: nox.Session, folder: str) -> None:
    """Install the meta-package and ``folder``'s requirements; run its tests."""
    _install(
        session, workspace.META_PACKAGE, *TEST_REQUIREMENTS,
        *_requirements(ROOT / folder / "requirements.txt"), extras=("redis",),
    )  # fmt: skip
    _pytest(session, ROOT / folder)


@nox.session(python=DEFAULT_PYTHON)
def integration(session: nox.Session) -> None:
    """Cross-package tests in tests-integration/ against the installed meta-package."""
    _suite(session, "tests-integration")


@nox.session(python=DEFAULT_PYTHON)
def stress(session: nox.Session) -> None:
    """Load, fault and bad-input suites in tests-stress/ (meta-package installed).

    Prints a short report of the load survived (items moved, faults injected,
    checks passed) at the end.
    """
    _suite(session, "tests-stress")


@nox.session(python=DEFAULT_PYTHON)
def isolation(session: nox.Session) -> None:
    """Install each built wheel alone and prove it imports no undeclared sibling."""
    session.install("uv", env=QUIET)
    _tool(session, "isolation")


@nox.session(python=DEFAULT_PYTHON)
def tools(session: nox.Session) -> None:
    """The tests of tools/ (release path, changelog, workspace, CI runner)."""
    session.install(*RELEASE_REQUIREMENTS, *TEST_REQUIREMENTS, env=QUIET)
    _pytest(session, TOOLS / "tests")


# -- static checks ---------------------------------------------------------


@nox.session(python=DEFAULT_PYTHON)
def lint(session: nox.Session) -> None:
    """Ruff lint and format check over the whole repository."""
    session.install("ruff>=0.6", env=QUIET)
    session.run("ruff", "check", "--no-cache", ".")
    session.run("ruff", "format", "--no-cache", "--check", ".")


@nox.session(python=DEFAULT_PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict over every package's sources, the noxfile and tools/."""
    session.install(
        "mypy>=1.10", "nox", "tomli", "pydantic>=2.6", "anyio[trio]>=4.5", "redis>=5",
        "pytest>=8", *RELEASE_REQUIREMENTS, env=QUIET,
    )  # fmt: skip
    session.run(
        "mypy", "--strict", *(str(p.path / "src") for p in PACKAGES.values()),
        "noxfile.py", "tools",
    )  # fmt: skip


# -- documentation, demo, benchmarks ---------------------------------------


@nox.session(python=DEFAULT_PYTHON)
def docs(session: nox.Session) -> None:
    """Build the documentation site strictly into site/, then check it in a browser.

    The check opens every built page in headless Chromium (Debian's package)
    and fails on a broken page, a console error, a failed request, raw
    reStructuredText or reference markup left in a page, or a benchmark chart
    that is missing or does not render.
    """
    env = _programs(session, ["chromium"])
    _install_everything(session, *DOCS_REQUIREMENTS)  # every package has its pages
    site = ROOT / "site"
    shutil.rmtree(site, ignore_errors=True)
    session.run(
        "mkdocs", "build", "--strict", "--site-dir", str(site),
        env={**QUIET, "NO_MKDOCS_2_WARNING": "1"},  # Material's banner, not ours
    )  # fmt: skip
    _pytest(session, ROOT / "docs" / "tests", env={**env, "CC_DOCS_SITE": str(site)})


@nox.session(python=DEFAULT_PYTHON)
def demo(session: nox.Session) -> None:
    """Install the meta-package in a fresh environment and run the demo."""
    _install(session, workspace.META_PACKAGE, "anyio[trio]>=4.5")
    session.run("python", str(ROOT / "examples" / "demo.py"), *session.posargs)


@nox.session(python=DEFAULT_PYTHON)
def bench(session: nox.Session) -> None:
    """Run the benchmarks and print the side-by-side comparison table.

    ``nox -s bench -- --quick`` for a short run, ``--only primitives queues``
    for some modules; results are also written as JSON. Every package is
    installed (with the extras its tests use), so that bench modules of
    packages outside the meta-package run too.
    """
    programs = sorted({p for pkg in PACKAGES.values() for p in pkg.test_needs.programs})
    env = _programs(session, programs)
    _install_everything(
        session, *_requirements(ROOT / "benchmarks" / "requirements.txt")
    )
    session.run(
        "python", str(ROOT / "benchmarks" / "run.py"), *session.posargs, env=env
    )


@nox.session(python=DEFAULT_PYTHON)
def instructions(session: nox.Session) -> None:
    """Count instructions per operation on the hot paths (callgrind).

    ``nox -s instructions -- --rev 7690ba1`` compares that commit with the
    working tree; ``--only trio`` keeps the cases whose group or name has
    that word. For changes smaller than the noise of ``nox -s bench``.
    """
    _install_everything(
        session, *_requirements(ROOT / "benchmarks" / "requirements.txt")
    )
    session.run("python", str(ROOT / "benchmarks" / "instructions.py"),
                *session.posargs)  # fmt: skip


# -- release (see docs/release.md) -----------------------------------------


@nox.session(python=DEFAULT_PYTHON)
def release(session: nox.Session) -> None:
    """Prepare a release: ``nox -s release -- <package> <major|minor|patch|X.Y.Z>``.

    Bumps the version, assembles the news fragments into the changelog,
    raises the pin on the package where its dependents need it and releases
    each dependent whose pins moved (the meta-package always), commits, tags
    ``<package>-v<version>``. Refuses a dirty tree; a rerun at the tag does
    nothing.
    """
    session.install(*RELEASE_REQUIREMENTS, env=QUIET)
    _tool(session, "release", "prepare", *session.posargs)


@nox.session(python=DEFAULT_PYTHON)
def build(session: nox.Session) -> None:
    """Build ``nox -s build [-- <package> ...]`` from the release tags into dist/.

    Each package is built from a clean checkout of its ``<dist>-v<version>``
    tag, then ``twine check --strict`` runs on the files.
    """
    session.install(*RELEASE_REQUIREMENTS, env=QUIET)
    _tool(session, "release", "build", *session.posargs)


@nox.session(python=DEFAULT_PYTHON)
def publish(session: nox.Session) -> None:
    """Upload dist/: ``nox -s publish -- <index-url> [<package> ...]``.

    The index may come from ``CC_PUBLISH_URL``, credentials from
    ``TWINE_USERNAME`` / ``TWINE_PASSWORD``. Uploads exactly the expected
    files; skips a file the index holds with the same content; refuses,
    uploading nothing, when it holds one of the same name with other content.
    """
    session.install(*RELEASE_REQUIREMENTS, env=QUIET)
    _tool(session, "release", "publish", *session.posargs)


@nox.session(python=DEFAULT_PYTHON, name="release-e2e")
def release_e2e(session: nox.Session) -> None:
    """Prove the release path twice over against a pypiserver on 127.0.0.1."""
    session.install(*RELEASE_REQUIREMENTS, "nox", "pypiserver>=2", "passlib", env=QUIET)
    _tool(session, "release_e2e")


# -- CI --------------------------------------------------------------------


@nox.session(python=False)
def ci(session: nox.Session) -> None:
    """Run every CI session, a few at a time, each as its own nox process.

    ``nox -- --single-python`` runs them all on the Python that runs nox (a
    machine with one interpreter); CI itself needs Python 3.10 to 3.13.
    ``-- --jobs N`` sets how many run at once.
    """
    session.run(
        sys.executable, "-m", "tools.ci", "--sessions", *CI_SESSIONS,
        "--pythons", *PYTHONS, *session.posargs, external=True,
    )  # fmt: skip
