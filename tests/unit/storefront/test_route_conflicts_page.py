"""Route conflicts in the store front: the install form shows a host another service
routes beside the option that set it (at review and at install), and the Routes page
shows a clash from older records as ``conflict``, naming the service that is served."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from .test_flows import form_fields

FORM = "/packages/hello/install"


def _install(app: Any, name: str, host: str) -> None:
    with app.app_context():
        berth = app.extensions["berth"]
        answer = berth.application.services.install(
            "test", package="hello", name=name, options={"public_host": host})
        berth.ops.cancel_deployment(answer["deployment"]["id"], actor="t")


def _posted(admin: Any, action: str, host: str) -> tuple[int, str]:
    data = form_fields(admin.get(FORM).get_data(as_text=True), FORM)
    field = next(k for k in data if k.endswith("public_host"))
    data.update({field: host, "service_name": "copy", "action": action})
    if action == "install":
        data["options_json"] = json.dumps({"public_host": host})
    answer = admin.post(FORM, data=data)
    return answer.status_code, answer.get_data(as_text=True)


def _error_beside_public_host(html: str) -> str:
    """The error text shown in the ``public_host`` field's error element."""
    found = re.search(r'<span id="opt-public_host-[0-9a-f]+-error" class="field-error">'
                      r'([^<]*)</span>', html)
    assert found, "no error beside the public_host field"
    return found.group(1)


def test_the_review_shows_a_taken_host_beside_its_option(admin: Any, app: Any) -> None:
    _install(app, "web", "web.test")
    status, html = _posted(admin, "review", "web.test")
    assert status == 422
    message = _error_beside_public_host(html)
    assert "web.test" in message and "service &#39;web&#39;" in message
    assert "path prefix /" in message


def test_the_install_itself_refuses_a_taken_host_on_the_form(admin: Any, app: Any) -> None:
    _install(app, "web", "web.test")
    status, html = _posted(admin, "install", "web.test")
    assert status == 422
    assert "service &#39;web&#39;" in _error_beside_public_host(html)
    assert app.extensions["berth"].store.services.get("copy") is None


def test_the_routes_page_shows_a_clash_of_old_records_as_conflict(admin: Any,
                                                                  app: Any) -> None:
    _install(app, "web", "web.test")
    store = app.extensions["berth"].store
    record = {**copy.deepcopy(store.services.get("web")), "name": "late",
              "created_at": 9e9, "deployment": None}
    store.state.transact(lambda tx: store.services.stage_put(tx, record))
    html = admin.get("/routes").get_data(as_text=True)
    row = next(r for r in html.split("<tr>") if 'href="/services/late"' in r)
    assert "status-conflict" in row and 'href="/services/web"' in row
    assert "not given to the proxies" in row
    served = next(r for r in html.split("<tr>") if 'href="/services/web"' in r
                  and 'href="/services/late"' not in r)
    assert "status-conflict" not in served


def test_the_upgrade_form_shows_a_taken_host_beside_its_option(admin: Any, app: Any) -> None:
    _install(app, "web", "web.test")
    _install(app, "api", "api.test")
    page = "/services/api/upgrade"
    data = form_fields(admin.get(page).get_data(as_text=True), page)
    field = next(k for k in data if k.endswith("public_host"))
    data[field] = "web.test"
    answer = admin.post(page, data=data)
    assert answer.status_code == 422
    assert "service &#39;web&#39;" in _error_beside_public_host(answer.get_data(as_text=True))
    spec = app.extensions["berth"].store.services.get("api")["spec"]
    assert spec["expose"][0]["hosts"] == ["api.test"]
