"""The store front in a real browser against the real local system (test bed + server).

Search, open a package, fill the generated form (a validation error shown beside its
field, then fixed), review, install ``hello`` with 3 instances, watch the progress
reach healthy without reloading, scale to 2, uninstall. Screenshots of each page are
written to ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

DEPLOY_TIMEOUT = 180_000  # ms: image load, three containers, health checks


def wait_for_deployment(session: Any, name: str) -> None:
    """Stay on the deployment page until it succeeds (it updates itself by polling)."""
    page = session.page
    expect(page).to_have_url(re.compile(r".*/deployments/d-[0-9a-f]+(\?.*)?$"))
    expect(page.locator("#deployment-status")).to_contain_text("succeeded", timeout=DEPLOY_TIMEOUT)
    session.shot(name)


def test_search_install_scale_uninstall(session: Any) -> None:
    page = session.page
    service = "web-" + secrets.token_hex(3)

    session.goto("/")
    expect(page.get_by_role("heading", name="Catalog", level=1)).to_be_visible()
    session.shot("01-catalog")
    page.get_by_label("Search packages").press_sequentially("hell", delay=30)
    expect(page).to_have_url(re.compile(r".*[?&]q=hell"))  # results swapped in, no reload
    results = page.locator("#results")
    expect(results.get_by_role("link", name="Hello", exact=True)).to_be_visible()
    session.shot("02-search")

    results.get_by_role("link", name="Hello", exact=True).click()
    expect(page.get_by_role("heading", name="Hello", level=1)).to_be_visible()
    session.shot("03-package")

    page.get_by_role("link", name=re.compile(r"^Install ")).click()
    expect(page.get_by_role("heading", name="Install Hello", level=1)).to_be_visible()
    session.shot("04-install-form")
    page.get_by_label("Service name").fill(service)
    page.get_by_label("Instances").fill("3")
    memory = page.get_by_label("Memory (MiB)")
    memory.fill("4096")
    page.get_by_role("button", name="Review").click()

    memory = page.get_by_label("Memory (MiB)")
    expect(memory).to_have_attribute("aria-invalid", "true")
    error_id = memory.get_attribute("aria-describedby").split()[-1]
    expect(page.locator(f"#{error_id}")).to_contain_text("512")
    expect(page.get_by_label("Service name")).to_have_value(service)
    session.shot("05-install-error")
    memory.fill("32")
    page.get_by_label("Message").fill("Hello from the browser test")
    page.get_by_role("button", name="Review").click()

    expect(page.get_by_role("heading", name="Review the install")).to_be_visible()
    expect(page.locator("pre.spec").first).to_contain_text("Hello from the browser test")
    session.shot("06-review")
    page.get_by_role("button", name="Install", exact=True).click()

    expect(page.locator("[data-count=healthy]")).to_have_text("3", timeout=DEPLOY_TIMEOUT)
    wait_for_deployment(session, "07-deployment-healthy")
    expect(page.get_by_role("heading", name="Notes from the package")).to_be_visible()

    session.goto(f"/services/{service}")
    rows = page.locator("table.data").first.locator("tbody tr")
    expect(rows).to_have_count(3)
    expect(page.locator("table.data").first).not_to_contain_text("unhealthy")
    session.shot("08-service")

    page.get_by_role("link", name="Logs").first.click()
    expect(page.locator("pre.logs")).to_be_visible()
    session.shot("09-logs")

    session.goto(f"/services/{service}")
    page.get_by_role("spinbutton", name="Instances").fill("2")
    page.get_by_role("button", name="Scale").click()
    wait_for_deployment(session, "10-scaled")
    session.goto(f"/services/{service}")
    expect(page.locator("table.data").first.locator("tbody tr")).to_have_count(2)

    uninstall = page.get_by_role("button", name=f"Uninstall {service}")
    expect(uninstall).to_be_disabled()  # until the name is typed
    page.get_by_label("Type").fill(service)
    expect(uninstall).to_be_enabled()
    session.shot("11-uninstall-confirm", full_page=False)
    uninstall.click()
    wait_for_deployment(session, "12-uninstalled")
    expect(page.get_by_role("heading", name="After uninstalling")).to_be_visible()

    session.goto("/services")
    expect(page.locator("main")).not_to_contain_text(service)
    session.shot("13-services")
    assert session.console_errors == []


def test_agents_and_repositories_pages(session: Any) -> None:
    page = session.page
    session.goto("/agents")
    expect(page.get_by_role("heading", name="agent-1")).to_be_visible()
    expect(page.locator("[role=meter]").first).to_be_visible()
    session.shot("20-agents")
    session.goto("/repositories")
    expect(page.get_by_role("link", name="universe")).to_be_visible()
    session.shot("21-repositories")
    page.set_viewport_size({"width": 390, "height": 844})
    session.goto("/")
    session.shot("22-catalog-phone", full_page=False)
    session.goto("/packages/hello")
    session.shot("23-package-phone", full_page=False)
    assert session.console_errors == []
