"""``python -m cc.concurrency`` (or ``cc-concurrency``): check the cc installation.

Prints the installed version of each cc distribution next to the range
cc-concurrency needs, anyio's version and the async backends available.
Exits with status 1 when a required distribution is missing, out of range
or cannot be imported, listing each problem with the command that repairs
it; an optional distribution (an extra such as ``cc-concurrency[redis]``) is
reported when installed and never a problem when absent. ``--help`` and
``--version`` behave as usual; an unknown option is a usage error (status 2).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cc.concurrency.__about__ import __version__

__all__ = ["build_parser", "main", "render"]

if TYPE_CHECKING:
    from cc.concurrency._doctor import InstallReport


def build_parser(prog: str = "cc-concurrency") -> argparse.ArgumentParser:
    """Return the command's argument parser."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Check that the installed cc distributions fit together: print the "
            "version of each next to the range cc-concurrency needs, anyio's "
            "version and the async backends available. Exit status 1, with "
            "the command that repairs each problem, when a distribution is "
            "missing, out of range or cannot be imported."
        ),
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"cc-concurrency {__version__}",
        help="print cc-concurrency's own version and exit",
    )
    return parser


def render(report: InstallReport) -> str:
    """Format an installation report as the text the command prints."""
    lines = [f"cc-concurrency {report.meta_version or __version__}", ""]
    if report.distributions:
        width = max(len(d.name) for d in report.distributions)
        for dist in report.distributions:
            needs = (
                f"optional: cc-concurrency[{dist.extra}], needs {dist.required}"
                if dist.extra is not None
                else f"needs {dist.required}"
            )
            lines.append(
                f"  {dist.name:<{width}}  {dist.installed or 'missing':<10} "
                f"({needs})  {dist.status}"
            )
        lines.append("")
    lines.append(f"  anyio {report.anyio_version}")
    lines.append("")
    available = [name for name, ok in report.backends.items() if ok]
    missing = [name for name, ok in report.backends.items() if not ok]
    lines.append(f"  backends available: {', '.join(available)}")
    if missing:
        lines.append(f"  not installed: {', '.join(missing)}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, *, prog: str = "cc-concurrency") -> int:
    """Run the command; return its exit status (1 if the installation is broken).

    :param argv: the arguments (``sys.argv[1:]`` when ``None``)
    :param prog: the command's name in usage and error messages
    """
    build_parser(prog).parse_args(argv)
    try:
        from cc.concurrency._doctor import inspect_installation
    except ImportError as exc:  # packaging, its own requirement, is missing
        print(
            f"error: {prog} cannot run: {exc}\n"
            "fix: pip install --upgrade --force-reinstall cc-concurrency",
            file=sys.stderr,
        )
        return 1
    report = inspect_installation()
    print(render(report))
    repairs = report.repairs
    if not repairs:
        return 0
    lines = ["", "error: the installed cc distributions do not fit together:"]
    for problem, command in repairs:
        lines.append(f"  - {problem}")
        lines.append(f"    fix: {command}")
    lines.append("or reinstall everything: pip install --upgrade cc-concurrency")
    print("\n".join(lines), file=sys.stderr)
    return 1


if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess
    sys.exit(main(prog="python -m cc.concurrency"))
