"""Adding a remote repository answers at once (the first fetch is a worker task), and a
failed fetch shows no text the remote sent, in the API or the store front."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.fixtures.loopback_http import serve, url

MARKER = "SECRET-CONTAINER-91be"


class _Handler(BaseHTTPRequestHandler):
    """``/drip/…`` never finishes its body; ``/leaky/…`` serves an invalid listing whose
    schema errors quote the marker; ``/fail/…`` answers 500 with the marker."""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.server.hits.append(self.path)
        if self.path.startswith("/drip"):
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.server.stop.wait(30)
            return
        if self.path.startswith("/leaky"):
            body = ('{"indexVersion": 1, "packages": {"Env": ["TOKEN=' + MARKER + '"]}}')
            status = 200
        else:
            body, status = '{"container": {"Env": ["TOKEN=' + MARKER + '"]}}', 500
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())


@pytest.fixture
def remote() -> Iterator[ThreadingHTTPServer]:
    with serve(_Handler) as httpd:
        yield httpd


@pytest.fixture
def loopback_app(make_app: Any) -> Any:
    return make_app(BERTH_REPOSITORY_ALLOW_LOOPBACK="1")


def test_add_answers_202_and_leaves_the_fetch_to_a_worker(
        loopback_app: Any, tokens: dict[str, str], remote: ThreadingHTTPServer) -> None:
    client = loopback_app.test_client()
    answer = client.post("/api/v1/repositories", headers={
        "Authorization": f"Bearer {tokens['admin']}"},
        json={"name": "slow", "url": url(remote, "/drip/")})
    assert answer.status_code == 202, answer.json
    assert answer.headers["Location"].endswith("/repositories/slow")
    assert answer.json["pending"] is True and answer.json["error"] is None
    assert remote.hits == []  # the request fetched nothing
    enqueued = loopback_app.config.get("ENQUEUE") or loopback_app.extensions["berth"]._enqueue
    assert ("berth.refresh_repository", ["slow"]) in enqueued.calls
    shown = client.get("/api/v1/repositories/slow").json
    assert shown["pending"] is True and shown["kind"] == "remote"


def test_add_still_checks_fields_and_the_guard_first(make_app: Any,
                                                     tokens: dict[str, str]) -> None:
    client = make_app().test_client()
    headers = {"Authorization": f"Bearer {tokens['admin']}"}
    refused = client.post("/api/v1/repositories", headers=headers,
                          json={"name": "lab", "url": "http://127.0.0.1:9/"})
    assert refused.status_code == 422 and refused.json["error"] == "url_refused"
    assert client.get("/api/v1/repositories/lab").status_code == 404


@pytest.mark.parametrize("path", ["/fail/", "/leaky/"])
def test_a_failed_refresh_shows_no_remote_text_anonymously(
        loopback_app: Any, tokens: dict[str, str], remote: ThreadingHTTPServer,
        path: str) -> None:
    from worker.repository_fetcher import RemotePolicy, refresh

    store = loopback_app.extensions["berth"].store
    store.repositories.add({"name": "leaky", "url": url(remote, path), "priority": 5})
    assert refresh(store, "leaky", RemotePolicy(allow_loopback=True))["status"] == "failed"
    anonymous = loopback_app.test_client()
    listing = anonymous.get("/api/v1/repositories")
    assert listing.status_code == 200
    row = next(r for r in listing.json["items"] if r["name"] == "leaky")
    assert row["stale"] and row["error"]
    assert MARKER not in listing.get_data(as_text=True)
    assert MARKER not in anonymous.get("/api/v1/repositories/leaky").get_data(as_text=True)
    page = anonymous.get("/repositories")
    assert page.status_code == 200 and "leaky" in page.get_data(as_text=True)
    assert MARKER not in page.get_data(as_text=True)
