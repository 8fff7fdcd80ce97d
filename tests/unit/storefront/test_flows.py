"""Install, review, manage and uninstall through the store front's plain HTML forms."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from worker.repository_fetcher import RemotePolicy

from .conftest import StaticSource, csrf_from, login
from .htmlcheck import Page


def form_fields(html: str, action: str) -> dict[str, str]:
    """The values a browser would post for the form with ``action`` (no JS)."""
    page = Page(html)
    fields: dict[str, str] = {}
    inside = False
    for e in page.elements:
        if e.tag == "form":
            inside = e.attrs.get("action") == action
            continue
        if not inside or "name" not in e.attrs:
            continue
        if e.tag == "input" and e.attrs.get("type") == "checkbox":
            if "checked" in e.attrs:
                fields[e.attrs["name"]] = e.attrs.get("value", "on")
        elif e.tag == "input" and e.attrs.get("type") != "submit":
            fields[e.attrs["name"]] = e.attrs.get("value", "")
    for match in re.finditer(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', html, re.S):
        fields.setdefault(match.group(1), _unescape(match.group(2)))
    for match in re.finditer(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', match.group(2)) or re.search(
            r'<option value="([^"]*)"', match.group(2)
        )
        fields.setdefault(match.group(1), chosen.group(1) if chosen else "")
    return fields


def _unescape(text: str) -> str:
    import html

    return html.unescape(text)


def error_beside(html: str, field_id: str) -> str:
    """The error text shown beside the field with ``field_id``."""
    match = re.search(rf'id="{re.escape(field_id)}-error" class="field-error">([^<]*)<', html)
    return match.group(1) if match else ""


def field_id(html: str, name: str) -> str:
    match = re.search(rf'id="([^"]+)" name="{re.escape(name)}"', html)
    assert match, name
    return match.group(1)


def install_hello(admin: Any, enqueued: list, service: str = "web") -> str:
    """Fill the generated form, fix a validation error, review, install; the deployment URL."""
    html = admin.get("/packages/hello/install?version=1.0.0").get_data(as_text=True)
    data = form_fields(html, "/packages/hello/install")
    mem_id = field_id(html, "opt:resources/mem")
    data.update(
        {"service_name": service, "instances": "3", "opt:resources/mem": "4096", "action": "review"}
    )
    answer = admin.post("/packages/hello/install", data=data)
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert "maximum" in error_beside(page, mem_id) or "512" in error_beside(page, mem_id)
    assert 'aria-invalid="true"' in page
    data["opt:resources/mem"] = "48"
    data["opt:auth/token"] = "s3cret-token"
    review = admin.post("/packages/hello/install", data=data)
    assert review.status_code == 200
    review_html = review.get_data(as_text=True)
    assert "s3cret-token" not in review_html.split('name="options_json"')[0]
    assert "********" in review_html and "1.0.0" in review_html
    final = form_fields(review_html, "/packages/hello/install")
    assert json.loads(final["options_json"])["resources"]["mem"] == 48
    final["action"] = "install"
    done = admin.post("/packages/hello/install", data=final)
    assert done.status_code == 302, done.get_data(as_text=True)[:2000]
    assert enqueued and enqueued[-1][0] == "berth.deploy"
    return done.headers["Location"]


def test_install_flow_with_error_fix_review_and_install(admin: Any, enqueued: list) -> None:
    location = install_hello(admin, enqueued)
    assert location.startswith("/deployments/")
    page = admin.get(location).get_data(as_text=True)
    assert "Install of web" in page and "Notes from the package" in page
    partial = admin.get(location + "?partial=1").get_data(as_text=True)
    assert 'data-final="0"' in partial and "Progress" in partial
    service = admin.get("/services/web").get_data(as_text=True)
    assert "hello" in service and "generation 1" in service
    # who asked is named by the token's name, its id kept in a tooltip
    assert re.search(r'installed by <span title="token:[0-9a-f]+">t-admin \(token\)</span>',
                     service)
    listing = admin.get("/services").get_data(as_text=True)
    assert 'href="/services/web"' in listing


def test_taken_service_name_is_shown_beside_the_name(admin: Any, enqueued: list) -> None:
    install_hello(admin, enqueued, "taken")
    html = admin.get("/packages/hello/install").get_data(as_text=True)
    data = form_fields(html, "/packages/hello/install")
    data.update({"service_name": "taken", "action": "install", "options_json": json.dumps({})})
    answer = admin.post("/packages/hello/install", data=data)
    assert answer.status_code == 422
    assert error_beside(answer.get_data(as_text=True), "service_name")


def test_json_view_without_script_reviews_the_json_options(admin: Any) -> None:
    html = admin.get("/packages/hello/install").get_data(as_text=True)
    data = form_fields(html, "/packages/hello/install")
    options = json.loads(data["options_json"])
    options["message"] = "From JSON"
    data.update({"options_json": json.dumps(options), "json_submit": "1"})
    answer = admin.post("/packages/hello/install", data=data)
    assert answer.status_code == 200 and "From JSON" in answer.get_data(as_text=True)
    data["options_json"] = "{not json"
    bad = admin.post("/packages/hello/install", data=data)
    assert bad.status_code == 422
    assert "not valid JSON" in error_beside(bad.get_data(as_text=True), "options_json")


def test_scale_restart_and_uninstall_need_the_typed_name(
    admin: Any, app: Any, enqueued: list
) -> None:
    location = install_hello(admin, enqueued, "shop")
    html = admin.get("/services/shop").get_data(as_text=True)
    token = csrf_from(html)
    busy = admin.post("/services/shop/scale", data={"csrf_token": token, "instances": "2"})
    assert busy.status_code == 302 and busy.headers["Location"] == "/services/shop"
    assert "flash-error" in admin.get("/services/shop").get_data(as_text=True)
    with app.app_context():
        app.extensions["berth"].ops.cancel_deployment(location.rsplit("/", 1)[1], actor="t")
    scaled = admin.post("/services/shop/scale", data={"csrf_token": token, "instances": "2"})
    assert scaled.status_code == 302 and "/deployments/" in scaled.headers["Location"]
    bad = admin.post("/services/shop/scale", data={"csrf_token": token, "instances": "two"})
    assert bad.headers["Location"] == "/services/shop"
    with app.app_context():
        app.extensions["berth"].ops.cancel_deployment(
            scaled.headers["Location"].rsplit("/", 1)[1], actor="t"
        )
    gone = admin.post(
        "/services/shop/uninstall", data={"csrf_token": token, "confirm_name": "shop"}
    )
    assert gone.status_code == 302 and "/deployments/" in gone.headers["Location"]
    assert "package=hello" in gone.headers["Location"]
    page = admin.get(gone.headers["Location"]).get_data(as_text=True)
    assert "Uninstall of shop" in page and "After uninstalling" in page
    wrong = admin.post(
        "/services/shop/uninstall", data={"csrf_token": token, "confirm_name": "sho"}
    )
    assert wrong.status_code == 302 and wrong.headers["Location"].endswith("#uninstall")
    assert admin.get("/services/shop").status_code == 200


def test_upgrade_form_is_prefilled_and_lists_the_changes(admin: Any, enqueued: list) -> None:
    install_hello(admin, enqueued, "up")
    html = admin.get("/services/up/upgrade?version=2.0.0").get_data(as_text=True)
    assert "Upgrade up to" in html and "1.0.0 → 2.0.0" in html
    mem = re.search(r'name="opt:resources/mem"[^>]*value="(\d+)"', html)
    assert mem and mem.group(1) == "48"
    assert re.search(r'name="opt:auth/token"[^>]*value=""[^>]*placeholder="unchanged"', html)
    assert "show_details" in html


def test_upgrade_post_starts_a_deployment_and_keeps_secrets(
    admin: Any, app: Any, enqueued: list
) -> None:
    location = install_hello(admin, enqueued, "keep")
    with app.app_context():
        app.extensions["berth"].ops.cancel_deployment(location.rsplit("/", 1)[1], actor="t")
    html = admin.get("/services/keep/upgrade?version=2.0.0").get_data(as_text=True)
    data = form_fields(html, "/services/keep/upgrade")
    data["opt:message"] = "Upgraded"
    answer = admin.post("/services/keep/upgrade", data=data)
    assert answer.status_code == 302 and "/deployments/" in answer.headers["Location"]
    with app.app_context():
        service = app.extensions["berth"].ops.get_service("keep")
        keys = app.extensions["berth"].settings.data_keys()
    assert service["package"]["version"] == "2.0.0"
    assert service["options"]["message"] == "Upgraded"
    sealed = service["options"]["auth"]["token"]
    assert "s3cret-token" not in str(sealed)  # kept sealed at rest
    assert keys.open(sealed) == "s3cret-token"  # noqa: S105 - left empty: kept


def test_upgrade_with_a_bad_value_shows_it_beside_the_field(admin: Any, enqueued: list) -> None:
    install_hello(admin, enqueued, "badup")
    html = admin.get("/services/badup/upgrade?version=2.0.0").get_data(as_text=True)
    data = form_fields(html, "/services/badup/upgrade")
    data["opt:resources/cpus"] = "9"
    answer = admin.post("/services/badup/upgrade", data=data)
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert error_beside(page, field_id(page, "opt:resources/cpus"))


def test_repositories_add_and_remove(admin: Any) -> None:
    token = csrf_from(admin.get("/repositories").get_data(as_text=True))
    bad = admin.post(
        "/repositories",
        data={"csrf_token": token, "name": "Bad Name", "url": "ftp://x"},
        follow_redirects=True,
    )
    # the one rule of catalog.repository_fields, as the API reports it
    assert "body/name: lower-case letters, digits and dashes" in bad.get_data(as_text=True)
    form = {"csrf_token": token, "name": "extra", "url": "http://127.0.0.1:1/index.json"}
    refused = admin.post("/repositories", data=form, follow_redirects=True)
    assert "loopback" in refused.get_data(as_text=True)  # the SSRF guard
    berth = admin.application.extensions["berth"]  # settings are read once, at start
    berth.settings = dataclasses.replace(berth.settings,
                                         remote_policy=RemotePolicy(allow_loopback=True))
    added = admin.post("/repositories", data={**form, "priority": "300"}, follow_redirects=True)
    page = added.get_data(as_text=True)
    assert "Repository extra added; it is fetched in the background" in page
    assert "http://127.0.0.1:1/index.json" in page and "status-pending" in page
    universe = {**form, "name": "mesosphere", "url": "http://127.0.0.1:1/repo-up-to-1.10.json",
                "format": "dcos"}
    added = admin.post("/repositories", data=universe, follow_redirects=True)
    assert "Repository mesosphere added" in added.get_data(as_text=True)
    row = added.get_data(as_text=True).split("mesosphere</strong>")[1].split("</tr>")[0]
    assert "DC/OS Universe" in row
    odd = admin.post("/repositories", data={**universe, "name": "odd", "format": "helm"},
                     follow_redirects=True)
    assert "body/format: &#39;berth&#39; or &#39;dcos&#39;" in odd.get_data(as_text=True)
    removed = admin.post(
        "/repositories/extra/remove", data={"csrf_token": token}, follow_redirects=True
    )
    assert "Repository extra removed" in removed.get_data(as_text=True)


def test_agent_form_reports_bad_input_in_the_page(admin: Any) -> None:
    token = csrf_from(admin.get("/agents").get_data(as_text=True))
    answer = admin.post(
        "/agents",
        data={"csrf_token": token, "url": "tcp://127.0.0.1:1", "attributes": "zone"},
        follow_redirects=True,
    )
    assert answer.status_code == 200
    assert "is not key=value" in answer.get_data(as_text=True)
    missing = admin.post("/agents", data={"csrf_token": token, "url": ""}, follow_redirects=True)
    assert "URL is required" in missing.get_data(as_text=True)


def test_rollback_and_restart_start_deployments(admin: Any, app: Any, enqueued: list) -> None:
    ops = app.extensions["berth"].ops

    def settle(location: str) -> None:
        with app.app_context():
            ops.cancel_deployment(location.rsplit("/", 1)[1], actor="t")

    settle(install_hello(admin, enqueued, "rb"))
    html = admin.get("/services/rb/upgrade?version=2.0.0").get_data(as_text=True)
    upgraded = admin.post("/services/rb/upgrade", data=form_fields(html, "/services/rb/upgrade"))
    settle(upgraded.headers["Location"])
    page = admin.get("/services/rb").get_data(as_text=True)
    assert 'name="generation"' in page and "generation 1 · 1.0.0" in page
    token = csrf_from(page)
    rolled = admin.post("/services/rb/rollback", data={"csrf_token": token, "generation": "1"})
    assert rolled.status_code == 302 and "/deployments/" in rolled.headers["Location"]
    with app.app_context():
        assert ops.get_service("rb")["package"]["version"] == "1.0.0"
    settle(rolled.headers["Location"])
    restarted = admin.post("/services/rb/restart", data={"csrf_token": token})
    assert restarted.status_code == 302 and "/deployments/" in restarted.headers["Location"]
    history = admin.get("/services/rb").get_data(as_text=True)
    for kind in ("install", "upgrade", "rollback", "restart"):
        assert f"<td>{kind}</td>" in history


def test_service_pages_have_labels_ordered_headings_and_no_script(
    admin: Any, enqueued: list
) -> None:
    location = install_hello(admin, enqueued, "a11y")
    for url in (
        location,
        "/services",
        "/services/a11y",
        "/services/a11y/upgrade?version=2.0.0",
        "/services/a11y?partial=instances",
    ):
        html = admin.get(url).get_data(as_text=True)
        page = Page(html)
        assert page.unsafe() == [], url
        labels = {e.attrs["for"] for e in page.find("label") if e.attrs.get("for")}
        for e in page.elements:
            if e.tag in ("input", "select", "textarea") and e.attrs.get("type") not in (
                "hidden",
                "submit",
            ):
                assert e.attrs.get("id") in labels or e.attrs.get("aria-label"), (url, e.attrs)
        levels = [int(e.tag[1]) for e in page.elements if re.fullmatch(r"h[1-6]", e.tag)]
        if "partial" not in url:
            assert levels[0] == 1 and levels.count(1) == 1, (url, levels)
        for before, after in zip(levels, levels[1:], strict=False):
            assert after <= before + 1, (url, levels)


def test_drain_and_remove_of_an_unknown_agent_say_so(admin: Any) -> None:
    token = csrf_from(admin.get("/agents").get_data(as_text=True))
    for action in ("drain", "remove"):
        answer = admin.post(
            f"/agents/agent-x/{action}", data={"csrf_token": token}, follow_redirects=True
        )
        assert answer.status_code == 200
        assert "flash-error" in answer.get_data(as_text=True) and "agent-x" in answer.get_data(
            as_text=True
        )


def test_a_configured_directory_name_cannot_be_taken_by_a_remote(
        storefront_redis: str, storefront_catalog: Any, tmp_path: Any) -> None:
    """The form adds repositories through the API's own checks, reserved names included."""
    from server.app import create_app

    app = create_app({"BERTH_REDIS_URL": storefront_redis, "BERTH_SECRET_KEY": "t",
                      "CATALOG": StaticSource(storefront_catalog), "TESTING": True,
                      "ENQUEUE": lambda name, args: None,
                      "BERTH_REPOSITORY_DIRS": f"team={tmp_path}"})
    client = app.test_client()
    login(client, app, "admin")
    token = csrf_from(client.get("/repositories").get_data(as_text=True))
    answer = client.post("/repositories", data={
        "csrf_token": token, "name": "team", "url": "https://example.org/index.json"},
        follow_redirects=True)
    page = answer.get_data(as_text=True)
    assert "body/name: &#39;team&#39; is reserved" in page
