from __future__ import annotations

import importlib
import subprocess
import sys
from importlib import metadata

import pytest
from packaging.requirements import Requirement

import cc.concurrency
from cc.concurrency import __main__ as cli
from cc.concurrency import _doctor as doctor
from cc.concurrency import _reexport as reexport
from cc.concurrency._doctor import (
    DistributionReport,
    InstallReport,
    _range,
    inspect_installation,
    read_requirements,
)

PACKAGES = ["cc.primitives", "cc.core_helpers", "cc.queues", "cc.locks"]


def test_reexports_every_public_name_of_the_four_packages() -> None:
    expected = {"__version__"}
    for module_name in PACKAGES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            assert getattr(cc.concurrency, name) is getattr(module, name), name
        expected |= set(module.__all__)
    assert set(cc.concurrency.__all__) == expected
    assert len(cc.concurrency.__all__) == len(expected)  # no duplicates


def test_version_is_the_distribution_version() -> None:
    assert cc.concurrency.__version__ == metadata.version("cc-concurrency")


def test_report_of_a_consistent_installation() -> None:
    report = inspect_installation()
    required = [d.name for d in report.distributions if d.extra is None]
    assert required == ["cc-core-helpers", "cc-locks", "cc-primitives", "cc-queues"]
    assert all(d.ok for d in report.distributions if d.installed is not None)
    assert report.problems == []
    assert report.backends["asyncio"] is True
    text = cli.render(report)
    assert "cc-concurrency " + cc.concurrency.__version__ in text
    assert "backends available: asyncio" in text


def _report(*distributions: DistributionReport) -> InstallReport:
    return InstallReport(
        meta_version="0.1.0",
        distributions=distributions,
        anyio_version="4.5.0",
        backends={"asyncio": True, "uvloop": False, "trio": False},
    )


def test_mismatched_missing_and_broken_distributions_are_reported() -> None:
    report = _report(
        DistributionReport("cc-locks", ">=0.2.0,<0.3", "0.1.0"),
        DistributionReport("cc-queues", ">=0.1.0,<0.2", None),
        DistributionReport("cc-primitives", ">=0.1.0,<0.2", "0.1.5"),
        DistributionReport(
            "cc-core-helpers", ">=0.1.0,<0.2", "0.1.0", import_error="E: boom"
        ),
        DistributionReport("cc-odd", ">=1", "not a version"),
    )
    assert report.repairs == [
        (
            "cc-locks 0.1.0 is installed, but cc-concurrency 0.1.0 needs "
            "cc-locks>=0.2.0,<0.3",
            'pip install "cc-locks>=0.2.0,<0.3"',
        ),
        (
            "cc-queues is not installed (cc-concurrency 0.1.0 needs "
            "cc-queues>=0.1.0,<0.2)",
            'pip install "cc-queues>=0.1.0,<0.2"',
        ),
        (
            "cc-core-helpers 0.1.0 is installed, but cc.core_helpers cannot be "
            "imported: E: boom",
            'pip install --force-reinstall "cc-core-helpers>=0.1.0,<0.2"',
        ),
        (
            "cc-odd not a version is installed, but cc-concurrency 0.1.0 needs "
            "cc-odd>=1",
            'pip install "cc-odd>=1"',
        ),
    ]
    assert len(report.problems) == 4
    text = cli.render(report)
    for status in ("MISMATCH", "MISSING", "BROKEN", "  ok"):
        assert status in text
    assert "not installed: uvloop, trio" in text


def test_an_optional_distribution_is_reported_but_never_required() -> None:
    absent = DistributionReport("cc-redis", ">=0.1.0,<0.2", None, extra="redis")
    assert absent.problem("0.1.0") is None
    assert absent.status == "optional"
    assert absent.install_command == 'pip install "cc-concurrency[redis]"'
    assert _report(absent).problems == []
    text = cli.render(_report(absent))
    assert "cc-redis  missing    (optional: cc-concurrency[redis], needs" in text

    present = DistributionReport("cc-redis", ">=0.1.0,<0.2", "0.1.0", extra="redis")
    assert present.ok and present.status == "ok"
    mismatched = DistributionReport("cc-redis", ">=0.1.0,<0.2", "0.3.0", extra="redis")
    assert _report(mismatched).repairs == [
        (
            "cc-redis 0.3.0 is installed, but cc-concurrency 0.1.0 needs "
            "cc-redis>=0.1.0,<0.2",
            'pip install "cc-redis>=0.1.0,<0.2"',
        )
    ]


def test_requirements_and_extras_are_read_from_the_metadata_lines() -> None:
    picked = read_requirements(
        [
            "packaging>=23",
            "cc-primitives>=0.1.0,<0.2",
            'cc-redis>=0.1.0,<0.2; extra == "redis"',
            'cc-winonly>=1; sys_platform == "nonexistent-platform"',
            'cc-other>=1; extra == "other" and sys_platform == "nonexistent"',
            'cc-docs>=1; extra == "docs"',
        ],
        ["redis", "docs", "other"],
    )
    assert [(str(r), extra) for r, extra in picked] == [
        ("cc-primitives<0.2,>=0.1.0", None),
        ('cc-redis<0.2,>=0.1.0; extra == "redis"', "redis"),
        ('cc-docs>=1; extra == "docs"', "docs"),
    ]


def test_ranges_are_shown_lower_bound_first() -> None:
    assert _range(Requirement("cc-x<0.2,>=0.1.0")) == ">=0.1.0,<0.2"
    assert _range(Requirement("cc-x!=1.5,<2,>1")) == ">1,!=1.5,<2"
    assert _range(Requirement("cc-x")) == ""


def test_a_meta_package_that_is_not_installed_is_a_problem() -> None:
    report = inspect_installation(
        installed=lambda name: None if name == "cc-concurrency" else "1.0"
    )
    assert report.meta_version is None
    assert report.distributions == ()
    assert report.repairs == [
        (
            "cc-concurrency itself is not installed, so the versions it needs are "
            "unknown",
            "pip install cc-concurrency",
        )
    ]
    assert cli.render(report).startswith(f"cc-concurrency {cc.concurrency.__version__}")


def test_main_exits_non_zero_on_mismatch(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _report(DistributionReport("cc-locks", ">=9", "0.1.0"))
    monkeypatch.setattr(doctor, "inspect_installation", lambda: bad)
    assert cli.main([]) == 1
    out, err = capsys.readouterr()
    assert "cc-locks  0.1.0      (needs >=9)  MISMATCH" in out
    assert "do not fit together" in err
    assert "cc-locks 0.1.0 is installed" in err
    assert 'fix: pip install "cc-locks>=9"' in err
    assert "or reinstall everything: pip install --upgrade cc-concurrency" in err


def test_main_succeeds_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 0
    out, err = capsys.readouterr()
    assert "cc-primitives" in out
    assert err == ""


def test_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as version:
        cli.main(["--version"])
    assert version.value.code == 0
    assert capsys.readouterr().out == f"cc-concurrency {cc.concurrency.__version__}\n"
    with pytest.raises(SystemExit) as helped:
        cli.main(["--help"], prog="python -m cc.concurrency")
    assert helped.value.code == 0
    assert capsys.readouterr().out.startswith("usage: python -m cc.concurrency")
    with pytest.raises(SystemExit) as wrong:
        cli.main(["--nope"])
    assert wrong.value.code == 2
    assert "unrecognized arguments: --nope" in capsys.readouterr().err


def test_main_reports_a_missing_packaging_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "cc.concurrency._doctor", None)
    assert cli.main([]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cc-concurrency cannot run: ")
    assert "pip install --upgrade --force-reinstall cc-concurrency" in err


def test_a_name_that_could_not_be_imported_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert not reexport.failures()  # everything imported in this environment
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        cc.concurrency.nope  # type: ignore[attr-defined]  # noqa: B018
    monkeypatch.setattr(reexport, "_failures", {})
    monkeypatch.setitem(sys.modules, "cc.queues", None)  # as if not installed
    for name in reexport.NAMES["cc-queues"]:  # a reload keeps what was bound
        monkeypatch.delattr(cc.concurrency, name)
    try:
        module = importlib.reload(cc.concurrency)
        assert reexport.failures() == {
            "cc-queues": "ModuleNotFoundError: import of cc.queues halted; "
            "None in sys.modules"
        }
        assert "WorkQueue" in module.__all__
        with pytest.raises(ImportError) as error:
            module.WorkQueue  # noqa: B018
        assert not isinstance(error.value, AttributeError)
        assert str(error.value).startswith(
            "cc.concurrency.WorkQueue is not available because these cc "
            "distributions could not be imported: cc-queues (ModuleNotFoundError: "
        )
        assert "Run `python -m cc.concurrency` to check" in str(error.value)
        assert module.Lock is sys.modules["cc.primitives"].Lock
        assert not hasattr(module, "nope")
    finally:
        monkeypatch.undo()
        importlib.reload(cc.concurrency)


def test_python_dash_m_runs_and_succeeds() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cc.concurrency"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for dist in ("cc-primitives", "cc-core-helpers", "cc-queues", "cc-locks"):
        assert dist in proc.stdout
    assert "anyio" in proc.stdout


def test_missing_distribution_reads_as_none() -> None:
    from cc.concurrency._doctor import _installed

    assert _installed("cc-no-such-distribution") is None
    assert _installed("anyio") == metadata.version("anyio")


def test_import_failures_are_described() -> None:
    from cc.concurrency._doctor import _import_error

    assert _import_error("cc.primitives") is None
    assert _import_error("cc.no_such_module") == (
        "ModuleNotFoundError: No module named 'cc.no_such_module'"
    )


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:  # an extra that is not installed
        return None


def test_a_version_out_of_range_is_not_imported() -> None:
    report = inspect_installation(
        installed=lambda name: "9.9" if name == "cc-locks" else _version(name)
    )
    (locks,) = [d for d in report.distributions if d.name == "cc-locks"]
    assert locks.status == "MISMATCH" and locks.import_error is None
