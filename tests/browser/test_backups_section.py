"""The Backups section in a real browser against the real local system: back up a testdb
service from its page, see the backup listed, restore it after typing the service's
name, and the data written through redis-cli is back."""

from __future__ import annotations

import re
import secrets
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import expect

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from cluster_support import until  # noqa: E402
from stateful_support import TestDb, checksum, sample  # noqa: E402

pytestmark = pytest.mark.browser

DEPLOY_TIMEOUT = 180_000  # ms


def _api(live_server: Any, method: str, path: str, **kwargs: Any) -> Any:
    response = requests.request(method, live_server.api + path,
                                headers=live_server.headers(), timeout=30, **kwargs)
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


def _healthy(live_server: Any, name: str) -> dict[str, Any] | None:
    shown = _api(live_server, "GET", f"/services/{name}")
    running = [i for i in shown["instances_list"]
               if i["state"] == "running" and i["health"] == "healthy"]
    return running[0] if len(running) == 1 and shown["deployment"] is None else None


def _finished(session: Any, name: str) -> None:
    page = session.page
    expect(page).to_have_url(re.compile(r".*/deployments/d-[0-9a-f]+(\?.*)?$"))
    expect(page.locator("#deployment-status")).to_contain_text("succeeded",
                                                               timeout=DEPLOY_TIMEOUT)
    session.shot(name)


def test_back_up_and_restore_from_the_service_page(session: Any, live_server: Any) -> None:
    name, password = "bk-" + secrets.token_hex(3), secrets.token_urlsafe(16)
    _api(live_server, "POST", "/services", json={
        "package": "testdb", "version": "1.0.0", "name": name,
        "options": {"auth": {"password": password}}})
    try:
        db = TestDb.of(until(lambda: _healthy(live_server, name), 120, "healthy"), password)
        data = sample(200, prefix="web")
        db.write(data)
        page = session.page
        session.goto(f"/services/{name}")
        section = page.locator("#backups")
        expect(section.get_by_role("heading", name="Backups")).to_be_visible()
        expect(section).to_contain_text(f"No backup of {name} yet.")
        section.get_by_role("button", name="Back up now").click()
        _finished(session, "backup-taken")

        session.goto(f"/services/{name}")
        section = page.locator("#backups")
        expect(section.get_by_role("link", name="Download")).to_be_visible()
        session.shot("backups-section")
        db.cli("FLUSHALL")
        section.get_by_text("Restore…").click()
        restore = section.get_by_role("button", name=re.compile(r"^Restore b-"))
        section.get_by_label(re.compile("to confirm")).fill(name)
        restore.click()
        _finished(session, "backup-restored")
        back = TestDb.of(until(lambda: _healthy(live_server, name), 120, "restored"),
                         password)
        assert back.checksum() == checksum(data)
        assert session.console_errors == []
    finally:
        requests.delete(f"{live_server.api}/services/{name}", json={"delete_data": True},
                        headers=live_server.headers(), timeout=30)
        for backup in _api(live_server, "GET", f"/services/{name}/backups")["items"]:
            requests.delete(f"{live_server.api}/backups/{backup['id']}",
                            headers=live_server.headers(), timeout=30)
