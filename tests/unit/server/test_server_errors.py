"""Errors: one shape everywhere, the right status, never a 500 for bad input."""

from __future__ import annotations

import time
from typing import Any

import pytest


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.data[:300])
    body = response.get_json()
    assert set(body) >= {"error", "message", "details"}
    assert isinstance(body["details"], list)
    if code:
        assert body["error"] == code
    return body


@pytest.fixture
def admin(tokens: dict[str, str]) -> dict[str, str]:
    return bearer(tokens["admin"])


def test_malformed_json_is_400(client: Any, admin: dict[str, str]) -> None:
    response = client.post("/api/v1/services", data=b'{"package": ', headers=admin,
                           content_type="application/json")
    assert_error(response, 400, "bad_request")


def test_wrong_content_type_is_415(client: Any, admin: dict[str, str]) -> None:
    response = client.post("/api/v1/services", data="package=hello", headers=admin,
                           content_type="application/x-www-form-urlencoded")
    assert_error(response, 415, "unsupported_media_type")


def test_body_too_large_is_413(make_app: Any, tokens: dict[str, str]) -> None:
    client = make_app(BERTH_MAX_BODY="1000").test_client()
    response = client.post("/api/v1/services", data=b'{"package": "' + b"x" * 5000 + b'"}',
                           headers=bearer(tokens["admin"]), content_type="application/json")
    assert_error(response, 413, "too_large")


def test_invalid_request_lists_every_problem(client: Any, admin: dict[str, str]) -> None:
    body = {"package": "hello", "name": "Not Valid!", "instances": -3, "colour": "red"}
    problems = assert_error(client.post("/api/v1/services", json=body, headers=admin),
                            422, "invalid")["details"]
    paths = " ".join(p["path"] + " " + p["message"] for p in problems)
    assert len(problems) == 3
    assert "body/name" in paths and "body/instances" in paths and "colour" in paths


def test_invalid_options_are_422_with_every_problem(client: Any, admin: dict[str, str]) -> None:
    body = {"package": "hello", "options": {"no_such_option_1": 1, "no_such_option_2": 2}}
    response = client.post("/api/v1/services", json=body, headers=admin)
    problems = assert_error(response, 422)["details"]
    assert len(problems) >= 1 and all(p["path"].startswith("options") for p in problems)


def test_unknown_package_is_404(client: Any, admin: dict[str, str]) -> None:
    assert_error(client.get("/api/v1/packages/no-such-package"), 404)
    assert_error(client.post("/api/v1/services", json={"package": "no-such-package"},
                             headers=admin), 404)
    assert_error(client.get("/api/v1/services/nothing-here"), 404)
    assert_error(client.get("/api/v1/deployments/d-0000"), 404)
    assert_error(client.get("/api/v1/no/such/route"), 404)


def test_name_taken_is_409(client: Any, admin: dict[str, str]) -> None:
    first = client.post("/api/v1/services", json={"package": "hello", "name": "web"},
                        headers=admin)
    assert first.status_code == 202, first.json
    second = client.post("/api/v1/services", json={"package": "hello", "name": "web"},
                         headers=admin)
    assert_error(second, 409, "service_exists")


def test_change_while_deploying_is_409(client: Any, admin: dict[str, str]) -> None:
    assert client.post("/api/v1/services", json={"package": "hello", "name": "busy"},
                       headers=admin).status_code == 202
    response = client.patch("/api/v1/services/busy", json={"instances": 3}, headers=admin)
    assert_error(response, 409, "deployment_in_progress")


@pytest.mark.parametrize("raw", [
    b"[" * 100000 + b"]" * 100000,                       # deeply nested
    b'{"a":' * 40 + b"1" + b"}" * 40,                    # nested past the limit
    b'{"package": "hello", "instances": NaN}',
    b'{"package": "hello", "instances": Infinity}',
    b'{"package": "hello", "instances": 1e999}',
    b'{"package": "hello", "instances": ' + b"9" * 5000 + b"}",
    b'{"package": "hello", "instances": 99999999999999999999999}',
    b'{"package": 12, "version": [], "options": "x", "instances": "4"}',
    b'{"package": "../../etc/passwd"}',
    b'{"package": "hello", "name": "' + "é".encode() * 50 + b'"}',
    b"\xff\xfe\x00",
    b'"just a string"',
    b"[]",
    b"null",
    b"",
])
def test_bad_input_never_500(client: Any, admin: dict[str, str], raw: bytes) -> None:
    for method, path in (("POST", "/api/v1/services"), ("PATCH", "/api/v1/services/web"),
                         ("POST", "/api/v1/packages/hello/render"), ("POST", "/api/v1/agents")):
        response = client.open(path, method=method, data=raw, headers=admin,
                               content_type="application/json")
        assert response.status_code < 500, (method, path, response.status_code,
                                             response.data[:200])
        if raw and path != "/api/v1/agents":
            assert_error(response, response.status_code)


@pytest.mark.parametrize("query", ["page=0", "page=abc", "per_page=100000", "page=-1",
                                   "page=" + "9" * 30, "q=" + "x" * 1000])
def test_bad_query_parameters_are_422(client: Any, query: str) -> None:
    assert_error(client.get(f"/api/v1/packages?{query}"), 422, "invalid")


def test_invalid_path_names_are_4xx(client: Any, admin: dict[str, str]) -> None:
    for path in ("/api/v1/packages/%00", "/api/v1/packages/..%2F..%2Fetc",
                 "/api/v1/services/" + "x" * 300, "/api/v1/packages/hello/versions/not-a-ver"):
        assert 400 <= client.get(path, headers=admin).status_code < 500, path


def test_security_headers_on_every_response(client: Any) -> None:
    for path in ("/healthz", "/api/v1/packages", "/api/v1/nothing"):
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "object-src 'none'" in csp
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"]


def test_redis_down_is_503_fast(make_app: Any) -> None:
    from tests.fixtures.live_server import free_port

    client = make_app(BERTH_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
                      BERTH_REDIS_TIMEOUT="0.5").test_client()
    for method, path in (("GET", "/api/v1/services"), ("GET", "/api/v1/deployments"),
                         ("POST", "/api/v1/services"), ("GET", "/readyz")):
        started = time.monotonic()
        response = client.open(path, method=method, json={"package": "hello"},
                               headers=bearer("berth_abcd1234_secret"))
        assert time.monotonic() - started < 3
        body = assert_error(response, 503, "unavailable")
        assert body["message"]
    assert client.get("/healthz").status_code == 200


def test_error_page_is_html_outside_the_api(client: Any) -> None:
    response = client.get("/no-such-page", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert response.mimetype == "text/html"


def test_an_install_no_replica_confirms_is_503_not_202(make_app: Any) -> None:
    """Acknowledged means durable: with a replica asked for and none there, the install
    is answered 503 ``not_durable`` within the wait, never 202 and never 500."""
    from server.auth import create_token

    app = make_app(BERTH_REDIS_MIN_REPLICAS="1", BERTH_REDIS_WAIT_TIMEOUT="0.3")
    admin = bearer(create_token(app.extensions["berth"].store, name="ha", role="admin")[1])
    client = app.test_client()
    started = time.monotonic()
    response = client.post("/api/v1/services", json={"package": "hello", "name": "web"},
                           headers=admin)
    assert time.monotonic() - started < 3
    body = assert_error(response, 503, "not_durable")
    assert "replicas" in body["message"] and body["hint"]
    assert response.headers["Retry-After"]
    assert app.extensions["berth"]._enqueue.calls == []      # nothing sent to workers
    relaxed = make_app(BERTH_REDIS_MIN_REPLICAS="0").test_client()
    assert relaxed.post("/api/v1/services", json={"package": "hello", "name": "api"},
                        headers=admin).status_code == 202
