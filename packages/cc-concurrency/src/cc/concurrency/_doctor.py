"""Report what cc is installed and whether it fits together."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from importlib import metadata

from packaging.requirements import Requirement
from packaging.version import Version

__all__ = ["DistributionReport", "InstallReport", "inspect_installation"]

META_DISTRIBUTION = "cc-concurrency"
BACKENDS = ("asyncio", "uvloop", "trio")


@dataclass(frozen=True)
class DistributionReport:
    """One cc distribution required by the meta-package.

    :ivar name: the distribution name
    :ivar required: the version range the meta-package asks for
    :ivar installed: the installed version, or ``None`` if missing
    """

    name: str
    required: str
    installed: str | None

    @property
    def ok(self) -> bool:
        """Whether an installed version satisfies the required range."""
        if self.installed is None:
            return False
        spec = Requirement(f"{self.name}{self.required}").specifier
        return spec.contains(Version(self.installed), prereleases=True)


@dataclass(frozen=True)
class InstallReport:
    """Everything ``python -m cc.concurrency`` prints.

    :ivar meta_version: the installed cc-concurrency version
    :ivar distributions: the cc distributions it requires, with versions
    :ivar anyio_version: the installed anyio version
    :ivar backends: which async backends can be imported
    """

    meta_version: str
    distributions: tuple[DistributionReport, ...]
    anyio_version: str
    backends: dict[str, bool]

    @property
    def problems(self) -> list[str]:
        """Human-readable reasons why the installation is inconsistent."""
        out = []
        for dist in self.distributions:
            if dist.installed is None:
                out.append(f"{dist.name} is not installed (need {dist.required})")
            elif not dist.ok:
                out.append(
                    f"{dist.name} {dist.installed} is installed, but "
                    f"{META_DISTRIBUTION} {self.meta_version} needs "
                    f"{dist.name}{dist.required}"
                )
        return out


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def inspect_installation() -> InstallReport:
    """Collect versions, constraints and available backends."""
    meta_version = metadata.version(META_DISTRIBUTION)
    distributions = []
    for line in metadata.requires(META_DISTRIBUTION) or []:
        requirement = Requirement(line)
        if requirement.marker is not None or not requirement.name.startswith("cc-"):
            continue
        distributions.append(
            DistributionReport(
                name=requirement.name,
                required=str(requirement.specifier),
                installed=_installed(requirement.name),
            )
        )
    backends = {name: importlib.util.find_spec(name) is not None for name in BACKENDS}
    return InstallReport(
        meta_version=meta_version,
        distributions=tuple(sorted(distributions, key=lambda d: d.name)),
        anyio_version=_installed("anyio") or "not installed",
        backends=backends,
    )
