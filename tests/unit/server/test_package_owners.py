"""Package names belong to a repository and, in the hosted one, to maintainers.

Each test performs a takeover (or a silent repository switch) through the API over the
real Redis and checks it is refused with a clear reason, or that it no longer happens.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from catalog.bundle import build_bundle

HELLO = Path(__file__).resolve().parents[3] / "universe" / "packages" / "hello" / "1.0.0"
GZ = {"Content-Type": "application/gzip"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _bundle(tmp_path: Path, name: str, version: str) -> bytes:
    folder = tmp_path / f"{name}-{version}" / name / version
    if folder.exists():
        return build_bundle(folder)
    shutil.copytree(HELLO, folder)
    meta = json.loads((folder / "package.json").read_text())
    meta.update(name=name, version=version, featured=False)
    (folder / "package.json").write_text(json.dumps(meta))
    return build_bundle(folder)


def _publish(client: Any, token: str, data: bytes) -> Any:
    return client.post("/api/v1/packages", data=data, headers={**bearer(token), **GZ})


@pytest.fixture
def maintainers(app: Any) -> dict[str, tuple[str, str]]:
    """Two maintainer tokens: name → (token id, secret)."""
    from server.auth import create_token

    store = app.extensions["berth"].store
    made = {}
    for name in ("alice-ci", "mallory-ci"):
        record, secret = create_token(store, name=name, role="maintainer")
        made[name] = (record["id"], secret)
    return made


def test_publishing_a_name_the_universe_serves_is_refused(
        app: Any, client: Any, maintainers: dict[str, tuple[str, str]],
        tmp_path: Path) -> None:
    """The attack of the issue: postgres 99.0.0 to hosted would win every new install."""
    token_id, secret = maintainers["mallory-ci"]
    answer = _publish(client, secret, _bundle(tmp_path, "postgres", "99.0.0"))
    body = answer.get_json()
    assert answer.status_code == 409, body
    assert body["error"] == "name_owned"
    assert "package name 'postgres' belongs to repository 'universe'" in body["message"]
    assert "berth package owners add postgres --token" in body["hint"]
    assert app.extensions["berth"].store.hosted.names() == []
    shown = client.get("/api/v1/packages/postgres").get_json()
    assert shown["repository"] == "universe" and shown["version"] != "99.0.0"


def test_a_name_one_maintainer_published_is_refused_to_another(
        client: Any, maintainers: dict[str, tuple[str, str]], tmp_path: Path) -> None:
    alice_id, alice = maintainers["alice-ci"]
    _, mallory = maintainers["mallory-ci"]
    assert _publish(client, alice, _bundle(tmp_path, "greeter", "1.0.0")).status_code == 201
    answer = _publish(client, mallory, _bundle(tmp_path, "greeter", "1.1.0"))
    body = answer.get_json()
    assert answer.status_code == 409 and body["error"] == "name_owned"
    assert "'greeter'" in body["message"] and f"token:{alice_id}" in body["message"]
    assert "berth package owners add greeter --token" in body["hint"]
    assert client.get("/api/v1/packages/greeter").get_json()["version"] == "1.0.0"
    assert _publish(client, alice, _bundle(tmp_path, "greeter", "1.1.0")).status_code == 201


def test_only_an_owner_or_an_admin_may_yank(client: Any, tokens: dict[str, str],
                                            maintainers: dict[str, tuple[str, str]],
                                            tmp_path: Path) -> None:
    _, alice = maintainers["alice-ci"]
    _, mallory = maintainers["mallory-ci"]
    assert _publish(client, alice, _bundle(tmp_path, "greeter", "1.0.0")).status_code == 201
    assert _publish(client, alice, _bundle(tmp_path, "greeter", "1.1.0")).status_code == 201
    path = "/api/v1/packages/greeter/versions/{}/yank"
    refused = client.post(path.format("1.1.0"), json={"reason": "mine now"},
                          headers=bearer(mallory))
    assert refused.status_code == 409 and refused.get_json()["error"] == "name_owned"
    assert "'greeter'" in refused.get_json()["message"]
    versions = client.get("/api/v1/packages/greeter/versions").get_json()["items"]
    assert all(v["yanked"] is None for v in versions)
    assert client.post(path.format("1.1.0"), json={"reason": "broken"},
                       headers=bearer(alice)).status_code == 200
    assert client.post(path.format("1.0.0"), json={"reason": "old"},
                       headers=bearer(tokens["admin"])).status_code == 200


def test_an_admin_shares_and_transfers_a_name(client: Any, tokens: dict[str, str],
                                              maintainers: dict[str, tuple[str, str]],
                                              tmp_path: Path) -> None:
    token_id, secret = maintainers["alice-ci"]
    admin = bearer(tokens["admin"])
    owners = client.get("/api/v1/packages/postgres/owners", headers=admin).get_json()
    assert owners["repositories"] == ["universe"] and owners["maintainers"] == []
    assert client.post("/api/v1/packages/postgres/owners", json={"token": "alice-ci"},
                       headers=bearer(secret)).status_code == 403
    shared = client.post("/api/v1/packages/postgres/owners", json={"token": "alice-ci"},
                         headers=admin)
    assert shared.status_code == 200, shared.get_json()
    assert shared.get_json()["repositories"] == ["universe", "hosted"]
    assert [m["id"] for m in shared.get_json()["maintainers"]] == [f"token:{token_id}"]
    assert _publish(client, secret, _bundle(tmp_path, "postgres", "99.0.0")).status_code == 201
    shown = client.get("/api/v1/packages/postgres").get_json()
    assert (shown["repository"], shown["version"], shown["also_in"]) == (
        "hosted", "99.0.0", ["universe"])
    moved = client.post("/api/v1/packages/postgres/owners/transfer",
                        json={"repository": "universe"}, headers=admin)
    assert moved.status_code == 200 and moved.get_json()["repositories"] == ["universe"]
    shown = client.get("/api/v1/packages/postgres").get_json()
    assert shown["repository"] == "universe" and shown["also_in"] == ["hosted"]
    again = _publish(client, secret, _bundle(tmp_path, "postgres", "99.1.0"))
    assert again.status_code == 409 and again.get_json()["error"] == "name_owned"


def test_owner_changes_are_checked(client: Any, tokens: dict[str, str],
                                   maintainers: dict[str, tuple[str, str]]) -> None:
    admin = bearer(tokens["admin"])
    url = "/api/v1/packages/postgres/owners"
    unknown = client.post(url, json={"token": "nobody"}, headers=admin)
    assert unknown.status_code == 422 and unknown.get_json()["details"][0]["path"] == "body/token"
    two = client.post(url, json={"token": "alice-ci", "user": "ann"}, headers=admin)
    assert two.status_code == 422
    repo = client.post(url, json={"repository": "nowhere"}, headers=admin)
    assert repo.status_code == 422 and "nowhere" in repo.get_json()["details"][0]["message"]
    assert client.delete(f"{url}/repository/hosted", headers=admin).status_code == 404
    assert client.delete(f"{url}/group/x", headers=admin).status_code == 404
    last = client.delete(f"{url}/repository/universe", headers=admin)
    assert last.status_code == 409 and "transfer" in last.get_json()["hint"]
    token_id, _ = maintainers["alice-ci"]
    assert client.post(url, json={"token": token_id}, headers=admin).status_code == 200
    removed = client.delete(f"{url}/token/{token_id}", headers=admin)
    assert removed.status_code == 200 and removed.get_json()["maintainers"] == []
    assert client.get("/api/v1/packages/no-such/owners", headers=admin).status_code == 404


def test_yanking_every_hosted_version_keeps_the_page_and_versions_in_one_repository(
        client: Any, tokens: dict[str, str], maintainers: dict[str, tuple[str, str]],
        tmp_path: Path) -> None:
    """Once every hosted hello was yanked, the package answered from the universe while
    its versions listed only the yanked hosted ones: both now name the same repository."""
    _, secret = maintainers["alice-ci"]
    admin = bearer(tokens["admin"])
    assert client.post("/api/v1/packages/hello/owners", json={"token": "alice-ci"},
                       headers=admin).status_code == 200
    for version in ("3.0.0", "3.1.0"):
        assert _publish(client, secret, _bundle(tmp_path, "hello", version)).status_code == 201
        assert client.post(f"/api/v1/packages/hello/versions/{version}/yank",
                           json={"reason": "withdrawn"}, headers=bearer(secret)).status_code == 200
    package = client.get("/api/v1/packages/hello").get_json()
    versions = client.get("/api/v1/packages/hello/versions").get_json()["items"]
    assert package["repository"] == "hosted" and package["yanked"] == "withdrawn"
    assert package["version"] in [v["version"] for v in versions]
    assert {v["repository"] for v in versions} == {"hosted"}
    assert package["also_in"] == ["universe"]
    install = client.post("/api/v1/services", json={"package": "hello", "name": "web"},
                          headers=admin)
    assert install.status_code == 404 and install.get_json()["error"] == "version_not_found"
    page = client.get("/packages/hello")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "3.1.0" in html and "Also in" in html and "universe" in html


def test_an_upgrade_never_switches_repository(app: Any, client: Any, tokens: dict[str, str],
                                              maintainers: dict[str, tuple[str, str]],
                                              tmp_path: Path) -> None:
    """hello is installed from the universe; hosted hello 9.0.0 (shared by an admin) wins
    new installs, but an upgrade of the service stays in the universe unless told."""
    _, secret = maintainers["alice-ci"]
    admin = bearer(tokens["admin"])
    assert client.post("/api/v1/services", json={"package": "hello", "name": "web"},
                       headers=admin).status_code == 202
    assert client.post("/api/v1/packages/hello/owners", json={"token": "alice-ci"},
                       headers=admin).status_code == 200
    assert _publish(client, secret, _bundle(tmp_path, "hello", "9.0.0")).status_code == 201
    assert client.get("/api/v1/packages/hello").get_json()["version"] == "9.0.0"
    _finish(app, "web")
    newest = client.patch("/api/v1/services/web", json={"version": "*"}, headers=admin)
    assert newest.status_code == 202, newest.get_json()
    service = client.get("/api/v1/services/web").get_json()
    assert service["package"]["repository"] == "universe"
    assert service["options"]["color"] == "blue"  # masked by its own package's schema
    _finish(app, "web")
    refused = client.patch("/api/v1/services/web", json={"version": "9.0.0"}, headers=admin)
    body = refused.get_json()
    assert refused.status_code == 404 and "'universe'" in body["message"]
    assert "--repository hosted" in body["hint"]
    moved = client.patch("/api/v1/services/web", json={"version": "9.0.0",
                                                       "repository": "hosted"}, headers=admin)
    assert moved.status_code == 202, moved.get_json()
    assert client.get("/api/v1/services/web").get_json()["package"] == {
        "name": "hello", "version": "9.0.0", "repository": "hosted"}


def test_an_upgrade_whose_repository_is_gone_says_how_to_move(
        app: Any, client: Any, tokens: dict[str, str]) -> None:
    admin = bearer(tokens["admin"])
    assert client.post("/api/v1/services", json={"package": "hello", "name": "web"},
                       headers=admin).status_code == 202
    _finish(app, "web")
    store = app.extensions["berth"].store
    store.services.update("web", lambda s: {  # as if its remote repository was removed
        **s, "package": {**s["package"], "repository": "acme"}})
    refused = client.patch("/api/v1/services/web", json={"version": "*"}, headers=admin)
    body = refused.get_json()
    assert refused.status_code == 404 and body["error"] == "package_not_found"
    assert "'acme'" in body["message"] and "--repository universe" in body["hint"]


def _finish(app: Any, name: str) -> None:
    """Mark the service's current deployment succeeded (what a worker would do)."""
    store = app.extensions["berth"].store
    service = store.services.get(name)
    store.deployments.update(service["deployment"], lambda d: {**d, "status": "succeeded"})
    store.services.update(name, lambda s: {**s, "status": "running"})
