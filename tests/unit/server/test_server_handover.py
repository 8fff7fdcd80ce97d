"""Handing a linked service's credentials over, through the API (real Redis, no
worker): Gitea linking a PostgreSQL is refused without the admin's confirmation
(its mark requires the password), and with it the spec holds only placeholders, the
link records who confirmed and when, and the handover is an audited event. The
generated password never appears in clear in an answer, the events or Redis. Publishing
a link that asks for an option the linked package does not keep secret is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from catalog.bundle import build_bundle
from catalog.links import placeholder


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin(tokens: dict[str, str]) -> dict[str, str]:
    return bearer(tokens["admin"])


def _install(client: Any, admin: dict[str, str], **body: Any) -> Any:
    return client.post("/api/v1/services", json=body, headers=admin)


def _postgres(client: Any, admin: dict[str, str]) -> str:
    answer = _install(client, admin, package="postgres", name="pg")
    assert answer.status_code == 202, answer.get_json()
    return str(answer.get_json()["generated_secrets"][0]["value"])


def test_without_the_confirmation_a_package_that_requires_the_credentials_is_refused(
        client: Any, admin: dict[str, str]) -> None:
    _postgres(client, admin)
    refused = _install(client, admin, package="gitea", name="git",
                       options={"postgres_service": "pg"})
    assert refused.status_code == 422, refused.get_json()
    [problem] = refused.get_json()["details"]
    assert problem["path"] == "handover"
    assert "confirm handing them over" in problem["message"] and "'pg'" in problem["message"]
    assert client.get("/api/v1/services/git", headers=admin).status_code == 404


def test_a_confirmation_for_an_option_that_asks_for_nothing_is_refused(
        client: Any, admin: dict[str, str]) -> None:
    _postgres(client, admin)
    for options, handover, words in (({"database": "pg"}, ["database"], "asks for credentials"),
                                     ({}, ["nothing"], "asks for credentials")):
        answer = _install(client, admin, package="adminer", name="adm", options=options,
                          handover=handover)
        assert answer.status_code == 422, answer.get_json()
        assert words in answer.get_json()["details"][0]["message"]
    bad = _install(client, admin, package="adminer", name="adm", handover="database")
    assert bad.status_code in (400, 422) and "handover" in json.dumps(bad.get_json())


def test_a_confirmed_handover_stores_placeholders_and_who_confirmed_it(
        app: Any, client: Any, admin: dict[str, str]) -> None:
    password = _postgres(client, admin)
    answer = _install(client, admin, package="gitea", name="git",
                      options={"postgres_service": "pg"}, handover=["postgres_service"])
    assert answer.status_code == 202, answer.get_json()
    shown = client.get("/api/v1/services/git", headers=admin).get_json()
    env, [link] = shown["spec"]["env"], shown["spec"]["links"]
    assert env["GITEA__database__PASSWD"] == placeholder("postgres_service",
                                                         "credential.password")
    assert env["GITEA__database__HOST"] == placeholder("postgres_service", "address")
    assert link["credentials"] == {"password": "/auth/password"}
    assert link["handover"]["by"] and link["handover"]["at"] > 0
    store = app.extensions["berth"].store
    events = [e for e in store.state.read_events("0-0", 1000)
              if e["type"] == "service.credentials_handed_over"]
    assert [(e["subject"], e["data"]["service"], e["data"]["paths"]) for e in events] == [
        ("git", "pg", ["/auth/password"])]
    redis = store.redis
    everything = b"".join(redis.dump(k) or b"" for k in redis.scan_iter("*"))
    assert password.encode() not in everything
    assert password not in json.dumps(shown) + json.dumps(answer.get_json())


def test_the_install_form_offers_the_handover_unchecked(
        client: Any, admin: dict[str, str]) -> None:
    _postgres(client, admin)
    page = client.get("/packages/gitea/install", headers=admin)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'name="handover" value="postgres_service"' in html
    box = html[html.index('name="handover"'):].split(">", 1)[0]
    assert "checked" not in box
    assert "/auth/password" in html


PROBE = (Path(__file__).resolve().parents[2] / "data" / "linkprobe" / "packages" / "linkprobe"
         / "1.0.0")


def _probe_bundle(tmp_path: Path, credentials: dict[str, str]) -> bytes:
    folder = tmp_path / "credprobe" / "1.0.0"
    shutil.copytree(PROBE, folder)
    meta = json.loads((folder / "package.json").read_text())
    meta.update(name="credprobe", featured=False)
    (folder / "package.json").write_text(json.dumps(meta))
    config = json.loads((folder / "config.json").read_text())
    config["properties"]["database"]["x-berth-service"]["credentials"] = credentials
    (folder / "config.json").write_text(json.dumps(config))
    return build_bundle(folder)


def test_publishing_a_link_that_asks_for_a_non_secret_option_is_refused(
        client: Any, tokens: dict[str, str], tmp_path: Path) -> None:
    headers = {**bearer(tokens["maintainer"]), "Content-Type": "application/gzip"}
    refused = client.post("/api/v1/packages", headers=headers, data=_probe_bundle(
        tmp_path / "a", {"password": "/auth/password", "port": "/service/port"}))
    assert refused.status_code == 422, refused.get_json()
    assert refused.get_json()["details"] == [{
        "path": "config.json#/properties/database/x-berth-service/credentials/port",
        "message": "'/service/port' is not a secret option of testdb (only options it "
                   "marks x-secret can be handed over)"}]
    accepted = client.post("/api/v1/packages", headers=headers, data=_probe_bundle(
        tmp_path / "b", {"password": "/auth/password"}))
    assert accepted.status_code == 201, accepted.get_json()


def _settled(app: Any, name: str) -> None:
    """The service's last deployment over (no worker runs in these tests)."""
    store = app.extensions["berth"].store
    service = store.services.get(name)
    store.deployments.update(service["deployment"], lambda d: {**d, "status": "succeeded"})
    store.services.update(name, lambda s: {**s, "deployment": None, "status": "running"})


def test_an_upgrade_keeps_a_handover_and_a_link_to_another_service_is_confirmed_again(
        app: Any, client: Any, admin: dict[str, str]) -> None:
    _postgres(client, admin)
    assert _install(client, admin, package="postgres", name="pg-new").status_code == 202
    assert _install(client, admin, package="gitea", name="git",
                    options={"postgres_service": "pg"},
                    handover=["postgres_service"]).status_code == 202
    first = client.get("/api/v1/services/git", headers=admin).get_json()["spec"]["links"][0]
    _settled(app, "git")
    same = client.patch("/api/v1/services/git", headers=admin,
                        json={"options": {"gitea": {"app_name": "Code"}}})
    assert same.status_code == 202, same.get_json()
    kept = client.get("/api/v1/services/git", headers=admin).get_json()["spec"]["links"][0]
    assert kept == first                       # the same confirmation, by the same admin
    _settled(app, "git")
    moved = client.patch("/api/v1/services/git", headers=admin,
                         json={"options": {"postgres_service": "pg-new"}})
    assert moved.status_code == 422 and moved.get_json()["details"][0]["path"] == "handover"
    confirmed = client.patch("/api/v1/services/git", headers=admin, json={
        "options": {"postgres_service": "pg-new"}, "handover": ["postgres_service"]})
    assert confirmed.status_code == 202, confirmed.get_json()
    link = client.get("/api/v1/services/git", headers=admin).get_json()["spec"]["links"][0]
    assert link["service"] == "pg-new" and link["handover"]["at"] >= first["handover"]["at"]
    store = app.extensions["berth"].store
    events = [e["data"]["service"] for e in store.state.read_events("0-0", 1000)
              if e["type"] == "service.credentials_handed_over"]
    assert events == ["pg", "pg-new"]
