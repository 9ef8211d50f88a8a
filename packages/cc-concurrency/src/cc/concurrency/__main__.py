"""``python -m cc.concurrency``: print installed cc versions and backends.

Exits with status 1 and says why when the installed cc distributions do not
satisfy the meta-package's own version ranges.
"""

from __future__ import annotations

import sys

from cc.concurrency._doctor import InstallReport, inspect_installation

__all__ = ["main", "render"]


def render(report: InstallReport) -> str:
    """Format an installation report as the text the command prints."""
    lines = [f"cc-concurrency {report.meta_version}", ""]
    width = max(len(d.name) for d in report.distributions)
    for dist in report.distributions:
        mark = "ok" if dist.ok else "MISMATCH"
        lines.append(
            f"  {dist.name:<{width}}  {dist.installed or 'missing':<10} "
            f"(needs {dist.required})  {mark}"
        )
    lines += ["", f"  anyio {report.anyio_version}", ""]
    available = [name for name, ok in report.backends.items() if ok]
    missing = [name for name, ok in report.backends.items() if not ok]
    lines.append(f"  backends available: {', '.join(available)}")
    if missing:
        lines.append(f"  not installed: {', '.join(missing)}")
    return "\n".join(lines)


def main() -> int:
    """Print the report; return 1 if the installation is inconsistent."""
    report = inspect_installation()
    print(render(report))
    if report.problems:
        print("\nerror: the installed cc distributions do not fit together:")
        for problem in report.problems:
            print(f"  - {problem}")
        print("fix: pip install --upgrade cc-concurrency")
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess
    sys.exit(main())
