"""Berth's one error root, and the errors of the catalog core.

Every error Berth raises on purpose derives from :class:`BerthError`: a stable
``code`` (the CLI maps it to an exit code), a ``message``, ``details`` (every problem,
``[{"path", "message"}]``) and an optional ``hint``. Errors carry data, not HTTP: the
server maps their class family to a status in one table (``server.errors``). The three
families of roots are :class:`CatalogError` (here), ``worker.errors.WorkerError`` and
``server.errors.ApiError``.

    BerthError                        code
    └── CatalogError                  catalog_error
        ├── NotFound                      not_found
        │   ├── PackageNotFound           package_not_found
        │   └── VersionNotFound           version_not_found
        ├── InvalidInput                  invalid
        │   ├── VersionError              invalid_version       (bad semver or range)
        │   ├── PackageInvalid            package_invalid       (lint: every problem)
        │   ├── OptionsInvalid            options_invalid       (every problem)
        │   ├── RenderError               render_failed         (template fault, limits)
        │   ├── SpecInvalid               spec_invalid          (rendered spec fails schema)
        │   ├── SpecRefused               spec_refused          (privileged, socket, host paths)
        │   └── BundleInvalid             bundle_invalid        (publishing: unsafe or bad bundle)
        ├── Conflict                      conflict
        │   ├── VersionExists             version_exists        (published versions are immutable)
        │   └── NameOwned                 name_owned            (the name belongs to others)
        ├── PlacementError                placement_failed      (not enough capacity, with reasons)
        └── RepositoryError               repository_error      (a source could not be read)

``details`` is a list of ``{"path": ..., "message": ...}``; ``path`` names the file and
the JSON path inside it (``config.json#/properties/port/default``) where it applies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "BerthError",
    "CatalogError",
    "NotFound",
    "PackageNotFound",
    "VersionNotFound",
    "InvalidInput",
    "VersionError",
    "PackageInvalid",
    "OptionsInvalid",
    "RenderError",
    "SpecInvalid",
    "SpecRefused",
    "BundleInvalid",
    "Conflict",
    "VersionExists",
    "NameOwned",
    "PlacementError",
    "RepositoryError",
    "Problem",
]

Problem = dict[str, str]


class BerthError(Exception):
    """Root of every error Berth raises on purpose: ``code``, ``message``, ``details``
    and ``hint``, the same to the API, the store front and the CLI."""

    code = "berth_error"

    def __init__(self, message: str, *, details: Iterable[Mapping[str, Any]] = (),
                 hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details: list[Problem] = [
            {"path": str(d.get("path", "")), "message": str(d.get("message", ""))}
            for d in details
        ]

    def to_dict(self) -> dict[str, Any]:
        """The JSON body every adapter shows: ``{"error", "message", "details"}``
        (and ``hint`` when there is one)."""
        body: dict[str, Any] = {"error": self.code, "message": self.message,
                                "details": self.details}
        if self.hint:
            body["hint"] = self.hint
        return body

    def __str__(self) -> str:
        if not self.details:
            return self.message
        lines = [self.message] + [f"  {d['path']}: {d['message']}" for d in self.details]
        return "\n".join(lines)


class CatalogError(BerthError):
    """Root of every error the catalog core raises (about a package, a version, a file)."""

    code = "catalog_error"

    def __init__(
        self,
        message: str,
        *,
        package: str | None = None,
        version: str | None = None,
        path: str | None = None,
        details: Iterable[Mapping[str, Any]] = (),
        hint: str | None = None,
    ) -> None:
        super().__init__(message, details=details, hint=hint)
        self.package = package
        self.version = version
        self.path = path


class NotFound(CatalogError):
    code = "not_found"


class PackageNotFound(NotFound):
    code = "package_not_found"


class VersionNotFound(NotFound):
    code = "version_not_found"


class InvalidInput(CatalogError):
    code = "invalid"


class VersionError(InvalidInput):
    code = "invalid_version"


class PackageInvalid(InvalidInput):
    code = "package_invalid"


class OptionsInvalid(InvalidInput):
    code = "options_invalid"


class RenderError(InvalidInput):
    code = "render_failed"


class SpecInvalid(InvalidInput):
    code = "spec_invalid"


class SpecRefused(InvalidInput):
    code = "spec_refused"


class BundleInvalid(InvalidInput):
    code = "bundle_invalid"


class Conflict(CatalogError):
    code = "conflict"


class VersionExists(Conflict):
    code = "version_exists"


class NameOwned(Conflict):
    """The package name belongs to another repository or to other maintainers."""

    code = "name_owned"


class PlacementError(CatalogError):
    code = "placement_failed"


class RepositoryError(CatalogError):
    code = "repository_error"
