"""Auth: roles on the API, tokens stored hashed, sessions, the admin CLI."""

from __future__ import annotations

import hashlib
from typing import Any

from click.testing import CliRunner

INSTALL = {"package": "hello", "instances": 1}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_install_without_token_is_401(client: Any) -> None:
    response = client.post("/api/v1/services", json=INSTALL)
    assert response.status_code == 401
    assert response.json["error"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_install_with_viewer_or_maintainer_token_is_403(client: Any,
                                                         tokens: dict[str, str]) -> None:
    for role in ("viewer", "maintainer"):
        response = client.post("/api/v1/services", json=INSTALL, headers=bearer(tokens[role]))
        assert response.status_code == 403, role
        assert response.json["error"] == "forbidden"


def test_install_with_admin_token_is_accepted(client: Any, tokens: dict[str, str]) -> None:
    response = client.post("/api/v1/services", json=INSTALL, headers=bearer(tokens["admin"]))
    assert response.status_code == 202, response.json
    assert response.json["service"]["created_by"].startswith("token:")
    assert response.headers["Location"].endswith(response.json["deployment"]["id"])


def test_unknown_or_malformed_token_is_401(client: Any, tokens: dict[str, str]) -> None:
    admin = tokens["admin"]
    for header in (f"Bearer {admin[:-2]}xx", "Bearer nonsense", f"Basic {admin}", "Bearer "):
        response = client.get("/api/v1/packages", headers={"Authorization": header})
        assert response.status_code == 401, header


def test_tokens_are_stored_hashed(app: Any, tokens: dict[str, str]) -> None:
    redis = app.extensions["berth"].redis
    dump = " ".join(str(redis.hgetall(k)) for k in redis.keys("berth:token:*"))
    for token in tokens.values():
        assert token not in dump
        assert token.split("_")[-1] not in dump
        assert hashlib.sha256(token.encode()).hexdigest() in dump


def test_revoked_token_stops_working(app: Any, client: Any, tokens: dict[str, str]) -> None:
    store = app.extensions["berth"].store
    token_id = tokens["viewer"].split("_")[1]
    assert client.get("/api/v1/whoami", headers=bearer(tokens["viewer"])).json["role"] == "viewer"
    assert store.auth.revoke_token(token_id)
    assert client.get("/api/v1/whoami", headers=bearer(tokens["viewer"])).status_code == 401


def test_anonymous_role_none_needs_login_to_browse(make_app: Any) -> None:
    client = make_app(BERTH_ANONYMOUS_ROLE="none").test_client()
    assert client.get("/api/v1/packages").status_code == 401


def test_anonymous_viewer_browses_by_default(client: Any) -> None:
    response = client.get("/api/v1/packages")
    assert response.status_code == 200
    assert response.json["total"] >= 1


def test_password_login_session_and_logout(app: Any) -> None:
    from server.auth import current_identity, hash_password, login_with_password, logout

    store = app.extensions["berth"].store
    store.auth.add_user("ann", role="admin", password_hash=hash_password("correct horse"))
    stored = store.auth.get_user("ann")["password_hash"]
    assert "correct horse" not in stored and stored.startswith("scrypt:")
    with app.test_request_context("/"):
        identity = login_with_password("ann", "correct horse")
        assert identity.actor == "user:ann" and identity.allows("admin")
        logout()
        assert current_identity().kind == "anonymous"
    with app.test_request_context("/"):
        try:
            login_with_password("ann", "wrong")
        except Exception as exc:  # noqa: BLE001
            assert getattr(exc, "status", None) == 401
        else:
            raise AssertionError("a wrong password logged in")


def test_session_ends_when_user_removed(app: Any) -> None:
    from server.auth import current_identity, hash_password, login_with_password

    store = app.extensions["berth"].store
    store.auth.add_user("bob", role="admin", password_hash=hash_password("secret-pass"))
    with app.test_request_context("/") as ctx:
        login_with_password("bob", "secret-pass")
        saved = dict(ctx.session)
    store.auth.remove_user("bob")
    with app.test_request_context("/") as ctx:
        ctx.session.update(saved)
        assert current_identity().kind == "anonymous"


def test_session_caller_needs_csrf_token_for_unsafe_api_calls(app: Any,
                                                              tokens: dict[str, str]) -> None:
    import re

    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    client.post("/login", data={"token": tokens["admin"], "csrf_token": csrf})
    assert client.get("/api/v1/whoami").json["kind"] == "token"
    response = client.post("/api/v1/services", json=INSTALL)
    assert response.status_code == 403
    assert response.json["error"] == "csrf_failed"


def test_admin_cli_token_create_list_revoke(server_redis_url: str, app: Any,
                                            monkeypatch: Any) -> None:
    from server.client.cli import cli

    monkeypatch.setenv("BERTH_REDIS_URL", server_redis_url)
    runner = CliRunner()
    created = runner.invoke(cli, ["admin", "token", "create", "--role", "admin", "--name",
                                  "ci", "--raw"])
    assert created.exit_code == 0, created.output
    token = created.output.strip()
    assert token.startswith("berth_") and "\n" not in token
    listed = runner.invoke(cli, ["admin", "token", "list", "--json"])
    assert listed.exit_code == 0
    assert token not in listed.output and token.split("_")[1] in listed.output
    assert app.test_client().get("/api/v1/whoami",
                                 headers=bearer(token)).json["actor"].startswith("token:")
    revoked = runner.invoke(cli, ["admin", "token", "revoke", token.split("_")[1]])
    assert revoked.exit_code == 0
    assert app.test_client().get("/api/v1/whoami", headers=bearer(token)).status_code == 401


def test_admin_cli_users(server_redis_url: str, app: Any, monkeypatch: Any) -> None:
    from server.client.cli import cli

    monkeypatch.setenv("BERTH_REDIS_URL", server_redis_url)
    runner = CliRunner()
    added = runner.invoke(cli, ["admin", "user", "add", "carol", "--role", "maintainer",
                                "--password-stdin"], input="a-long-password\n")
    assert added.exit_code == 0, added.output
    listed = runner.invoke(cli, ["admin", "user", "list", "--json"])
    assert "carol" in listed.output and "scrypt" not in listed.output
    short = runner.invoke(cli, ["admin", "user", "passwd", "carol", "--password-stdin"],
                          input="short\n")
    assert short.exit_code != 0 and "8 characters" in short.output
    assert runner.invoke(cli, ["admin", "user", "remove", "carol"]).exit_code == 0
    assert runner.invoke(cli, ["admin", "user", "remove", "carol"]).exit_code == 4


def test_password_guessing_is_locked_out(app: Any) -> None:
    from server.auth import MAX_FAILED_LOGINS, hash_password, login_with_password

    store = app.extensions["berth"].store
    store.auth.add_user("dan", role="viewer", password_hash=hash_password("right-password"))
    statuses = []
    for _ in range(MAX_FAILED_LOGINS + 1):
        with app.test_request_context("/"):
            try:
                login_with_password("dan", "wrong-guess")
            except Exception as exc:  # noqa: BLE001
                statuses.append(getattr(exc, "status", None))
    assert statuses == [401] * MAX_FAILED_LOGINS + [429]
    with app.test_request_context("/"):
        try:
            login_with_password("dan", "right-password")
        except Exception as exc:  # noqa: BLE001
            assert getattr(exc, "status", None) == 429
        else:
            raise AssertionError("a locked-out name logged in")
