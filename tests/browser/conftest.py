"""Browser fixtures: Debian's Chromium driven by Playwright, against the live server.

Screenshots go to ``test-artifacts/screenshots/`` (git-ignored). Every page's console
errors are collected: a CSP violation (an inline script or style) shows up there.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.live_server import free_port
from worker.store.crypto import generate_key

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("BERTH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make deps` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Session:
    """A logged-in browser page, with screenshots and the console errors seen."""

    def __init__(self, page: Any, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.console_errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.console_errors.append(str(exc)))

    def _console(self, message: Any) -> None:
        # A form answered 422 (a validation error shown in the page) is expected.
        if message.type == "error" and "status of 422" not in message.text:
            self.console_errors.append(message.text)

    def goto(self, path: str) -> Any:
        return self.page.goto(self.base_url + path)

    def shot(self, name: str, *, full_page: bool = True) -> Path:
        """Write a screenshot of the current page as a test artefact."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / (re.sub(r"[^a-z0-9-]+", "-", name.lower()) + ".png")
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def login(self, token: str) -> None:
        """Log in through the store front's form with an API token."""
        self.goto("/login")
        self.page.get_by_label("API token").fill(token)
        self.page.get_by_role("button", name="Log in").click()
        self.page.wait_for_url(re.compile(r".*/$"))


@pytest.fixture
def session(browser: Any, live_server: Any) -> Iterator[Session]:
    """A fresh browser context at laptop size, logged in as an admin."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        current = Session(page, live_server.url)
        current.login(live_server.admin_token)
        yield current
    finally:
        context.close()


@pytest.fixture(scope="session")
def local_store(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The store front on a loopback port, with an admin token."""
    from werkzeug.serving import make_server

    from catalog.index import Catalog
    from catalog.loader import load_repository_dir
    from server.app import create_app
    from server.auth import create_token
    from tests.unit.storefront.conftest import StaticSource

    universe, _ = load_repository_dir(
        ROOT / "universe", name="universe", priority=100, kind="builtin"
    )
    url = redis_url.replace("db=0", "db=6") if "db=" in redis_url else redis_url
    app = create_app(
        {
            "BERTH_REDIS_URL": url,
            "BERTH_SECRET_KEY": "a11y",
            "BERTH_ALLOW_HOST_NETWORK": "true",  # the universe's packages, as on the bed
            "BERTH_DATA_KEY": generate_key(),
            "CATALOG": StaticSource(Catalog([universe])),
            "ENQUEUE": lambda name, args: None,
        }
    )
    with app.app_context():
        _record, token = create_token(app.extensions["berth"].store, name="a11y", role="admin")
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}", token
    finally:
        server.shutdown()
        thread.join(timeout=10)
