"""Registering an agent whose "engine" answers errors: the API never echoes the text the
engine sent, only a fixed message with the status."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

MARKER = "SECRET-ENGINE-BODY-5d2c"


class _Engine(BaseHTTPRequestHandler):
    """A fake Docker engine: ``/version`` answers per ``server.version_status``, every
    other path 500, each error body carrying the marker."""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path.endswith("/version") and self.server.version_status == 200:
            body = json.dumps({"ApiVersion": "1.41", "Version": "24.0.0"}).encode()
            status = 200
        else:
            body = json.dumps({"message": f"internal: {MARKER} token=abc"}).encode()
            status = 500 if self.path.endswith("/info") else self.server.version_status
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(params=[200, 500], ids=["info-fails", "version-fails"])
def engine(request: pytest.FixtureRequest) -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Engine)
    httpd.version_status = request.param
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def test_engine_error_text_is_not_echoed(client: Any, tokens: dict[str, str],
                                         engine: ThreadingHTTPServer) -> None:
    url = f"tcp://127.0.0.1:{engine.server_address[1]}"
    answer = client.post("/api/v1/agents", json={"url": url, "id": "fake"},
                         headers={"Authorization": f"Bearer {tokens['admin']}"})
    text = answer.get_data(as_text=True)
    assert answer.status_code in (502, 503), text
    assert MARKER not in text and "token=abc" not in text
    assert "HTTP 500" in answer.json["message"] and url in answer.json["message"]


def test_an_engine_that_is_not_there_gets_a_fixed_message(client: Any,
                                                          tokens: dict[str, str]) -> None:
    answer = client.post("/api/v1/agents", json={"url": "tcp://127.0.0.1:9", "id": "gone"},
                         headers={"Authorization": f"Bearer {tokens['admin']}"})
    assert answer.status_code == 503
    assert answer.json["message"] == ("the engine at tcp://127.0.0.1:9 did not answer "
                                      "(connection refused)")
