"""Links through the API (real Redis, no worker): an install records its link to an
installed service of the marked package and refuses any other; uninstalling a
service others link to is refused with their names unless forced."""

from __future__ import annotations

from typing import Any

import pytest

from catalog.links import placeholder


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin(tokens: dict[str, str]) -> dict[str, str]:
    return bearer(tokens["admin"])


def _install(client: Any, admin: dict[str, str], **body: Any) -> Any:
    return client.post("/api/v1/services", json=body, headers=admin)


def test_an_install_records_the_link_with_placeholders(client: Any, admin: dict[str, str]
                                                       ) -> None:
    assert _install(client, admin, package="postgres", name="pg").status_code == 202
    answer = _install(client, admin, package="adminer", name="adm",
                      options={"database": "pg"})
    assert answer.status_code == 202, answer.get_json()
    spec = client.get("/api/v1/services/adm", headers=admin).get_json()["spec"]
    assert spec["links"] == [{"option": "database", "service": "pg", "port": "postgres",
                              "onLinkChange": "restart"}]
    assert spec["env"]["ADMINER_DEFAULT_SERVER"] == placeholder("database", "address")


@pytest.mark.parametrize(("target", "words"), [
    ("nothing", "no installed service 'nothing'"),
    ("web", "service 'web' is not a postgres"),
])
def test_an_install_linking_a_missing_or_wrong_service_is_refused_at_the_option(
        client: Any, admin: dict[str, str], target: str, words: str) -> None:
    assert _install(client, admin, package="hello", name="web").status_code == 202
    answer = _install(client, admin, package="adminer", name="adm",
                      options={"database": target})
    assert answer.status_code == 422, answer.get_json()
    details = answer.get_json()["details"]
    assert any(d["path"] == "options/database" and words in d["message"] for d in details)
    assert client.get("/api/v1/services/adm", headers=admin).status_code == 404


def test_uninstalling_a_linked_service_is_refused_unless_forced(
        client: Any, admin: dict[str, str]) -> None:
    assert _install(client, admin, package="postgres", name="pg").status_code == 202
    assert _install(client, admin, package="adminer", name="adm",
                    options={"database": "pg"}).status_code == 202
    refused = client.delete("/api/v1/services/pg", headers=admin)
    assert refused.status_code == 409
    error = refused.get_json()
    assert error["error"] == "service_linked" and "adm link to it" in error["message"]
    assert error["details"] == [{"path": "force", "message": "service 'adm' links to 'pg'"}]
    assert client.get("/api/v1/services/pg", headers=admin).get_json()["status"] != "deleting"
    forced = client.delete("/api/v1/services/pg", json={"force": True}, headers=admin)
    assert forced.status_code == 202, forced.get_json()


def test_uninstalling_the_dependent_first_frees_the_database(
        client: Any, admin: dict[str, str]) -> None:
    assert _install(client, admin, package="postgres", name="pg").status_code == 202
    assert _install(client, admin, package="adminer", name="adm",
                    options={"database": "pg"}).status_code == 202
    assert client.delete("/api/v1/services/adm", headers=admin).status_code == 202
    assert client.delete("/api/v1/services/pg", headers=admin).status_code == 202


def _settled(app: Any, name: str) -> None:
    """The service's install deployment over (no worker runs in these tests)."""
    store = app.extensions["berth"].store
    service = store.services.get(name)
    store.deployments.update(service["deployment"], lambda d: {**d, "status": "succeeded"})
    store.services.update(name, lambda s: {**s, "deployment": None, "status": "running"})


def test_an_upgrade_to_a_missing_link_is_refused_and_the_link_can_be_changed(
        app: Any, client: Any, admin: dict[str, str]) -> None:
    assert _install(client, admin, package="postgres", name="pg").status_code == 202
    assert _install(client, admin, package="postgres", name="pg-new").status_code == 202
    assert _install(client, admin, package="adminer", name="adm",
                    options={"database": "pg"}).status_code == 202
    refused = client.patch("/api/v1/services/adm", json={"options": {"database": "gone"}},
                           headers=admin)
    assert refused.status_code == 422, refused.get_json()
    assert refused.get_json()["details"][0]["path"] == "options/database"
    _settled(app, "adm")
    moved = client.patch("/api/v1/services/adm", json={"options": {"database": "pg-new"}},
                         headers=admin)
    assert moved.status_code == 202, moved.get_json()
    spec = client.get("/api/v1/services/adm", headers=admin).get_json()["spec"]
    assert [link["service"] for link in spec["links"]] == ["pg-new"]
    assert client.delete("/api/v1/services/pg-new", headers=admin).status_code == 409
    assert client.delete("/api/v1/services/pg", headers=admin).status_code == 202
