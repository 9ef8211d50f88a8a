"""Report what cc is installed, whether it fits together, and how to repair it."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from importlib import metadata

from packaging.requirements import Requirement
from packaging.version import InvalidVersion, Version

__all__ = [
    "DistributionReport",
    "InstallReport",
    "inspect_installation",
    "read_requirements",
]

META_DISTRIBUTION = "cc-concurrency"
BACKENDS = ("asyncio", "uvloop", "trio")


@dataclass(frozen=True)
class DistributionReport:
    """One cc distribution that the meta-package requires or offers as an extra.

    :ivar name: the distribution name, e.g. ``cc-queues``
    :ivar required: the version range the meta-package asks for
    :ivar installed: the installed version, or ``None`` if missing
    :ivar extra: for an optional distribution, the meta-package's extra that
        installs it (``cc-concurrency[redis]``); ``None`` if it is required
    :ivar import_error: why its module cannot be imported although it is
        installed (a dependency of its own is missing, say), else ``None``
    """

    name: str
    required: str
    installed: str | None
    extra: str | None = None
    import_error: str | None = None

    @property
    def module(self) -> str:
        """The module it ships: ``cc-core-helpers`` ships ``cc.core_helpers``."""
        return "cc." + self.name.removeprefix("cc-").replace("-", "_")

    @property
    def fits(self) -> bool:
        """Whether an installed version satisfies the required range."""
        if self.installed is None:
            return False
        try:
            version = Version(self.installed)
        except InvalidVersion:
            return False
        spec = Requirement(f"{self.name}{self.required}").specifier
        return spec.contains(version, prereleases=True)

    @property
    def ok(self) -> bool:
        """Whether it is installed, in range and importable."""
        return self.fits and self.import_error is None

    @property
    def status(self) -> str:
        """One word for the report's table."""
        if self.installed is None:
            return "optional" if self.extra is not None else "MISSING"
        if not self.fits:
            return "MISMATCH"
        return "BROKEN" if self.import_error is not None else "ok"

    @property
    def install_command(self) -> str:
        """The command that installs a version this meta-package accepts."""
        if self.installed is None and self.extra is not None:
            return f'pip install "{META_DISTRIBUTION}[{self.extra}]"'
        reinstall = "--force-reinstall " if self.fits else ""
        return f'pip install {reinstall}"{self.name}{self.required}"'

    def problem(self, meta_version: str) -> str | None:
        """Say what is wrong with this distribution, or ``None`` if nothing is.

        An optional distribution that is not installed is not a problem.
        """
        template = _PROBLEMS.get(self.status)
        if template is None:
            return None
        return template.format(
            self, meta=f"{META_DISTRIBUTION} {meta_version}", needs=self.required
        )


# What each status but "ok" and "optional" says, as str.format templates.
_PROBLEMS = {
    "MISSING": "{0.name} is not installed ({meta} needs {0.name}{needs})",
    "MISMATCH": "{0.name} {0.installed} is installed, but {meta} needs {0.name}{needs}",
    "BROKEN": (
        "{0.name} {0.installed} is installed, but {0.module} cannot be imported: "
        "{0.import_error}"
    ),
}


@dataclass(frozen=True)
class InstallReport:
    """Everything ``python -m cc.concurrency`` prints.

    :ivar meta_version: the installed cc-concurrency version, or ``None``
        when its files are imported without it being installed (then its
        requirements are unknown)
    :ivar distributions: the cc distributions it requires or offers, by name
    :ivar anyio_version: the installed anyio version
    :ivar backends: which async backends can be imported
    """

    meta_version: str | None
    distributions: tuple[DistributionReport, ...]
    anyio_version: str
    backends: dict[str, bool]

    @property
    def problems(self) -> list[str]:
        """What is wrong with the installation, one line per distribution."""
        return [p for p, _ in self.repairs]

    @property
    def repairs(self) -> list[tuple[str, str]]:
        """Each problem with the command that repairs it."""
        out = []
        if self.meta_version is None:
            out.append(
                (
                    f"{META_DISTRIBUTION} itself is not installed, so the versions "
                    "it needs are unknown",
                    f"pip install {META_DISTRIBUTION}",
                )
            )
        for dist in self.distributions:
            problem = dist.problem(self.meta_version or "")
            if problem is not None:
                out.append((problem, dist.install_command))
        return out


def read_requirements(
    lines: Iterable[str], extras: Iterable[str] = ()
) -> list[tuple[Requirement, str | None]]:
    """Pick the cc distributions out of the meta-package's requirement lines.

    :param lines: the meta-package's ``Requires-Dist`` lines
    :param extras: its ``Provides-Extra`` names
    :return: each cc requirement that applies here, with the extra that
        installs it (``None`` for a requirement of the meta-package itself);
        requirements of other platforms are left out
    """
    extras = tuple(extras)
    picked: list[tuple[Requirement, str | None]] = []
    for line in lines:
        requirement = Requirement(line)
        if not requirement.name.startswith("cc-"):
            continue
        marker = requirement.marker
        if marker is None or marker.evaluate({"extra": ""}):
            picked.append((requirement, None))
            continue
        extra = next((e for e in extras if marker.evaluate({"extra": e})), None)
        if extra is not None:
            picked.append((requirement, extra))
    return picked


def _range(requirement: Requirement) -> str:
    """Return the version range as people write it, lower bounds first: ``>=1,<2``."""
    specs = sorted(requirement.specifier, key=lambda s: (s.operator[0] != ">", str(s)))
    return ",".join(str(spec) for spec in specs)


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _import_error(module: str) -> str | None:
    try:
        importlib.import_module(module)
    except Exception as exc:  # reported, whatever broke the import
        return f"{type(exc).__name__}: {exc}"
    return None


def inspect_installation(
    installed: Callable[[str], str | None] = _installed,
) -> InstallReport:
    """Collect versions, ranges, import failures and available backends.

    :param installed: looks up an installed distribution's version (tests
        pass their own)
    """
    meta_version = installed(META_DISTRIBUTION)
    requirements: list[tuple[Requirement, str | None]] = []
    if meta_version is not None:
        meta = metadata.metadata(META_DISTRIBUTION)
        requirements = read_requirements(
            meta.get_all("Requires-Dist") or [], meta.get_all("Provides-Extra") or []
        )
    distributions = []
    for requirement, extra in requirements:
        report = DistributionReport(
            name=requirement.name,
            required=_range(requirement),
            installed=installed(requirement.name),
            extra=extra,
        )
        if report.fits:
            report = replace(report, import_error=_import_error(report.module))
        distributions.append(report)
    backends = {name: importlib.util.find_spec(name) is not None for name in BACKENDS}
    return InstallReport(
        meta_version=meta_version,
        distributions=tuple(sorted(distributions, key=lambda d: d.name)),
        anyio_version=installed("anyio") or "not installed",
        backends=backends,
    )
