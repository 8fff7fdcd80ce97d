"""The store front's own error handler: a 401 becomes its login page; the API keeps its
JSON 401 (the redirect is not the server's one handler's business)."""

from __future__ import annotations

from typing import Any


def test_a_bad_token_on_a_page_sends_the_browser_to_the_login_page(client: Any) -> None:
    answer = client.get("/packages/hello/install?x=1",
                        headers={"Authorization": "Bearer not-a-token"})
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith("/login?next=/packages/hello/install?x%3D1")


def test_the_api_still_answers_401_as_json(client: Any) -> None:
    answer = client.post("/api/v1/services", json={"package": "hello"},
                         headers={"Authorization": "Bearer not-a-token",
                                  "Accept": "text/html"})
    assert answer.status_code == 401
    assert answer.get_json()["error"] == "unauthorized"
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="berth"'
