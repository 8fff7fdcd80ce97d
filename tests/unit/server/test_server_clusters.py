"""Clusters through the API and the `berth clusters` commands, with no Swarm running:
the default cluster, refusals at add and remove, and installs onto a cluster (an
unknown one is 404; what a Swarm cannot express is refused before anything is
written). The journey on a real Swarm is ``tests/integration/test_swarm.py``."""

from __future__ import annotations

import json
from typing import Any

from tests.unit.server.conftest import bearer
from tests.unit.server.test_server_client_cli import run, serving, url  # noqa: F401


def _store(app: Any) -> Any:
    return app.extensions["berth"].store


def test_the_default_cluster_is_listed_and_stays(client: Any, tokens: dict[str, str]) -> None:
    listed = client.get("/api/v1/clusters", headers=bearer(tokens["viewer"]))
    assert listed.status_code == 200
    assert listed.get_json()["items"][0]["name"] == "default"
    gone = client.delete("/api/v1/clusters/default", headers=bearer(tokens["admin"]))
    assert gone.status_code == 409


def test_adding_a_cluster_that_does_not_answer_is_refused_naming_the_url(
        client: Any, tokens: dict[str, str], tmp_path: Any) -> None:
    answer = client.post("/api/v1/clusters", headers=bearer(tokens["admin"]),
                         json={"name": "sw", "url": f"unix://{tmp_path}/none.sock"})
    assert answer.status_code == 422, answer.get_json()
    assert answer.get_json()["details"][0]["path"] == "url"
    bad = client.post("/api/v1/clusters", headers=bearer(tokens["admin"]),
                      json={"name": "sw", "url": "ftp://x"})
    assert bad.status_code == 422
    viewer = client.post("/api/v1/clusters", headers=bearer(tokens["viewer"]),
                         json={"name": "sw", "url": "swarm://127.0.0.1:1"})
    assert viewer.status_code == 403


def test_install_onto_an_unknown_cluster_is_not_found(client: Any,
                                                      tokens: dict[str, str]) -> None:
    answer = client.post("/api/v1/services", headers=bearer(tokens["admin"]),
                         json={"package": "hello", "name": "web", "cluster": "nope"})
    assert answer.status_code == 404 and answer.get_json()["error"] == "cluster_not_found"


def test_a_constraint_a_swarm_cannot_express_is_refused_and_nothing_written(
        app: Any, client: Any, tokens: dict[str, str]) -> None:
    store = _store(app)
    store.clusters.add({"name": "sw", "kind": "swarm", "url": "swarm://127.0.0.1:1",
                        "port_range": [31000, 31999]})
    try:
        answer = client.post("/api/v1/services", headers=bearer(tokens["admin"]), json={
            "package": "hello", "name": "web", "cluster": "sw",
            "constraints": [["zone", "UNLIKE", "c"]]})
        assert answer.status_code == 422, answer.get_json()
        body = answer.get_json()
        assert body["error"] == "spec_refused"
        assert body["details"][0]["path"] == "constraints/0"
        assert "UNLIKE" in body["details"][0]["message"]
        assert store.services.get("web") is None
        fine = client.post("/api/v1/services", headers=bearer(tokens["admin"]), json={
            "package": "hello", "name": "web", "cluster": "sw",
            "constraints": [["hostname", "MAX_PER", "2"]]})
        assert fine.status_code == 202, fine.get_json()
        assert store.services.get("web")["cluster"] == "sw"
        shown = client.get("/api/v1/services/web", headers=bearer(tokens["viewer"]))
        assert shown.get_json()["cluster"] == "sw"
        busy = client.delete("/api/v1/clusters/sw", headers=bearer(tokens["admin"]))
        assert busy.status_code == 409
    finally:
        store.clusters.remove("sw")


def test_cli_lists_clusters_and_installs_with_cluster(run: Any, app: Any) -> None:  # noqa: F811
    listed = run("clusters", "--json")
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.output)[0]["name"] == "default"
    table = run("clusters", "list")
    assert table.output.splitlines()[0].split() == ["NAME", "KIND", "URL", "SERVICES"]
    unknown = run("install", "hello", "--name", "web2", "--cluster", "nope")
    assert unknown.exit_code == 4, unknown.output
    refused = run("clusters", "remove", "default")
    assert refused.exit_code == 5, refused.output
