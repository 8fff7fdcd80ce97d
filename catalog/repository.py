"""A repository: a named, prioritized set of packages from one source.

Sources are a folder (``directory``; the shipped ``universe/`` is the ``builtin`` one),
packages published to this Berth (``hosted``), a static index on the web (``remote``)
and a DC/OS Universe (``dcos``). Whatever the source, the catalog sees this value.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from .model import Package

__all__ = ["Repository", "KINDS"]

KINDS = ("builtin", "directory", "hosted", "remote", "dcos")
Kind = Literal["builtin", "directory", "hosted", "remote", "dcos"]


@dataclass(frozen=True, slots=True)
class Repository:
    """One package source; a lower ``priority`` wins when two hold the same name."""

    name: str
    priority: int = 100
    kind: Kind = "directory"
    location: str = ""
    packages: tuple[Package, ...] = ()
    stale: bool = False
    error: str | None = None
    fetched_at: float | None = None
    problems: tuple[dict[str, str], ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "packages", tuple(self.packages))
        object.__setattr__(self, "problems", tuple(self.problems))

    def with_packages(self, packages: tuple[Package, ...] | list[Package]) -> Repository:
        """A copy holding ``packages`` instead."""
        return replace(self, packages=tuple(packages))

    def summary(self) -> dict[str, Any]:
        """What the API shows of a repository."""
        return {
            "name": self.name,
            "priority": self.priority,
            "kind": self.kind,
            "location": self.location,
            "packages": len({p.name for p in self.packages}),
            "versions": len(self.packages),
            "stale": self.stale,
            "error": self.error,
            "fetched_at": self.fetched_at,
            "problems": len(self.problems),
        }
