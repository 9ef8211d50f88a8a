"""What the tooling reads from the packages, and the CI runner's own checks."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tools import ci, workspace

PACKAGES = workspace.load_packages()


def test_every_program_a_session_needs_has_its_debian_package() -> None:
    needed = {p for pkg in PACKAGES.values() for p in pkg.test_needs.programs}
    needed.add("chromium")  # the docs session's browser
    assert needed <= set(workspace.debian_packages())


def test_the_install_script_reads_the_same_list() -> None:
    script = (workspace.ROOT / "tools" / "system-packages.sh").read_text()
    assert "system-packages.txt" in script
    assert "apt-get install" in script


@pytest.mark.parametrize("extras", [False, True], ids=["installed", "pinned"])
def test_the_meta_package_needs_every_sibling_first(extras: bool) -> None:
    order = workspace.closure(workspace.META_PACKAGE, PACKAGES, extras=extras)
    assert order[-1] == workspace.META_PACKAGE
    for position, name in enumerate(order):
        for sibling in PACKAGES[name].siblings(PACKAGES, extras=extras):
            assert order.index(sibling) < position
    # Installing the meta-package brings no extra; releasing it pins them too.
    assert ("cc-redis" in order) is extras


def test_pins_list_dependencies_then_each_extra(tmp_path: Path) -> None:
    package = workspace.Package.load(_package(tmp_path, ""))
    assert package.pins() == []
    assert package.pins(extras=True) == [("redis", "redis")]
    assert package.siblings({"redis"}) == []
    assert package.siblings({"redis"}, extras=True) == ["redis"]


def _package(tmp_path: Path, tests_table: str) -> Path:
    package = tmp_path / "cc-demo"
    (package / "src" / "cc" / "demo").mkdir(parents=True)
    (package / "pyproject.toml").write_text(
        '[project]\nname = "cc-demo"\ndependencies = []\n'
        '[project.optional-dependencies]\nredis = ["redis"]\n' + tests_table
    )
    return package


def test_test_needs_are_read_and_checked(tmp_path: Path) -> None:
    package = workspace.Package.load(
        _package(
            tmp_path,
            '[tool.cc.tests]\nprograms = ["redis-server"]\nextras = ["redis"]\n',
        )
    )
    assert package.test_needs == workspace.TestNeeds(("redis-server",), ("redis",), ())
    assert package.module == "cc.demo"
    assert workspace.program_variable("redis-server") == "CC_REDIS_SERVER"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[tool.cc.tests]\nprogram = ["x"]\n', r"unknown keys \['program'\]"),
        ('[tool.cc.tests]\nprograms = "redis-server"\n', "must be a list"),
        ('[tool.cc.tests]\nextras = [""]\n', "non-empty strings"),
    ],
)
def test_bad_test_needs_are_refused_by_name(
    tmp_path: Path, table: str, message: str
) -> None:
    with pytest.raises(workspace.WorkspaceError, match=message):
        workspace.Package.load(_package(tmp_path, table))


def test_an_undeclared_test_extra_is_refused(tmp_path: Path) -> None:
    package = workspace.Package.load(
        _package(tmp_path, '[tool.cc.tests]\nextras = ["postgres"]\n')
    )
    with pytest.raises(workspace.WorkspaceError, match=r"extras \['postgres'\]"):
        package.test_extras_valid()


def test_ci_reports_missing_interpreters_before_starting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert ci.missing_pythons(["9.99"]) == ["9.99"]
    code = ci.main(["--sessions", "lint", "--pythons", "9.99"])
    assert code == 1
    err = capsys.readouterr().err
    assert "Python 9.99 not found" in err
    assert ci.SINGLE_PYTHON_COMMAND in err


def test_the_readme_names_the_single_python_command() -> None:
    readme = (workspace.ROOT / "README.md").read_text()
    assert ci.SINGLE_PYTHON_COMMAND in readme


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (workspace.ROOT / "README.md").read_text()
    command = re.search(r"```\n(bash tools/system-packages.sh && [^\n]+)\n```", readme)
    assert command is not None
    ci_run = (workspace.ROOT / ".ci" / "run").read_text().splitlines()
    assert command.group(1) in ci_run


def test_the_noxfile_stays_thin() -> None:
    lines = (workspace.ROOT / "noxfile.py").read_text().splitlines()
    assert len(lines) <= 450
    listed = subprocess.run(
        ["git", "-C", str(workspace.ROOT), "grep", "-n", "os.environ\\[", "noxfile.py"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert listed.stdout == "", "the noxfile must not change the environment"
