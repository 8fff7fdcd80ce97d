"""Accessibility: axe-core's WCAG 2 A/AA checks on the store front's main pages, offline.

axe-core comes from the npm registry (``npm install`` into ``test-artifacts/node``, a
git-ignored folder, on first use). The pages are served by the real app factory on a
loopback port (``local_store``: real Redis, the shipped universe); the browser context
bypasses the CSP only so that axe's own script can be injected.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
AXE_DIR = ROOT / "test-artifacts" / "node"
AXE_VERSION = "4.14.1"
AXE_JS = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
PAGES = [
    "/",
    "/?q=data",
    "/packages/hello",
    "/packages/postgres",
    "/packages/hello/install",
    "/login",
    "/services",
    "/agents",
    "/repositories",
    "/deployments",
]


@pytest.fixture(scope="session")
def axe_script() -> Path:
    """axe-core's browser script, installed from npm when missing."""
    if not AXE_JS.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is needed to install axe-core (make deps installs it)",
                        pytrace=False)
        AXE_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                npm,
                "install",
                "--no-save",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(AXE_DIR),
                f"axe-core@{AXE_VERSION}",
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return AXE_JS


def test_pages_pass_axe_wcag_checks(browser: Any, axe_script: Path, local_store: Any) -> None:
    base, token = local_store
    context = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(base + "/login")
        page.get_by_label("API token").fill(token)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(base + "/")
        failures = {}
        for path in PAGES:
            page.goto(base + path)
            failures.update(_violations(page, path, axe_script))
        page.goto(base + "/packages/hello/install")
        page.get_by_label("Memory (MiB)").fill("100000")
        page.get_by_role("button", name="Review").click()
        failures.update(_violations(page, "install with errors", axe_script))
        assert failures == {}
    finally:
        context.close()


def _violations(page: Any, label: str, axe_script: Path) -> dict[str, list[str]]:
    """axe's WCAG 2 A/AA violations on the current page: ``{page: [rule: targets]}``."""
    page.add_script_tag(path=str(axe_script))
    result = page.evaluate(
        "async () => (await axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})).violations.map("
        "v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))"
    )
    return {label: result} if result else {}
