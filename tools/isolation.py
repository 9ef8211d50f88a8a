"""Prove that each package imports no sibling its pyproject does not declare.

Run by ``nox -s isolation`` (``python -m tools.isolation``) in an
environment with uv. Two checks:

* static: every ``cc.<name>`` module a package's sources import is the
  package's own or one of its declared siblings;
* dynamic: each package's wheel, installed *by name* in a fresh environment
  (the resolver finds the siblings among the fresh wheels from the declared
  dependencies alone), imports its public module and loads no other cc
  module; the environment holds exactly the package and its closure, and no
  pydantic unless cc-queues is in it.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from tools.workspace import ROOT, Package, closure, load_packages, requirement_name

_PROBE = """\
import importlib, json, sys
importlib.import_module(sys.argv[1])
loaded = sorted({".".join(m.split(".")[:2]) for m in sys.modules
                 if m.startswith("cc.")})
from importlib import metadata
print(json.dumps({"loaded": loaded, "installed": sorted(
    d.metadata["Name"].lower() for d in metadata.distributions())}))
"""


def imported_cc_modules(source_root: Path) -> set[str]:
    """Return the ``cc.<name>`` modules the sources under ``source_root`` import."""
    found: set[str] = set()
    for path in source_root.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
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


def static_failures(packages: dict[str, Package]) -> list[str]:
    """Return one sentence per undeclared sibling import in the sources."""
    owner = {package.module: name for name, package in packages.items()}
    failures = []
    for name, package in packages.items():
        allowed = {packages[s].module for s in package.siblings(packages)}
        allowed.add(package.module)
        # A sibling named by an extra (cc-concurrency[redis]: cc.redis) may be
        # imported, guarded, by the package that offers the extra.
        allowed |= {
            packages[name].module
            for requirements in package.optional.values()
            for name in map(requirement_name, requirements)
            if name in packages
        }
        for module in sorted(imported_cc_modules(package.path / "src") - allowed):
            failures.append(
                f"{name} imports {module} ({owner.get(module, '?')}) without "
                "declaring it in its pyproject dependencies"
            )
    return failures


def _run(*command: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def dynamic_failures(packages: dict[str, Package], work: Path) -> list[str]:
    """Install each wheel alone by name and see what it loads and pulls in."""
    wheels = work / "wheels"
    for package in packages.values():
        _run("uv", "build", "--quiet", "--no-progress", "--wheel",
             "--out-dir", str(wheels), str(package.path))  # fmt: skip
    failures = []
    for name, package in packages.items():
        env = work / name
        _run("uv", "venv", "--quiet", "--python", sys.executable, str(env))
        python = str(env / "bin" / "python")
        _run("uv", "pip", "install", "--quiet", "--no-progress", "--python", python,
             "--find-links", str(wheels), name)  # fmt: skip
        report = json.loads(_run(python, "-c", _PROBE, package.module))
        expected = sorted(closure(name, packages))
        permitted = {packages[dist].module for dist in expected}
        cc_installed = [d for d in report["installed"] if d.startswith("cc-")]
        print(
            f"isolation: {name}: loaded {', '.join(report['loaded'])}; installed "
            f"{', '.join(report['installed'])}",
            flush=True,
        )
        extra = sorted(set(report["loaded"]) - permitted)
        if extra:
            failures.append(f"{name} loaded undeclared siblings: {extra}")
        if cc_installed != expected:
            failures.append(f"{name} installed {cc_installed}, expected {expected}")
        if "cc-queues" not in expected and "pydantic" in report["installed"]:
            failures.append(f"{name} pulled in pydantic without needing it")
    return failures


def main() -> int:
    """Run both checks; print every failure and exit 1 if there is one."""
    packages = load_packages(ROOT)
    failures = static_failures(packages)
    with tempfile.TemporaryDirectory(prefix="cc-isolation-") as tmp:
        failures += dynamic_failures(packages, Path(tmp))
    if failures:
        print("isolation failed:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    print(f"isolation: all {len(packages)} packages import only what they declare")
    return 0


if __name__ == "__main__":
    sys.exit(main())
