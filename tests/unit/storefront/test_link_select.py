"""The install form offers the installed services of the package an option links to
(a select, with a way to install one now), and the chosen name reaches the spec."""

from __future__ import annotations

import re
from typing import Any

from .test_flows import form_fields


def _install(app: Any, package: str, name: str) -> None:
    with app.app_context():
        app.extensions["berth"].application.services.install("test", package=package,
                                                             name=name)


def _select(html: str) -> str:
    found = re.search(r'<select id="opt-database[^"]*"[^>]*>(.*?)</select>', html, re.S)
    assert found, "no select for the linked option"
    return found.group(1)


def test_the_linked_option_is_a_select_of_installed_postgres_services(
        admin: Any, app: Any) -> None:
    _install(app, "postgres", "pg-main")
    _install(app, "postgres", "pg-two")
    _install(app, "hello", "web")
    html = admin.get("/packages/adminer/install").get_data(as_text=True)
    choices = re.findall(r'<option value="([^"]*)"', _select(html))
    assert choices == ["", "pg-main", "pg-two"]
    assert '<a href="/packages/postgres">Install one now</a>' in html


def test_without_any_installed_the_select_offers_none_and_the_install_link(
        admin: Any) -> None:
    html = admin.get("/packages/adminer/install").get_data(as_text=True)
    assert re.findall(r'<option value="([^"]*)"', _select(html)) == [""]
    assert '<a href="/packages/postgres">Install one now</a>' in html


def test_the_credentials_handover_is_a_checkbox_off_by_default_that_the_install_needs(
        admin: Any, app: Any, enqueued: list) -> None:
    _install(app, "postgres", "pg")
    html = admin.get("/packages/gitea/install").get_data(as_text=True)
    box = re.search(r'<input type="checkbox" name="handover" value="postgres_service"[^>]*>',
                    html)
    assert box and "checked" not in box.group(0)
    assert "Hand over <span data-handover-name>the selected service</span>'s credentials" in html
    data = form_fields(html, "/packages/gitea/install")
    assert "handover" not in data                       # unchecked: nothing is posted
    data.update({"opt:postgres_service": "pg", "service_name": "git", "action": "review"})
    refused = admin.post("/packages/gitea/install", data=data)
    assert refused.status_code == 422
    assert "confirm handing them over" in refused.get_data(as_text=True)
    data["handover"] = "postgres_service"
    review = admin.post("/packages/gitea/install", data=data)
    assert review.status_code == 200, review.get_data(as_text=True)[:2000]
    final = form_fields(review.get_data(as_text=True), "/packages/gitea/install")
    assert final["handover"] == "postgres_service"
    final["action"] = "install"
    done = admin.post("/packages/gitea/install", data=final)
    assert done.status_code in (200, 302), done.get_data(as_text=True)[:2000]
    page = admin.get("/services/git").get_data(as_text=True)
    assert "handed over (/auth/password), confirmed by" in page
