"""Store-front sessions and login redirects: the attacks they must withstand.

A session is a random id kept in Redis and in the signed cookie; logging out deletes
the id, so a copy of the cookie replayed later is anonymous. The login page's
``next`` only ever sends the browser to a path on this site.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from server.auth import hash_password

INSTALL = {"package": "hello", "instances": 1}


def _csrf(client: Any) -> str:
    page = client.get("/login").get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "no CSRF token in the login page"
    return match.group(1)


def _login(client: Any, app: Any, *, next_url: str = "/") -> Any:
    store = app.extensions["berth"].store
    if store.auth.get_user("ann") is None:
        store.auth.add_user("ann", role="admin", password_hash=hash_password("correct horse"))
    return client.post("/login", data={"username": "ann", "password": "correct horse",
                                       "csrf_token": _csrf(client), "next": next_url})


def _cookie(client: Any) -> str:
    cookie = client.get_cookie("berth_session")
    assert cookie is not None, "no session cookie"
    return str(cookie.value)


# open redirects -------------------------------------------------------------------
@pytest.mark.parametrize("target", [
    "/\t/evil.com", "/\n/x", "/\r\n/x", "/\\evil.com", "//evil.com", "/ /evil.com",
    "https://evil.com/", "/%09/evil.com", "\t//evil.com", "/\x00/x", "javascript:alert(1)",
])
def test_login_next_never_leaves_the_site(app: Any, target: str) -> None:
    client = app.test_client()
    answer = _login(client, app, next_url=target)
    assert answer.status_code == 302, answer.get_data(as_text=True)[:300]
    location = answer.headers["Location"]
    assert location.startswith("/") and not location.startswith("//"), location
    assert "evil.com" not in location
    assert not re.search(r"[\x00-\x20\\]", location), repr(location)


@pytest.mark.parametrize("query", ["next=/%09/evil.com", "next=/%0A/x", "next=/%0D%0A/x"])
def test_login_page_with_hostile_next_answers_without_error(client: Any, query: str) -> None:
    page = client.get(f"/login?{query}")
    assert page.status_code == 200
    field = re.search(r'name="next" value="([^"]*)"', page.get_data(as_text=True))
    assert field and field.group(1) == "/", field


def test_login_next_keeps_a_local_path_and_query(app: Any) -> None:
    answer = _login(app.test_client(), app, next_url="/packages/hello?tab=notes")
    assert answer.headers["Location"] == "/packages/hello?tab=notes"


# sessions ---------------------------------------------------------------------------
def test_replayed_cookie_after_logout_is_anonymous(app: Any) -> None:
    client = app.test_client()
    assert _login(client, app).status_code == 302
    stolen = _cookie(client)
    assert client.get("/api/v1/whoami").json["actor"] == "user:ann"
    token = _csrf(client)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302

    replay = app.test_client()
    replay.set_cookie("berth_session", stolen)
    assert replay.get("/api/v1/whoami").json["kind"] == "anonymous"
    page = replay.get("/services/new")
    assert page.status_code in (302, 401, 403) or "Log in" in page.get_data(as_text=True)


def test_session_id_is_kept_in_redis_and_removed_at_logout(app: Any) -> None:
    client = app.test_client()
    _login(client, app)
    redis = app.extensions["berth"].redis
    assert len(redis.keys("berth:session:*")) == 1
    client.post("/logout", data={"csrf_token": _csrf(client)})
    assert redis.keys("berth:session:*") == []


def test_session_without_a_stored_id_is_anonymous(app: Any) -> None:
    client = app.test_client()
    store = app.extensions["berth"].store
    store.auth.add_user("ann", role="admin", password_hash=hash_password("correct horse"))
    mark = __import__("hashlib").sha256(
        store.auth.get_user("ann")["password_hash"].encode()).hexdigest()[:16]
    with client.session_transaction() as session:
        session["identity"] = {"kind": "user", "name": "ann", "mark": mark, "sid": "forged"}
    assert client.get("/api/v1/whoami").json["kind"] == "anonymous"


# CSRF on the API for session callers -----------------------------------------------
@pytest.mark.parametrize("header", ["", " ", "\t"])
def test_blank_authorization_header_does_not_skip_api_csrf(app: Any, header: str) -> None:
    client = app.test_client()
    _login(client, app)
    answer = client.post("/api/v1/services", json=INSTALL, headers={"Authorization": header})
    assert answer.status_code == 403, answer.json
    assert answer.json["error"] == "csrf_failed"


def test_session_caller_with_csrf_token_may_call_the_api(app: Any) -> None:
    client = app.test_client()
    _login(client, app)
    token = _csrf(client)
    answer = client.post("/api/v1/services", json=INSTALL, headers={"X-CSRFToken": token})
    assert answer.status_code == 202, answer.json
