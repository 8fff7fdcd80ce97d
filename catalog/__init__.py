"""Berth's pure core: packages, repositories, search, options, rendering, placement.

Nothing here imports Flask, Celery, redis, docker or requests; the only I/O is reading
the paths it is given. Adapters (``server``, ``worker``, the CLI) import from here.
"""

from __future__ import annotations

from .errors import (
    BundleInvalid,
    CatalogError,
    Conflict,
    InvalidInput,
    NotFound,
    OptionsInvalid,
    PackageInvalid,
    PackageNotFound,
    PlacementError,
    RenderError,
    RepositoryError,
    SpecInvalid,
    SpecRefused,
    VersionError,
    VersionExists,
    VersionNotFound,
)
from .index import Catalog, SearchPage
from .loader import lint_package_dir, lint_paths, load_package_dir, load_repository_dir
from .model import Package
from .options import MASK, defaults_of, mask_secrets, resolve_options, upgrade_options
from .placement import AgentView, Placement, PlacementRequest, place
from .render import render_service
from .repository import Repository
from .spec import DEFAULT_ALLOWED_HOST_PATHS, check_policy, mask_spec, validate_spec
from .version import Version, VersionRange, parse_range, parse_version

__all__ = [
    # errors
    "CatalogError", "NotFound", "PackageNotFound", "VersionNotFound", "InvalidInput",
    "VersionError", "PackageInvalid", "OptionsInvalid", "RenderError", "SpecInvalid",
    "SpecRefused", "BundleInvalid", "Conflict", "VersionExists", "PlacementError",
    "RepositoryError",
    # values
    "Version", "VersionRange", "parse_version", "parse_range", "Package", "Repository",
    # loading and linting
    "load_package_dir", "lint_package_dir", "load_repository_dir", "lint_paths",
    # the catalog
    "Catalog", "SearchPage",
    # options, rendering, the spec
    "resolve_options", "defaults_of", "mask_secrets", "upgrade_options", "MASK",
    "render_service", "validate_spec", "check_policy", "mask_spec",
    "DEFAULT_ALLOWED_HOST_PATHS",
    # placement
    "AgentView", "PlacementRequest", "Placement", "place",
]
