"""A maintainer cannot unmask another service's secrets (real Redis, real catalog).

The service record keeps the secret paths of the package actually installed, so a
package published later under the same name and version without ``x-secret`` (in a
repository that outranks the first) changes nothing, nor does yanking it. The values
are sealed at rest: the records in Redis never hold the text.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import redis

from catalog import MASK
from catalog.bundle import build_bundle

UNIVERSE = Path(__file__).resolve().parents[3] / "universe"
HELLO = UNIVERSE / "packages" / "hello" / "1.0.0"
TOKEN = "Tr0ub4dor-and-3-horses"  # noqa: S105 - the value the attack looks for
GZ = {"Content-Type": "application/gzip"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _unmarked_copy(target: Path, name: str = "hello", version: str = "1.0.0") -> Path:
    """``hello`` with every ``x-secret`` removed: what the attacker publishes."""
    folder = target / "packages" / name / version
    shutil.copytree(HELLO, folder)
    text = (folder / "config.json").read_text()
    config = json.loads(text)
    token = config["properties"]["auth"]["properties"]["token"]
    token.pop("x-secret")
    token.pop("x-secret-optional", None)   # (it needs x-secret)
    (folder / "config.json").write_text(json.dumps(config))
    meta = json.loads((folder / "package.json").read_text())
    (folder / "package.json").write_text(json.dumps({**meta, "name": name,
                                                     "version": version}))
    return folder


def _everything_shown(client: Any, headers: dict[str, str]) -> str:
    """Every view of service ``web`` as one text: status, list, history, preview."""
    parts = [client.get("/api/v1/services/web", headers=headers).get_data(as_text=True),
             client.get("/api/v1/services", headers=headers).get_data(as_text=True),
             client.get("/api/v1/services/web/history", headers=headers).get_data(
                 as_text=True)]
    return "\n".join(parts)


def _install_web(client: Any, admin: str) -> None:
    body = {"package": "hello", "version": "1.0.0", "name": "web",
            "options": {"auth": {"token": TOKEN}}}
    answer = client.post("/api/v1/services", json=body, headers=bearer(admin))
    assert answer.status_code == 202, answer.get_json()
    assert TOKEN not in answer.get_data(as_text=True)


def _redis_holds(url: str, text: str) -> bool:
    db = redis.Redis.from_url(url)
    for key in db.scan_iter("*"):
        kind = db.type(key)
        if kind == b"string":
            values = [db.get(key) or b""]
        elif kind == b"list":
            values = db.lrange(key, 0, -1)
        elif kind == b"hash":
            values = list(db.hgetall(key).values())
        else:
            continue
        if any(text.encode() in v for v in values):
            return True
    return False


def test_a_higher_priority_repository_without_x_secret_unmasks_nothing(
        make_app: Any, tmp_path: Path, server_redis_url: str) -> None:
    from server.auth import create_token

    first = make_app(CATALOG=None)
    client = first.test_client()
    admin = create_token(first.extensions["berth"].store, name="a", role="admin")[1]
    _install_web(client, admin)
    assert first.extensions["berth"].catalog.get().resolve("hello", "1.0.0").repository \
        == "universe"

    # same name and version, no x-secret, in a repository that outranks the universe;
    # the server is restarted with it (directories are read when a server starts), and
    # the name is handed to it (names are owned: priority alone no longer moves one)
    override = tmp_path / "override"
    _unmarked_copy(override)
    app = make_app(CATALOG=None, BERTH_REPOSITORY_DIRS=f"override={override}@1")
    client = app.test_client()
    moved = client.post("/api/v1/packages/hello/owners/transfer",
                        json={"repository": "override"}, headers=bearer(admin))
    assert moved.status_code == 200, moved.get_json()
    assert app.extensions["berth"].catalog.get().resolve("hello", "1.0.0").repository \
        == "override"
    for headers in ({}, bearer(admin)):   # anonymous viewer, then admin
        shown = _everything_shown(client, headers)
        assert '"web"' in shown and TOKEN not in shown
    assert not _redis_holds(server_redis_url, TOKEN)


def test_publishing_and_yanking_the_same_version_in_hosted_unmasks_nothing(
        client: Any, tokens: dict[str, str], tmp_path: Path, server_redis_url: str) -> None:
    _install_web(client, tokens["admin"])
    # the name is shared with the maintainer (names are owned), so hosted serves it
    shared = client.post("/api/v1/packages/hello/owners", json={"token": "unit-maintainer"},
                         headers=bearer(tokens["admin"]))
    assert shared.status_code == 200, shared.get_json()
    bundle = build_bundle(_unmarked_copy(tmp_path / "attack"))
    published = client.post("/api/v1/packages", data=bundle,
                            headers={**bearer(tokens["maintainer"]), **GZ})
    assert published.status_code == 201, published.get_json()
    shown = client.get("/api/v1/packages/hello/versions/1.0.0").get_json()
    assert shown["repository"] == "hosted"
    assert "x-secret" not in json.dumps(shown["config"])
    for headers in ({}, bearer(tokens["admin"])):
        assert TOKEN not in _everything_shown(client, headers)
    yank = client.post("/api/v1/packages/hello/versions/1.0.0/yank",
                       json={"reason": "oops"}, headers=bearer(tokens["maintainer"]))
    assert yank.status_code == 200
    for headers in ({}, bearer(tokens["admin"])):
        assert TOKEN not in _everything_shown(client, headers)
    assert not _redis_holds(server_redis_url, TOKEN)


def test_an_upgrade_keeps_the_value_sealed_and_its_path_recorded(
        client: Any, tokens: dict[str, str], app: Any) -> None:
    _install_web(client, tokens["admin"])
    ops = app.extensions["berth"].ops
    ops.cancel_deployment(ops.get_service("web")["deployment"], actor="t")
    answer = client.patch("/api/v1/services/web", json={"version": "2.0.0"},
                         headers=bearer(tokens["admin"]))
    assert answer.status_code in (200, 202), answer.get_json()
    service = ops.get_service("web")
    assert "/auth/token" in service["secret_paths"]
    assert TOKEN not in json.dumps(service)
    assert TOKEN not in _everything_shown(client, {})


def test_a_record_without_secret_paths_shows_no_option_value(client: Any, app: Any,
                                                             tokens: dict[str, str]) -> None:
    """Records written before secret paths were kept: every value is masked."""
    _install_web(client, tokens["admin"])
    store = app.extensions["berth"].store

    def legacy(doc: dict[str, Any]) -> dict[str, Any]:
        doc.pop("secret_paths")
        doc["options"] = {**doc["options"], "auth": {"token": TOKEN}}
        doc["spec"]["env"]["HELLO_TOKEN"] = TOKEN
        return doc

    store.services.update("web", legacy)
    shown = client.get("/api/v1/services/web").get_json()
    assert TOKEN not in json.dumps(shown)
    assert shown["options"]["message"] == "********"


def test_without_a_data_key_a_secret_is_refused_with_the_reason(make_app: Any) -> None:
    from server.auth import create_token
    from server.settings import require_data_key

    app = make_app(BERTH_DATA_KEY="")
    client = app.test_client()
    admin = create_token(app.extensions["berth"].store, name="a", role="admin")[1]
    body = {"package": "hello", "name": "web", "options": {"auth": {"token": TOKEN}}}
    answer = client.post("/api/v1/services", json=body, headers=bearer(admin))
    assert answer.status_code == 503
    assert "BERTH_DATA_KEY is not set" in answer.get_json()["message"]
    assert client.get("/api/v1/services/web").status_code == 404
    with pytest.raises(SystemExit, match="BERTH_DATA_KEY is not set"):
        require_data_key({})


def test_a_malformed_data_key_stops_the_server_with_the_variable_named(make_app: Any) -> None:
    from server.settings import SettingsError

    with pytest.raises(SettingsError, match="BERTH_DATA_KEY: key 1 is not a Fernet key"):
        make_app(BERTH_DATA_KEY="not-a-fernet-key")


def test_the_mask_sent_back_by_a_form_keeps_the_secret(client: Any, app: Any,
                                                       tokens: dict[str, str]) -> None:
    _install_web(client, tokens["admin"])
    ops = app.extensions["berth"].ops
    ops.cancel_deployment(ops.get_service("web")["deployment"], actor="t")
    shown = client.get("/api/v1/services/web").get_json()["options"]
    assert shown["auth"]["token"] == MASK
    answer = client.patch("/api/v1/services/web", json={"version": "1.0.0", "options": shown},
                          headers=bearer(tokens["admin"]))
    assert answer.status_code == 202, answer.get_json()
    keys = app.extensions["berth"].settings.data_keys()
    assert keys.open(ops.get_service("web")["options"]["auth"]["token"]) == TOKEN


def test_a_secret_under_allof_and_a_ref_is_recorded_sealed_and_masked(
        make_app: Any, tmp_path: Path, server_redis_url: str) -> None:
    """End to end for a composite schema: the path reaches the record, the value is sealed."""
    from server.auth import create_token

    folder = _unmarked_copy(tmp_path / "team", name="vault-demo")
    config = json.loads((folder / "config.json").read_text())
    token = config["properties"]["auth"]["properties"].pop("token")
    config["$defs"] = {"token": {**token, "x-secret": True}}
    config["properties"]["auth"] = {"type": "object", "default": {"token": ""},
                                    "properties": {"token": {}},
                                    "allOf": [{"properties": {
                                        "token": {"$ref": "#/$defs/token"}}}]}
    (folder / "config.json").write_text(json.dumps(config))
    app = make_app(CATALOG=None, BERTH_REPOSITORY_DIRS=f"team={tmp_path / 'team'}")
    client = app.test_client()
    admin = create_token(app.extensions["berth"].store, name="a", role="admin")[1]
    body = {"package": "vault-demo", "name": "web", "options": {"auth": {"token": TOKEN}}}
    answer = client.post("/api/v1/services", json=body, headers=bearer(admin))
    assert answer.status_code == 202, answer.get_json()
    record = app.extensions["berth"].ops.get_service("web")
    assert record["secret_paths"] == ["/auth/token"]
    assert "$sealed" in json.dumps(record["spec"]["env"])
    assert TOKEN not in _everything_shown(client, {})
    assert not _redis_holds(server_redis_url, TOKEN)
