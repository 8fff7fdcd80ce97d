"""Generated secrets through the API (real Redis, real catalog, no worker).

A package whose token is ``x-generate``: installed with it empty, the token is made
once, shown in the install answer, sealed in Redis, and identical after an upgrade, a
rollback, an upgrade again and a form sent back empty. A version that adds a
generated option gets it at the upgrade, and gets the same value back after a
rollback to a generation that lacked it. Only an admin may see the values again, and
each showing is in the audit stream.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import redis

from catalog import MASK

UNIVERSE = Path(__file__).resolve().parents[3] / "universe" / "packages" / "hello"
GENERATE = {"kind": "password", "length": 32}
OWN_TOKEN = "my-own-token"  # noqa: S105 - an admin's own value, which must stay


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _gen_package(root: Path) -> None:
    """``gen`` 1.0.0 and 2.0.0: hello with a generated token; 2.0.0 adds ``api_key``."""
    for version in ("1.0.0", "2.0.0"):
        folder = root / "packages" / "gen" / version
        shutil.copytree(UNIVERSE / version, folder)
        meta = json.loads((folder / "package.json").read_text())
        meta.update(name="gen", upgradesFrom=">=1.0.0")
        (folder / "package.json").write_text(json.dumps(meta))
        config = json.loads((folder / "config.json").read_text())
        auth = config["properties"]["auth"]["properties"]
        auth["token"].pop("x-secret-optional", None)   # generated, so never empty
        auth["token"]["x-generate"] = GENERATE
        template = (folder / "service.json.j2").read_text()
        if version == "2.0.0":
            auth["api_key"] = {"type": "string", "x-secret": True, "default": "",
                               "x-generate": {"kind": "hex", "length": 16}}
            template = template.replace(
                '"HELLO_TOKEN": {{ options.auth.token | tojson }}',
                '"HELLO_TOKEN": {{ options.auth.token | tojson }},\n'
                '    "HELLO_API_KEY": {{ options.auth.api_key | tojson }}')
            assert "HELLO_API_KEY" in template
        (folder / "config.json").write_text(json.dumps(config))
        (folder / "service.json.j2").write_text(template)


@pytest.fixture
def gen_app(make_app: Any, tmp_path: Path) -> Any:
    _gen_package(tmp_path / "team")
    return make_app(CATALOG=None, BERTH_REPOSITORY_DIRS=f"team={tmp_path / 'team'}")


@pytest.fixture
def roles(gen_app: Any) -> dict[str, str]:
    from server.auth import create_token

    store = gen_app.extensions["berth"].store
    return {role: create_token(store, name=f"unit-{role}", role=role)[1]
            for role in ("viewer", "maintainer", "admin")}


class Service:
    """The ``web`` service of ``gen``: its record opened, and its changes settled."""

    def __init__(self, app: Any, admin: str) -> None:
        self.app, self.client, self.admin = app, app.test_client(), admin
        self.berth = app.extensions["berth"]
        self.keys = self.berth.settings.data_keys()

    def settle(self) -> None:
        """Cancel the queued deployment (no worker runs here) so the next change may go."""
        ops = self.berth.ops
        current = ops.get_service("web").get("deployment")
        if current:
            ops.cancel_deployment(current, actor="t")

    def send(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        answer = self.client.open(f"/api/v1/services{path}", method=method, json=body,
                                  headers=bearer(self.admin))
        assert answer.status_code in (200, 202), answer.get_json()
        self.settle()
        return dict(answer.get_json())

    def options(self) -> dict[str, Any]:
        return self.keys.open_tree(self.berth.ops.get_service("web")["options"])

    def env(self) -> dict[str, Any]:
        return self.keys.open_tree(self.berth.ops.get_service("web")["spec"]["env"])

    def shown(self) -> str:
        """Every view but the reveal, as one text."""
        parts = [self.client.get(p, headers=bearer(self.admin)).get_data(as_text=True)
                 for p in ("/api/v1/services/web", "/api/v1/services",
                           "/api/v1/services/web/history", "/api/v1/deployments")]
        events = self.berth.store.state.read_events("0-0", count=1000)
        return "\n".join(parts) + json.dumps(events)


@pytest.fixture
def web(gen_app: Any, roles: dict[str, str]) -> tuple[Service, str]:
    svc = Service(gen_app, roles["admin"])
    answer = svc.send("POST", "", {"package": "gen", "version": "1.0.0", "name": "web"})
    generated = answer["generated_secrets"]
    assert [g["path"] for g in generated] == ["/auth/token"]
    return svc, generated[0]["value"]


def _redis_holds(url: str, text: str) -> bool:
    db = redis.Redis.from_url(url)
    for key in db.scan_iter("*"):
        kind = db.type(key)
        if kind == b"string":
            values = [db.get(key) or b""]
        elif kind == b"list":
            values = db.lrange(key, 0, -1)
        elif kind == b"stream":
            values = [json.dumps({k.decode(): v.decode() for k, v in fields.items()}).encode()
                      for _id, fields in db.xrange(key)]
        elif kind == b"hash":
            values = list(db.hgetall(key).values())
        else:
            continue
        if any(text.encode() in v for v in values):
            return True
    return False


def test_an_empty_secret_is_generated_once_sealed_and_shown_nowhere(
        web: tuple[Service, str], server_redis_url: str) -> None:
    svc, token = web
    assert len(token) == 32 and token.isalnum()
    assert svc.options()["auth"]["token"] == token
    assert svc.env()["HELLO_TOKEN"] == token            # the rendered spec has it
    assert token not in svc.shown()
    record = svc.client.get("/api/v1/services/web", headers=bearer(svc.admin)).get_json()
    assert record["options"]["auth"]["token"] == MASK
    assert record["generated_secrets"] == {"/auth/token": MASK}
    assert not _redis_holds(server_redis_url, token)


def test_a_given_secret_is_not_replaced(gen_app: Any, roles: dict[str, str]) -> None:
    svc = Service(gen_app, roles["admin"])
    answer = svc.send("POST", "", {"package": "gen", "version": "1.0.0", "name": "web",
                                   "options": {"auth": {"token": OWN_TOKEN}}})
    assert answer["generated_secrets"] == []
    assert svc.options()["auth"]["token"] == OWN_TOKEN
    svc.send("PATCH", "/web", {"version": "2.0.0", "options": {"auth": {"token": ""}}})
    assert svc.options()["auth"]["token"] == OWN_TOKEN


def test_upgrade_rollback_and_upgrade_again_keep_every_value(
        web: tuple[Service, str], server_redis_url: str) -> None:
    svc, token = web
    svc.send("PATCH", "/web", {"version": "2.0.0"})
    key = svc.options()["auth"]["api_key"]               # added by 2.0.0: made now
    assert len(key) == 32 and svc.options()["auth"]["token"] == token
    assert (svc.env()["HELLO_TOKEN"], svc.env()["HELLO_API_KEY"]) == (token, key)

    svc.send("POST", "/web/rollback", {})                # to 1.0.0, which lacked api_key
    assert "api_key" not in svc.options()["auth"]
    assert svc.env()["HELLO_TOKEN"] == token
    svc.send("PATCH", "/web", {"instances": 3})          # a scale changes nothing
    svc.send("PATCH", "/web", {"version": "2.0.0"})      # the same key comes back
    assert svc.options()["auth"] == {"token": token, "api_key": key}
    svc.send("PATCH", "/web", {"version": "2.0.0", "options": {"auth": {"token": "",
                                                                        "api_key": ""}}})
    assert svc.options()["auth"] == {"token": token, "api_key": key}
    assert svc.env()["HELLO_API_KEY"] == key
    assert token not in svc.shown() and key not in svc.shown()
    assert not _redis_holds(server_redis_url, token)
    assert not _redis_holds(server_redis_url, key)


def test_only_an_admin_sees_the_values_and_each_showing_is_audited(
        web: tuple[Service, str], roles: dict[str, str]) -> None:
    svc, token = web
    url = "/api/v1/services/web/secrets"
    assert svc.client.get(url).status_code == 401
    for role in ("viewer", "maintainer"):
        refused = svc.client.get(url, headers=bearer(roles[role]))
        assert refused.status_code == 403 and token not in refused.get_data(as_text=True)
    before = svc.berth.store.state.last_event_id()
    answer = svc.client.get(url, headers=bearer(svc.admin))
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    assert answer.get_json() == {"service": "web", "generation": 1, "secrets": [
        {"path": "/auth/token", "value": token, "generated": True}]}
    events = svc.berth.store.state.read_events(before)
    assert [(e["type"], e["subject"]) for e in events] == [
        ("service.secrets_revealed", "web")]
    assert events[0]["actor"].startswith("token:") and events[0]["at"] > 0
    assert events[0]["data"] == {"generation": 1, "paths": ["/auth/token"]}
    assert token not in json.dumps(events)
    assert svc.client.get("/api/v1/services/nope/secrets",
                          headers=bearer(svc.admin)).status_code == 404


def test_the_preview_generates_but_keeps_nothing(gen_app: Any, roles: dict[str, str]) -> None:
    client = gen_app.test_client()
    answer = client.post("/api/v1/packages/gen/render", json={"version": "1.0.0"},
                         headers=bearer(roles["admin"]))
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["spec"]["env"]["HELLO_TOKEN"] == MASK


def _serve(app: Any) -> Any:
    """``app`` on a loopback port in a thread; returns (url, stop)."""
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        thread.join(timeout=5)

    return f"http://127.0.0.1:{server.server_port}", stop


def test_the_cli_prints_generated_values_once_and_shows_them_to_an_admin(
        gen_app: Any, roles: dict[str, str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    from click.testing import CliRunner

    from server.client.cli import cli

    url, stop = _serve(gen_app)
    monkeypatch.setenv("BERTH_URL", url)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))

    def berth(role: str, *args: str) -> Any:
        monkeypatch.setenv("BERTH_TOKEN", roles[role])
        return CliRunner().invoke(cli, list(args))

    try:
        installed = berth("admin", "install", "gen@1.0.0", "--name", "web")
        assert installed.exit_code == 0, installed.output
        assert "generated secrets (shown once" in installed.output
        token = gen_app.extensions["berth"].settings.data_keys().open(
            gen_app.extensions["berth"].ops.get_service("web")["options"]["auth"]["token"])
        assert f"/auth/token: {token}" in installed.output
        assert token not in berth("admin", "status", "web").output

        shown = berth("admin", "secrets", "show", "web")
        assert shown.exit_code == 0, shown.output
        assert shown.output.split("\n")[1].split() == ["/auth/token", token, "generated"]
        as_json = json.loads(berth("admin", "secrets", "show", "web", "--json").output)
        assert as_json["secrets"][0]["value"] == token
        refused = berth("maintainer", "secrets", "show", "web")
        assert refused.exit_code != 0 and token not in refused.output
        assert "admin" in refused.output
    finally:
        stop()


def test_a_service_that_ran_with_the_option_empty_keeps_it_empty_at_upgrade(
        web: tuple[Service, str]) -> None:
    """A record from before the option was generated (its value empty, nothing kept):
    the software set itself up without one, so an upgrade makes none for it; the
    option the new version adds is generated."""
    svc, _token = web

    def before_generation(doc: dict[str, Any]) -> dict[str, Any]:
        doc["options"]["auth"]["token"] = ""
        doc.pop("generated_secrets")
        return doc

    svc.berth.store.services.update("web", before_generation)
    svc.send("PATCH", "/web", {"version": "2.0.0"})
    auth = svc.options()["auth"]
    assert auth["token"] == "" and len(auth["api_key"]) == 32


def test_a_kept_value_is_never_replaced_and_rotation_reseals_it(
        make_app: Any, tmp_path: Path) -> None:
    from server.auth import create_token
    from worker.store.crypto import DataKeys, generate_key, rotate_store

    old, new = generate_key(), generate_key()
    _gen_package(tmp_path / "team")
    app = make_app(CATALOG=None, BERTH_REPOSITORY_DIRS=f"team={tmp_path / 'team'}",
                   BERTH_DATA_KEY=old)
    svc = Service(app, create_token(app.extensions["berth"].store, name="a",
                                    role="admin")[1])
    token = svc.send("POST", "", {"package": "gen", "version": "1.0.0",
                                  "name": "web"})["generated_secrets"][0]["value"]
    ops, store = svc.berth.ops, svc.berth.store
    service = ops.get_service("web")
    ops.update("web", spec=svc.keys.open_tree(service["spec"]), actor="t",
               options=svc.keys.open_tree(service["options"]),
               secret_paths=service["secret_paths"], generated={"/auth/token": "another"})
    kept = ops.get_service("web")["generated_secrets"]["/auth/token"]
    assert DataKeys([old]).open(kept) == token

    assert rotate_store(store, DataKeys([new, old]), ["web"]) == 1
    resealed = ops.get_service("web")["generated_secrets"]["/auth/token"]
    assert resealed != kept and DataKeys([new]).open(resealed) == token
