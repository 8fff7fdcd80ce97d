"""Links on a Swarm cluster through the API (real Redis, no worker, no Swarm): only the
Docker-engine backend fills link placeholders, so a spec with links is refused on a
Swarm at install and at upgrade, with the cluster named and nothing written."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin(tokens: dict[str, str]) -> dict[str, str]:
    return bearer(tokens["admin"])


@pytest.fixture
def swarm(app: Any) -> Iterator[Any]:
    """A Swarm cluster ``sw`` on record (nothing answers at its address)."""
    store = app.extensions["berth"].store
    store.clusters.add({"name": "sw", "kind": "swarm", "url": "swarm://127.0.0.1:1",
                        "port_range": [31000, 31999]})
    try:
        yield store
    finally:
        store.clusters.remove("sw")


def _install(client: Any, admin: dict[str, str], **body: Any) -> Any:
    return client.post("/api/v1/services", json=body, headers=admin)


def _settled(store: Any, name: str) -> None:
    """The service's install deployment over (no worker runs in these tests)."""
    service = store.services.get(name)
    store.deployments.update(service["deployment"], lambda d: {**d, "status": "succeeded"})
    store.services.update(name, lambda s: {**s, "deployment": None, "status": "running"})


def test_an_install_with_a_link_onto_a_swarm_is_refused_naming_the_cluster(
        swarm: Any, client: Any, admin: dict[str, str]) -> None:
    assert _install(client, admin, package="postgres", name="pg").status_code == 202
    answer = _install(client, admin, package="adminer", name="adm", cluster="sw",
                      options={"database": "pg"})
    assert answer.status_code == 422, answer.get_json()
    body = answer.get_json()
    assert body["error"] == "spec_refused"
    assert body["message"].startswith(
        "links to other services are not supported on Swarm cluster 'sw' yet")
    assert body["details"][0]["path"] == "links/0"
    assert "'database' links to service 'pg'" in body["details"][0]["message"]
    assert swarm.services.get("adm") is None
    # the same package on Berth's own agents links as ever
    fine = _install(client, admin, package="adminer", name="adm",
                    options={"database": "pg"})
    assert fine.status_code == 202, fine.get_json()


def test_an_upgrade_adding_a_link_on_a_swarm_is_refused(
        swarm: Any, client: Any, admin: dict[str, str]) -> None:
    assert _install(client, admin, package="postgres", name="pg").status_code == 202
    plain = _install(client, admin, package="adminer", name="adm", cluster="sw")
    assert plain.status_code == 202, plain.get_json()
    _settled(swarm, "adm")
    generation = swarm.services.get("adm")["generation"]
    refused = client.patch("/api/v1/services/adm", json={"options": {"database": "pg"}},
                           headers=admin)
    assert refused.status_code == 422, refused.get_json()
    assert "not supported on Swarm cluster 'sw'" in refused.get_json()["message"]
    assert swarm.services.get("adm")["generation"] == generation
    assert not swarm.services.get("adm")["spec"].get("links")
