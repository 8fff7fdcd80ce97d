"""``/api/v1/registries``: credentials stored sealed, never shown back, admin only."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.unit.server.conftest import bearer
from worker.registries import credentials_for
from worker.store.crypto import DataKeys

PASSWORD = "s3cret-Registry-Pa55"   # noqa: S105 - the value the tests look for


def _keys(app: Any) -> DataKeys:
    keys = app.extensions["berth"].settings.data_keys()
    assert keys is not None
    return keys


def _add(client: Any, token: str, **body: Any) -> Any:
    return client.post("/api/v1/registries", json=body, headers=bearer(token))


def _everything_stored(app: Any) -> bytes:
    """Every key and value of the app's Redis (records and the event stream)."""
    redis = app.extensions["berth"].store.redis
    out = []
    for key in redis.scan_iter():
        kind = redis.type(key)
        if kind == b"string":
            out.append(redis.get(key))
        elif kind == b"stream":
            out.append(repr(redis.xrange(key)).encode())
        elif kind == b"set":
            out.append(repr(redis.smembers(key)).encode())
        elif kind == b"hash":
            out.append(repr(redis.hgetall(key)).encode())
    return b"\n".join(out)


def test_a_registry_is_stored_sealed_and_never_shown_back(app: Any, client: Any,
                                                          tokens: dict[str, str]) -> None:
    added = _add(client, tokens["admin"], host="Registry.Example.com:5000",
                 username="deploy", password=PASSWORD)
    assert added.status_code == 201, added.json
    assert added.json["host"] == "registry.example.com:5000"
    listed = client.get("/api/v1/registries", headers=bearer(tokens["admin"]))
    assert [(r["host"], r["username"]) for r in listed.json["items"]] == [
        ("registry.example.com:5000", "deploy")]
    events = client.get("/api/v1/events?since=0&timeout=0", headers=bearer(tokens["admin"]))
    for text in (added.get_data(as_text=True), listed.get_data(as_text=True),
                 events.get_data(as_text=True)):
        assert PASSWORD not in text and "$sealed" not in text
    assert PASSWORD.encode() not in _everything_stored(app)
    store = app.extensions["berth"].store
    auth = credentials_for(store, _keys(app),
                           "registry.example.com:5000/team/app:1")
    assert auth == {"username": "deploy", "password": PASSWORD}
    assert credentials_for(store, _keys(app), "berth/hello:1.0.0") is None


def test_adding_a_known_host_replaces_its_credentials(app: Any, client: Any,
                                                      tokens: dict[str, str]) -> None:
    first, second = PASSWORD + "-1", PASSWORD + "-2"
    assert _add(client, tokens["admin"], host="127.0.0.1:5055", username="a",
                password=first).status_code == 201
    again = _add(client, tokens["admin"], host="127.0.0.1:5055", username="b",
                 password=second)
    assert again.status_code == 200
    auth = credentials_for(app.extensions["berth"].store, _keys(app),
                           "127.0.0.1:5055/berth/hello:2.0.0")
    assert auth == {"username": "b", "password": second}


@pytest.mark.parametrize("role", ["viewer", "maintainer"])
def test_only_admins_see_or_change_registries(client: Any, tokens: dict[str, str],
                                              role: str) -> None:
    token = tokens[role]
    assert client.get("/api/v1/registries", headers=bearer(token)).status_code == 403
    assert _add(client, token, host="r.example.com", username="u",
                password=PASSWORD).status_code == 403
    assert client.delete("/api/v1/registries/r.example.com",
                         headers=bearer(token)).status_code == 403
    assert client.get("/api/v1/registries").status_code == 401


@pytest.mark.parametrize(("body", "paths"), [
    ({"host": "https://r.example.com/v2"}, ["host"]),
    ({"host": "r.example.com:99999"}, ["host"]),
    ({"host": "r_example"}, ["host"]),
    ({"host": "r.example.com", "username": "u"}, ["password"]),
    ({"host": "r.example.com", "password": PASSWORD}, ["username"]),
    ({"host": "r.example.com", "username": "u s", "password": PASSWORD + "\n"},
     ["username", "password"]),
])
def test_a_bad_registry_is_refused_with_every_problem_and_no_password_echoed(
        app: Any, client: Any, tokens: dict[str, str], body: dict[str, Any],
        paths: list[str]) -> None:
    answer = _add(client, tokens["admin"], **body)
    assert answer.status_code == 422, answer.json
    assert sorted(d["path"] for d in answer.json["details"]) == sorted(paths)
    assert PASSWORD not in answer.get_data(as_text=True)
    assert app.extensions["berth"].store.registries.list() == []


def test_removing_a_registry_forgets_it(app: Any, client: Any, tokens: dict[str, str]) -> None:
    _add(client, tokens["admin"], host="127.0.0.1:5055", username="u", password=PASSWORD)
    gone = client.delete("/api/v1/registries/127.0.0.1:5055", headers=bearer(tokens["admin"]))
    assert gone.status_code == 204
    again = client.delete("/api/v1/registries/127.0.0.1:5055",
                          headers=bearer(tokens["admin"]))
    assert again.status_code == 404 and again.json["error"] == "registry_not_found"
    assert app.extensions["berth"].store.registries.list() == []


def test_without_a_data_key_a_password_is_refused_and_nothing_stored(
        make_app: Any) -> None:
    app = make_app(BERTH_DATA_KEY="")
    from server.auth import create_token

    token = create_token(app.extensions["berth"].store, name="a", role="admin")[1]
    answer = _add(app.test_client(), token, host="r.example.com", username="u",
                  password=PASSWORD)
    assert answer.status_code == 503 and answer.json["error"] == "data_key_error"
    assert app.extensions["berth"].store.registries.list() == []
    assert PASSWORD not in json.dumps(answer.json)


def test_a_public_registry_needs_no_credentials(client: Any, tokens: dict[str, str]) -> None:
    added = _add(client, tokens["admin"], host="docker.io")
    assert added.status_code == 201 and added.json["username"] is None
