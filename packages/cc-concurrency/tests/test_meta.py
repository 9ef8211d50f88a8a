from __future__ import annotations

import importlib
import subprocess
import sys
from importlib import metadata

import pytest

import cc.concurrency
from cc.concurrency import __main__ as cli
from cc.concurrency._doctor import (
    DistributionReport,
    InstallReport,
    inspect_installation,
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
    names = [d.name for d in report.distributions]
    assert names == ["cc-core-helpers", "cc-locks", "cc-primitives", "cc-queues"]
    assert all(d.ok for d in report.distributions)
    assert report.problems == []
    assert report.backends["asyncio"] is True
    text = cli.render(report)
    assert "cc-concurrency " + cc.concurrency.__version__ in text
    assert "backends available: asyncio" in text


def test_mismatched_and_missing_distributions_are_reported() -> None:
    report = InstallReport(
        meta_version="0.1.0",
        distributions=(
            DistributionReport("cc-locks", ">=0.2.0,<0.3", "0.1.0"),
            DistributionReport("cc-queues", ">=0.1.0,<0.2", None),
            DistributionReport("cc-primitives", ">=0.1.0,<0.2", "0.1.5"),
        ),
        anyio_version="4.5.0",
        backends={"asyncio": True, "uvloop": False, "trio": False},
    )
    assert len(report.problems) == 2
    assert report.problems[1] == "cc-queues is not installed (need >=0.1.0,<0.2)"
    assert report.problems[0].startswith("cc-locks 0.1.0 is installed, but")
    assert "needs cc-locks>=0.2.0,<0.3" in report.problems[0]
    text = cli.render(report)
    assert "MISMATCH" in text
    assert "not installed: uvloop, trio" in text


def test_main_exits_non_zero_on_mismatch(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = InstallReport(
        meta_version="0.1.0",
        distributions=(DistributionReport("cc-locks", ">=9", "0.1.0"),),
        anyio_version="4.5.0",
        backends={"asyncio": True, "uvloop": True, "trio": True},
    )
    monkeypatch.setattr(cli, "inspect_installation", lambda: bad)
    assert cli.main() == 1
    out = capsys.readouterr().out
    assert "do not fit together" in out
    assert "cc-locks 0.1.0 is installed" in out


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


def test_main_succeeds_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main() == 0
    assert "cc-primitives" in capsys.readouterr().out


def test_missing_distribution_reads_as_none() -> None:
    from cc.concurrency._doctor import _installed

    assert _installed("cc-no-such-distribution") is None
    assert _installed("anyio") == metadata.version("anyio")
