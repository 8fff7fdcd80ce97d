"""The public surface of ``catalog`` and its purity (no adapters imported)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import catalog

ROOT = Path(__file__).resolve().parents[3]


def test_exported_members() -> None:
    assert sorted(catalog.__all__) == sorted([
        "AgentView", "BundleInvalid", "Catalog", "CatalogError", "Conflict",
        "DEFAULT_ALLOWED_HOST_PATHS", "InvalidInput", "MASK", "NotFound", "OptionsInvalid",
        "Package", "PackageInvalid", "PackageNotFound", "Placement", "PlacementError",
        "PlacementRequest", "RenderError", "Repository", "RepositoryError", "SearchPage",
        "SpecInvalid", "SpecRefused", "Version", "VersionError", "VersionExists",
        "VersionNotFound", "VersionRange", "check_policy", "defaults_of", "lint_package_dir",
        "lint_paths", "load_package_dir", "load_repository_dir", "mask_secrets", "mask_spec",
        "parse_range", "parse_version", "place", "render_service", "resolve_options",
        "upgrade_options", "validate_spec",
    ])
    assert all(hasattr(catalog, name) for name in catalog.__all__)


def test_import_catalog_needs_no_adapter_library() -> None:
    script = textwrap.dedent("""
        import sys
        BLOCKED = {"flask", "celery", "redis", "docker", "requests", "kombu", "werkzeug"}

        class Blocker:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"{name} is blocked in this test")
                return None

        sys.meta_path.insert(0, Blocker())
        import catalog, catalog.loader, catalog.index, catalog.render, catalog.spec
        import catalog.options, catalog.placement, catalog.lint, catalog.sandbox
        repo, problems = catalog.load_repository_dir("universe", name="u")
        package = catalog.Catalog([repo]).resolve("hello")
        spec = catalog.render_service(package, catalog.resolve_options(package, {}),
                                      service_name="web")
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        assert not leaked, leaked
        print("ok", spec["image"])
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok ")
