"""Endpoints, routes, proxies and the Traefik / Prometheus documents through the API
(real Redis, no worker): instance records are written the way the workers write them."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator
from test_server_client_cli import serving

from server.client.cli import cli


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin(tokens: dict[str, str]) -> dict[str, str]:
    return bearer(tokens["admin"])


def install(client: Any, admin: dict[str, str], name: str, **options: Any) -> None:
    body = {"package": "hello", "name": name, "instances": 3, "options": options}
    response = client.post("/api/v1/services", json=body, headers=admin)
    assert response.status_code == 202, response.json


def put_instance(app: Any, service: str, suffix: str, port: int, *, state: str = "running",
                 health: str = "healthy", agent: str = "agent-1",
                 generation: int = 1) -> None:
    store = app.extensions["berth"].store
    instance = {"id": f"{service}-{suffix}", "service": service, "generation": generation,
                "agent": agent, "container": f"berth-{service}-{suffix}",
                "container_id": "c", "ports": {"http": port}, "port_list": [port],
                "address": "127.0.0.2", "state": state, "health": health, "created_at": 1.0,
                "started_at": 1.0, "failures": 0, "error": None}
    store.state.transact(lambda tx: store.instances.stage_put(tx, instance))


def set_state(app: Any, instance_id: str, **changes: Any) -> None:
    store = app.extensions["berth"].store
    store.instances.update(instance_id, lambda i: {**i, **changes})


# endpoints ---------------------------------------------------------------------------
def test_endpoints_list_only_healthy_instances_per_port_with_an_etag(app, client, admin):
    install(client, admin, "web")
    put_instance(app, "web", "a", 20001)
    put_instance(app, "web", "b", 20002, state="starting", health="unknown")
    put_instance(app, "web", "c", 20003, state="unhealthy", health="unhealthy")
    put_instance(app, "web", "d", 20004, state="stopping")
    response = client.get("/api/v1/services/web/endpoints", headers=admin)
    assert response.status_code == 200, response.json
    assert response.json["ports"] == {"http": [{"address": "127.0.0.2", "port": 20001,
                                                "agent": "agent-1", "generation": 1,
                                                "instance": "web-a"}]}
    assert response.headers["ETag"] == response.json["etag"]
    again = client.get("/api/v1/services/web/endpoints",
                       headers={**admin, "If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    set_state(app, "web-b", state="running", health="healthy")
    changed = client.get("/api/v1/services/web/endpoints",
                         headers={**admin, "If-None-Match": response.headers["ETag"]})
    assert changed.status_code == 200 and changed.json["etag"] != response.json["etag"]
    assert [e["port"] for e in changed.json["ports"]["http"]] == [20001, 20002]


def test_a_long_poll_answers_when_the_endpoints_change(app, client, admin):
    install(client, admin, "web")
    put_instance(app, "web", "a", 20001)
    first = client.get("/api/v1/services/web/endpoints", headers=admin).json
    put_instance(app, "web", "b", 20002, state="starting", health="unknown")
    changer = threading.Timer(0.3, lambda: (set_state(app, "web-b", state="running",
                                                      health="healthy"),
                                            app.extensions["berth"].store.state.publish_event(
                                                "instance.healthy", "web-b", "test")))
    changer.start()
    started = time.monotonic()
    response = client.get("/api/v1/services/web/endpoints?wait=20",
                          headers={**admin, "If-None-Match": first["etag"]})
    changer.join()
    assert response.status_code == 200
    assert {e["instance"] for e in response.json["ports"]["http"]} == {"web-a", "web-b"}
    assert time.monotonic() - started < 20  # it answered on the change, not at the end


def test_a_long_poll_with_nothing_changing_ends_with_304(app, client, admin):
    install(client, admin, "web")
    put_instance(app, "web", "a", 20001)
    etag = client.get("/api/v1/services/web/endpoints", headers=admin).json["etag"]
    response = client.get("/api/v1/services/web/endpoints?wait=0.5",
                          headers={**admin, "If-None-Match": etag})
    assert response.status_code == 304 and response.headers["ETag"] == etag


@pytest.mark.parametrize("wait", ["-1", "soon", "nan", "inf", "1" * 20])
def test_a_bad_wait_is_refused_naming_it(client, admin, wait):
    install(client, admin, "web")
    response = client.get(f"/api/v1/services/web/endpoints?wait={wait}", headers=admin)
    assert response.status_code == 422
    assert response.json["details"][0]["path"] == "query/wait"


def test_endpoints_of_an_unknown_service_are_404(client, admin):
    assert client.get("/api/v1/services/nope/endpoints", headers=admin).status_code == 404


# routes --------------------------------------------------------------------------------
def test_expose_comes_from_options_and_routes_show_their_state(app, client, admin):
    install(client, admin, "web", public_host="web.test")
    install(client, admin, "plain")
    spec = app.extensions["berth"].store.services.get("web")["spec"]
    assert spec["expose"] == [{"portName": "http", "hosts": ["web.test"], "pathPrefix": "/"}]
    [route] = client.get("/api/v1/routes", headers=admin).json["items"]
    assert (route["service"], route["hosts"], route["state"], route["upstreams"]) == (
        "web", ["web.test"], "no healthy instances", [])
    put_instance(app, "web", "a", 20001)
    [route] = client.get("/api/v1/routes", headers=admin).json["items"]
    assert route["state"] == "serving" and route["upstreams"] == ["127.0.0.2:20001"]


def test_a_host_name_that_would_inject_into_a_proxy_rule_is_refused(client, admin):
    body = {"package": "hello", "name": "web", "options": {"public_host": "a`) || Host(`b"}}
    response = client.post("/api/v1/services", json=body, headers=admin)
    assert response.status_code == 422
    assert "public_host" in str(response.json["details"])


# proxies -------------------------------------------------------------------------------
PROXY = {"name": "edge", "kind": "caddy", "admin_url": "http://127.0.0.1:2019",
         "listen": "127.0.0.1:8088"}


def test_proxies_are_added_listed_and_removed(client, admin, tokens):
    assert client.post("/api/v1/proxies", json=PROXY,
                       headers=bearer(tokens["viewer"])).status_code == 403
    added = client.post("/api/v1/proxies", json=PROXY, headers=admin)
    assert added.status_code == 201 and added.headers["Location"].endswith("/proxies/edge")
    assert added.json["group"] == "external" and added.json["sync"]["state"] == "pending"
    assert client.post("/api/v1/proxies", json=PROXY, headers=admin).status_code == 409
    [listed] = client.get("/api/v1/proxies", headers=admin).json["items"]
    assert listed["name"] == "edge" and listed["sync"]["last_sync_at"] is None
    assert client.delete("/api/v1/proxies/edge", headers=admin).status_code == 204
    assert client.get("/api/v1/proxies", headers=admin).json["items"] == []
    assert client.delete("/api/v1/proxies/edge", headers=admin).status_code == 404


def test_a_proxy_with_bad_fields_is_refused_with_every_problem(client, admin):
    body = {"name": "Edge!", "kind": "caddy", "admin_url": "ftp://user:pw@host",
            "listen": "nowhere"}
    response = client.post("/api/v1/proxies", json=body, headers=admin)
    assert response.status_code == 422, response.json
    paths = {d["path"] for d in response.json["details"]}
    assert {"name", "admin_url", "listen"} <= paths
    wrong_kind = client.post("/api/v1/proxies", json={**PROXY, "kind": "nginx"}, headers=admin)
    assert wrong_kind.status_code == 422


# Traefik -------------------------------------------------------------------------------
# The structure Traefik documents for its dynamic configuration (reference: "Dynamic
# Configuration / File", the format the HTTP provider's endpoint answers in): routers
# need a rule and a service; a load balancer needs at least one server with a url.
TRAEFIK_DYNAMIC = {
    "type": "object", "additionalProperties": False,
    "properties": {"http": {
        "type": "object", "additionalProperties": False,
        "properties": {
            "routers": {"type": "object", "additionalProperties": {
                "type": "object", "additionalProperties": False, "required": ["rule", "service"],
                "properties": {"entryPoints": {"type": "array", "items": {"type": "string"}},
                               "rule": {"type": "string"}, "ruleSyntax": {"type": "string"},
                               "priority": {"type": "integer", "minimum": 0},
                               "middlewares": {"type": "array", "items": {"type": "string"}},
                               "service": {"type": "string"},
                               "tls": {"type": "object"}}}},
            "services": {"type": "object", "additionalProperties": {
                "type": "object", "additionalProperties": False,
                "properties": {"loadBalancer": {
                    "type": "object", "additionalProperties": False, "required": ["servers"],
                    "properties": {
                        "servers": {"type": "array", "minItems": 1, "items": {
                            "type": "object", "required": ["url"],
                            "properties": {"url": {"type": "string"}}}},
                        "passHostHeader": {"type": "boolean"},
                        "healthCheck": {"type": "object", "additionalProperties": False,
                                        "properties": {
                                            "path": {"type": "string"},
                                            "interval": {"type": "string"},
                                            "timeout": {"type": "string"}}}}}}}},
            "middlewares": {"type": "object"}}}}}


def test_the_traefik_document_follows_traefiks_dynamic_configuration(app, client, admin):
    install(client, admin, "web", public_host="web.test")
    install(client, admin, "idle", public_host="idle.test")   # no healthy instance
    put_instance(app, "web", "a", 20001)
    put_instance(app, "web", "b", 20002)
    doc = client.get("/api/v1/providers/traefik", headers=admin).json
    assert list(Draft202012Validator(TRAEFIK_DYNAMIC).iter_errors(doc)) == []
    routers, services = doc["http"]["routers"], doc["http"]["services"]
    assert routers == {"berth-web-0": {"rule": "Host(`web.test`)", "service": "berth-web-0"}}
    assert all(r["service"] in services for r in routers.values())
    balancer = services["berth-web-0"]["loadBalancer"]
    assert [s["url"] for s in balancer["servers"]] == ["http://127.0.0.2:20001",
                                                       "http://127.0.0.2:20002"]
    assert balancer["healthCheck"]["path"] == "/health"


def test_the_traefik_rule_of_several_hosts_and_a_path():
    from server.application.routing import _rule

    route = {"hosts": ["a.test", "b.test"], "pathPrefix": "/api"}
    assert _rule(route) == "(Host(`a.test`) || Host(`b.test`)) && PathPrefix(`/api`)"


# Prometheus ----------------------------------------------------------------------------
def test_prometheus_sd_has_targets_per_instance_with_labels_and_filters(app, client, admin):
    install(client, admin, "web")
    install(client, admin, "other")
    put_instance(app, "web", "a", 20001)
    put_instance(app, "web", "b", 20002, agent="agent-2")
    put_instance(app, "other", "a", 20003)
    groups = client.get("/api/v1/sd/prometheus", headers=admin).json
    assert len(groups) == 3
    web = [g for g in groups if g["labels"]["service"] == "web"]
    assert {g["targets"][0] for g in web} == {"127.0.0.2:20001", "127.0.0.2:20002"}
    labels = web[0]["labels"]
    assert {"service", "package", "version", "agent", "instance"} <= set(labels)
    assert labels["package"] == "hello" and labels["version"] == "2.0.0"
    only = client.get("/api/v1/sd/prometheus?service=web", headers=admin).json
    assert {g["labels"]["service"] for g in only} == {"web"}
    by_agent = client.get("/api/v1/sd/prometheus?label=agent=agent-2", headers=admin).json
    assert [g["labels"]["instance"] for g in by_agent] == ["web-b"]
    bad = client.get("/api/v1/sd/prometheus?label=secret=x", headers=admin)
    assert bad.status_code == 422 and bad.json["details"][0]["path"] == "query/label/secret"
    assert client.get("/api/v1/sd/prometheus?label=novalue",
                      headers=admin).status_code == 422


PROMETHEUS = {"User-Agent": "Prometheus/2.42.0", "X-Prometheus-Refresh-Interval-Seconds": "60"}


def test_a_prometheus_that_was_answered_is_held_until_its_targets_change(app, client, admin):
    """The first question is answered at once; the next, with nothing changed, waits for
    the change (a scale) and gets it at once, not a refresh interval later."""
    install(client, admin, "web")
    put_instance(app, "web", "a", 20001)
    url, headers = "/api/v1/sd/prometheus?service=web&wait=50", {**admin, **PROMETHEUS}
    started = time.monotonic()
    first = client.get(url, headers=headers).json
    assert [g["labels"]["instance"] for g in first] == ["web-a"]
    assert time.monotonic() - started < 5   # nothing given to this client before
    changer = threading.Timer(0.3, lambda: (
        put_instance(app, "web", "b", 20002),
        app.extensions["berth"].store.state.publish_event("instance.healthy", "web-b", "test")))
    changer.start()
    started = time.monotonic()
    held = client.get(url, headers=headers)
    changer.join()
    assert held.status_code == 200
    assert {g["labels"]["instance"] for g in held.json} == {"web-a", "web-b"}
    # held until the change (web-b came 0.3 s later), answered on it, not after 50 s
    assert time.monotonic() - started < 40
    # another client (a person with curl) is not held: it was never given anything
    started = time.monotonic()
    other = client.get(url, headers={**admin, "User-Agent": "curl/8"}).json
    assert len(other) == 2 and time.monotonic() - started < 5


def test_a_held_question_ends_before_the_refresh_interval_prometheus_names(app, client, admin):
    """Prometheus' request times out at its refresh interval: the hold ends a second
    before it, with the same targets."""
    install(client, admin, "web")
    put_instance(app, "web", "a", 20001)
    url = "/api/v1/sd/prometheus?service=web&wait=50"
    headers = {**admin, **PROMETHEUS, "X-Prometheus-Refresh-Interval-Seconds": "2"}
    client.get(url, headers=headers)
    started = time.monotonic()
    again = client.get(url, headers=headers).json
    assert [g["labels"]["instance"] for g in again] == ["web-a"]
    assert time.monotonic() - started < 30   # held 1 s, not the 50 asked for


def test_when_every_holding_thread_is_taken_a_question_is_answered_at_once(
        app, client, admin, monkeypatch):
    """Held questions are bounded per server process (``SD_HELD_MAX``): a viewer asking
    many cannot take every thread; past the bound, questions are answered at once."""
    from server.application import routing

    install(client, admin, "web")
    put_instance(app, "web", "a", 20001)
    url, headers = "/api/v1/sd/prometheus?service=web&wait=50", {**admin, **PROMETHEUS}
    client.get(url, headers=headers)
    monkeypatch.setattr(routing, "_SD_HOLDERS", threading.BoundedSemaphore(1))
    routing._SD_HOLDERS.acquire()   # the one holding thread is taken
    started = time.monotonic()
    assert len(client.get(url, headers=headers).json) == 1
    assert time.monotonic() - started < 30   # not held for the 50 s asked


# the CLI -------------------------------------------------------------------------------
def test_the_cli_shows_endpoints_routes_and_proxies(app, client, admin, tokens, monkeypatch,
                                                    tmp_path):
    install(client, admin, "web", public_host="web.test")
    put_instance(app, "web", "a", 20001)
    with serving(app) as url:
        monkeypatch.setenv("BERTH_URL", url)
        monkeypatch.setenv("BERTH_TOKEN", tokens["admin"])
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
        runner = CliRunner()
        shown = runner.invoke(cli, ["endpoints", "web"])
        assert shown.exit_code == 0, shown.output
        assert "127.0.0.2:20001" in shown.output and "web-a" in shown.output
        routes = runner.invoke(cli, ["routes"])
        assert routes.exit_code == 0 and "web.test" in routes.output
        assert "serving" in routes.output
        added = runner.invoke(cli, ["proxies", "add", "edge", "--kind", "caddy",
                                    "--admin-url", "http://127.0.0.1:2019",
                                    "--listen", "127.0.0.1:8088"])
        assert added.exit_code == 0, added.output
        listed = runner.invoke(cli, ["proxies", "list"])
        assert "edge" in listed.output and "pending" in listed.output
        bad = runner.invoke(cli, ["proxies", "add", "x", "--kind", "caddy",
                                  "--admin-url", "nope", "--listen", "1"])
        assert bad.exit_code != 0 and "admin_url" in bad.output
        assert "Traceback" not in bad.output
        assert runner.invoke(cli, ["proxies", "remove", "edge"]).exit_code == 0
        missing = runner.invoke(cli, ["endpoints", "nope"])
        assert missing.exit_code != 0 and "Traceback" not in missing.output
