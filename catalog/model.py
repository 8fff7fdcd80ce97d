"""The package model: one immutable :class:`Package` per package version.

A ``Package`` is what every other part reads: the store front shows it, the API
serializes it (``to_dict``/``summary``), ``render`` turns it into a service spec. It is
built by the loader (native folders), by ``catalog.dcos`` (DC/OS Universe packages) and
by the publishing code (bundles). Dict fields (``config_schema``, ``resource``) may be
shared between packages with identical files: treat them as read-only.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .version import Version

__all__ = ["Package", "FORMATS", "sort_key"]

FORMATS = ("berth", "dcos")
_SAFE_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def sort_key(order: Any) -> tuple[Any, ...]:
    """A key that orders ``Package.order`` values of any kind (newest last)."""
    if isinstance(order, Version):
        return (2, order.key)
    if isinstance(order, (int, float)):
        return (1, order)
    if isinstance(order, tuple):
        return (1, order)
    return (0, str(order))


@dataclass(frozen=True, slots=True, eq=False)
class Package:
    """One version of one package, as loaded from a repository."""

    name: str
    version: str
    semver: Version | None = None
    order: Any = None
    description: str = ""
    maintainer: str = ""
    tags: tuple[str, ...] = ()
    title: str = ""
    website: str | None = None
    licenses: tuple[Mapping[str, str], ...] = ()
    featured: bool = False
    pre_install_notes: str | None = None
    post_install_notes: str | None = None
    post_uninstall_notes: str | None = None
    upgrades_from: str | None = None
    min_berth_version: str | None = None
    config_schema: dict[str, Any] = field(default_factory=dict)
    resource: dict[str, Any] = field(default_factory=dict)
    template: str = ""
    readme: str = ""
    format: Literal["berth", "dcos"] = "berth"
    repository: str = ""
    path: Path | None = None
    upstream_version: str | None = None
    unsupported: tuple[str, ...] = ()
    yanked: str | None = None
    files: Mapping[str, bytes] | None = None
    tests: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.order is None:
            object.__setattr__(self, "order", self.semver if self.semver else self.version)
        if not self.title:
            object.__setattr__(self, "title", self.name)
        object.__setattr__(self, "tags", tuple(self.tags))
        object.__setattr__(self, "licenses", tuple(self.licenses))
        object.__setattr__(self, "unsupported", tuple(self.unsupported))

    # identity -------------------------------------------------------------------
    @property
    def key(self) -> tuple[str, str, str]:
        """``(repository, name, version)``: what identifies a package version."""
        return (self.repository, self.name, self.version)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Package):
            return NotImplemented
        return self.key == other.key and self.format == other.format

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        where = f" from {self.repository!r}" if self.repository else ""
        return f"<Package {self.name}@{self.version}{where}>"

    # derived --------------------------------------------------------------------
    @property
    def installable(self) -> bool:
        """True when nothing keeps this version from running on Docker hosts."""
        return not self.unsupported and not self.yanked

    @property
    def sort_key(self) -> tuple[Any, ...]:
        """Orders versions of one name (newest last)."""
        return sort_key(self.order)

    @property
    def images(self) -> dict[str, str]:
        """``resource.assets.container.docker``: image name → reference."""
        docker = self.resource.get("assets", {}).get("container", {}).get("docker", {})
        return dict(docker) if isinstance(docker, Mapping) else {}

    @property
    def icon(self) -> str | None:
        """The icon's file name or URL, if the package has one."""
        images = self.resource.get("images") or {}
        icon = images.get("icon") if isinstance(images, Mapping) else None
        return icon if isinstance(icon, str) else None

    @property
    def screenshots(self) -> tuple[str, ...]:
        """Screenshot file names or URLs."""
        images = self.resource.get("images") or {}
        shots = images.get("screenshots") if isinstance(images, Mapping) else None
        return tuple(s for s in shots or () if isinstance(s, str))

    def read_file(self, name: str) -> bytes | None:
        """The bytes of an extra file (icon, screenshot) of this package, or None.

        Looks in ``files`` first, then in the package folder; names with folders or
        ``..`` are never read.
        """
        if not _SAFE_FILE.fullmatch(name) or posixpath.basename(name) != name:
            return None
        if self.files is not None:
            return self.files.get(name)
        if self.path is None:
            return None
        target = Path(self.path) / name
        try:
            if target.is_symlink() or not target.is_file():
                return None
            return target.read_bytes()
        except OSError:
            return None

    # views ----------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """What a search result shows."""
        return {
            "name": self.name,
            "version": self.version,
            "title": self.title,
            "description": self.description,
            "tags": list(self.tags),
            "featured": self.featured,
            "repository": self.repository,
            "format": self.format,
            "icon": self.icon,
            "installable": self.installable,
            "unsupported": list(self.unsupported),
            "yanked": self.yanked,
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything the package page and the API show (JSON-ready)."""
        data = self.summary()
        data.update({
            "maintainer": self.maintainer,
            "website": self.website,
            "licenses": [dict(lic) for lic in self.licenses],
            "upstreamVersion": self.upstream_version,
            "preInstallNotes": self.pre_install_notes,
            "postInstallNotes": self.post_install_notes,
            "postUninstallNotes": self.post_uninstall_notes,
            "upgradesFrom": self.upgrades_from,
            "minBerthVersion": self.min_berth_version,
            "tests": self.tests,
            "config": self.config_schema,
            "resource": self.resource,
            "images": self.images,
            "screenshots": list(self.screenshots),
            "readme": self.readme,
        })
        return data
