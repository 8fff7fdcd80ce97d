"""Remote repositories that drip, fail loudly or leak: the fetch stays bounded and the
recorded failure carries only a status and a short fixed reason."""

from __future__ import annotations

import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from catalog.errors import RepositoryError
from tests.fixtures.loopback_http import serve, url
from worker.repository_fetcher import Fetcher, RemotePolicy, refresh

MARKER = "SECRET-CONTAINER-7f3a"
# An invalid listing whose schema errors quote the remote's own text.
LEAKY_JSON = ('{"indexVersion": 1, "packages": {"container": {"Env": ["DB_PASSWORD='
              + MARKER + '"]}}}').encode()


class _Handler(BaseHTTPRequestHandler):
    """``/drip`` sends one body byte every ``server.drip`` seconds; ``/fail`` answers
    500 with a body that must never be shown; ``/leaky/index.json`` serves an invalid
    listing with the marker inside."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.server.hits.append(self.path)
        if self.path.startswith("/drip"):
            self._drip()
        elif self.path.startswith("/fail"):
            self._send(500, ('{"container": {"Env": ["TOKEN=' + MARKER + '"]}}').encode())
        elif self.path.startswith("/leaky"):
            self._send(200, LEAKY_JSON)
        else:
            self._send(404, b"")

    def _drip(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "200")
        self.end_headers()
        try:
            for _ in range(200):
                if self.server.stop.wait(self.server.drip):
                    return
                self.wfile.write(b" ")
                self.wfile.flush()
        except OSError:
            pass  # the client gave up, as it should

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def remote() -> Iterator[ThreadingHTTPServer]:
    with serve(_Handler, drip=0.2) as httpd:
        yield httpd


def test_a_dripping_remote_is_cut_off_at_the_deadline(remote: ThreadingHTTPServer) -> None:
    """Each byte comes well within the read timeout, so only a wall-clock deadline
    stops the fetch (the body would take 40 s)."""
    policy = RemotePolicy(allow_loopback=True, read_timeout=5, deadline=1)
    with pytest.raises(RepositoryError, match="deadline"):
        Fetcher(policy).get(url(remote, "/drip/index.json"), max_bytes=10_000)


def test_the_deadline_setting_is_read_from_the_environment() -> None:
    assert RemotePolicy.from_env({"BERTH_REPOSITORY_DEADLINE": "7.5"}).deadline == 7.5
    assert RemotePolicy().deadline == 60


def test_a_refresh_of_a_dripping_remote_fails_at_the_deadline(
        store: object, remote: ThreadingHTTPServer) -> None:
    policy = RemotePolicy(allow_loopback=True, read_timeout=5, deadline=1)
    store.repositories.add({"name": "slow", "url": url(remote, "/drip/"), "priority": 5})
    started = time.monotonic()
    result = refresh(store, "slow", policy)
    assert result["status"] == "failed" and "deadline" in result["error"]
    assert time.monotonic() - started < 30  # a bound, not a timing claim: 40 s unbounded


@pytest.mark.parametrize("path", ["/fail/", "/leaky/"])
def test_a_failed_refresh_records_no_text_of_the_remote(
        store: object, remote: ThreadingHTTPServer, path: str) -> None:
    policy = RemotePolicy(allow_loopback=True, read_timeout=5)
    store.repositories.add({"name": "leaky", "url": url(remote, path), "priority": 5})
    result = refresh(store, "leaky", policy)
    record = store.repositories.get("leaky")
    assert result["status"] == "failed" and record["stale"]
    assert MARKER not in str(result) and MARKER not in str(record)
    assert len(record["error"]) <= 200


def test_a_failed_refresh_keeps_the_http_status(store: object,
                                                remote: ThreadingHTTPServer) -> None:
    store.repositories.add({"name": "down", "url": url(remote, "/fail/"), "priority": 5})
    refresh(store, "down", RemotePolicy(allow_loopback=True))
    record = store.repositories.get("down")
    assert record["error_status"] == 500 and "HTTP 500" in record["error"]
