"""A proxy's TLS fields through the API and the CLI, and a TLS route's state in the
route listing when a proxy of its group has no TLS listener (real Redis, no worker)."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner
from test_server_client_cli import serving
from test_server_routing import bearer, install, put_instance

from server.client.cli import cli

PROXY = {"name": "edge", "kind": "caddy", "admin_url": "http://127.0.0.1:2019",
         "listen": "127.0.0.1:8088"}


@pytest.fixture
def admin(tokens: dict[str, str]) -> dict[str, str]:
    return bearer(tokens["admin"])


def test_a_proxy_is_registered_with_a_tls_listener_and_an_issuer(client, admin):
    body = {**PROXY, "listen_tls": "127.0.0.1:8443", "tls_issuer": "acme",
            "acme_email": "ops@example.com"}
    added = client.post("/api/v1/proxies", json=body, headers=admin)
    assert added.status_code == 201, added.json
    [listed] = client.get("/api/v1/proxies", headers=admin).json["items"]
    assert (listed["listen_tls"], listed["tls_issuer"], listed["acme_email"]) == (
        "127.0.0.1:8443", "acme", "ops@example.com")
    assert listed["listen"] == "127.0.0.1:8088" and listed["admin_url"] == PROXY["admin_url"]


def test_without_tls_fields_the_answers_say_none_and_internal(client, admin):
    assert client.post("/api/v1/proxies", json=PROXY, headers=admin).status_code == 201
    shown = client.get("/api/v1/proxies/edge", headers=admin).json
    assert (shown["listen_tls"], shown["tls_issuer"], shown["acme_email"]) == (
        None, "internal", None)


@pytest.mark.parametrize(("fields", "path"), [
    ({"listen_tls": "nowhere"}, "listen_tls"),
    ({"listen_tls": "127.0.0.1:8088"}, "listen_tls"),
    ({"tls_issuer": "acme"}, "tls_issuer"),
    ({"listen_tls": ":8443", "acme_email": "ops@example.com"}, "acme_email"),
])
def test_bad_tls_fields_are_a_422_naming_the_field(client, admin, fields, path):
    response = client.post("/api/v1/proxies", json={**PROXY, **fields}, headers=admin)
    assert response.status_code == 422, response.json
    assert path in {d["path"] for d in response.json["details"]}


def test_an_unknown_issuer_is_refused_by_the_schema(client, admin):
    response = client.post("/api/v1/proxies", json={**PROXY, "listen_tls": ":8443",
                                                    "tls_issuer": "self"}, headers=admin)
    assert response.status_code == 422 and "tls_issuer" in str(response.json)


def tls_route(client: Any, admin: dict[str, str]) -> dict[str, Any]:
    [found] = [r for r in client.get("/api/v1/routes", headers=admin).json["items"]
               if r["service"] == "web"]
    return found


def put_tls(app: Any) -> None:
    """Turn the installed ``web``'s route into a TLS one (as a spec with tls: true)."""
    store = app.extensions["berth"].store
    service = store.services.get("web")
    service["spec"]["expose"][0]["tls"] = True
    store.state.transact(lambda tx: store.services.stage_put(tx, service))


def test_a_tls_route_on_a_proxy_without_a_tls_listener_is_shown_as_a_problem(
        app, client, admin):
    install(client, admin, "web", public_host="web.test")
    put_instance(app, "web", "a", 20001)
    put_tls(app)
    assert tls_route(client, admin)["state"] == "serving"          # no proxy: nothing to say
    assert client.post("/api/v1/proxies", json=PROXY, headers=admin).status_code == 201
    assert tls_route(client, admin)["state"] == "no TLS listener on proxy edge"
    client.delete("/api/v1/proxies/edge", headers=admin)
    with_tls = {**PROXY, "listen_tls": "127.0.0.1:8443"}
    assert client.post("/api/v1/proxies", json=with_tls, headers=admin).status_code == 201
    assert tls_route(client, admin)["state"] == "serving"


def test_the_cli_registers_and_lists_a_tls_listener(app, client, admin, tokens, monkeypatch,
                                                    tmp_path):
    with serving(app) as url:
        monkeypatch.setenv("BERTH_URL", url)
        monkeypatch.setenv("BERTH_TOKEN", tokens["admin"])
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
        runner = CliRunner()
        added = runner.invoke(cli, ["proxies", "add", "edge", "--kind", "caddy",
                                    "--admin-url", "http://127.0.0.1:2019",
                                    "--listen", "127.0.0.1:8088",
                                    "--listen-tls", "127.0.0.1:8443",
                                    "--tls-issuer", "internal"])
        assert added.exit_code == 0, added.output
        listed = runner.invoke(cli, ["proxies", "list"])
        assert "127.0.0.1:8443 (internal)" in listed.output
        bad = runner.invoke(cli, ["proxies", "add", "x", "--kind", "caddy",
                                  "--admin-url", "http://127.0.0.1:2019",
                                  "--listen", "127.0.0.1:8088", "--listen-tls", "8443"])
        assert bad.exit_code != 0 and "listen_tls" in bad.output
        assert "Traceback" not in bad.output
