"""``/events`` streams stay open while idle (heartbeats), on their own Redis
connections, and do not hold up other requests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from werkzeug.serving import make_server


@pytest.fixture
def served(make_app: Any) -> Iterator[tuple[Any, str]]:
    """The app (heartbeat every 5 s) on a loopback port, threaded like gunicorn's gthread."""
    app = make_app(BERTH_EVENTS_BLOCK_MS="5000")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def _lines(response: requests.Response) -> Iterator[str]:
    return response.iter_lines(decode_unicode=True)


def test_an_idle_stream_sends_a_heartbeat_past_the_old_4_s_limit(
        served: tuple[Any, str]) -> None:
    """The block (5 s) is longer than the Redis command timeout (2 s): the stream's own
    connection must allow for it, or the stream ends as "store unavailable"."""
    _app, url = served
    started = time.monotonic()
    with requests.get(f"{url}/api/v1/events?timeout=30", stream=True, timeout=20) as answer:
        assert answer.status_code == 200
        comments = []
        for line in _lines(answer):
            if line.startswith(":"):
                comments.append(line)
                break
    assert comments == [": keep-alive"], comments
    assert time.monotonic() - started > 4  # idle for a whole heartbeat, still open


def test_healthz_and_readyz_answer_while_streams_are_open(served: tuple[Any, str]) -> None:
    app, url = served
    opened: list[requests.Response] = []
    try:
        for _ in range(4):
            stream = requests.get(f"{url}/api/v1/events?timeout=30", stream=True, timeout=20)
            assert next(_lines(stream)).startswith("retry:")
            opened.append(stream)
        time.sleep(0.3)  # let every stream reach its blocking read
        assert requests.get(f"{url}/healthz", timeout=5).status_code == 200
        assert requests.get(f"{url}/readyz", timeout=5).status_code == 200
        berth = app.extensions["berth"]
        assert berth.events_redis is not berth.redis
        assert berth.events_redis.connection_pool is not berth.redis.connection_pool
    finally:
        for stream in opened:
            stream.close()


def test_the_stream_client_waits_longer_than_its_block(make_app: Any) -> None:
    berth = make_app(BERTH_EVENTS_BLOCK_MS="5000").extensions["berth"]
    kwargs = berth.events_redis.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] > 5
    assert berth.redis.connection_pool.connection_kwargs["socket_timeout"] == 2


def test_the_stream_carries_the_events_the_store_wrote(make_app: Any) -> None:
    """``/events`` reads through the store's ``read_events``: what the store wrote (its
    type, subject, actor, time and data) comes out, in order, filtered by type."""
    import json

    app = make_app()
    state = app.extensions["berth"].store.state
    first = state.publish_event("service.installed", "web", "user:admin", {"generation": 1})
    state.publish_event("agent.added", "a1", "user:admin")
    third = state.publish_event("service.scaled", "web", "user:admin", {"instances": 2})
    body = app.test_client().get("/api/v1/events?since=0&limit=2&timeout=5&type=service.",
                                 headers={"Accept": "text/event-stream"}).get_data(as_text=True)
    events = [json.loads(line[len("data: "):]) for line in body.splitlines()
              if line.startswith("data: ")]
    assert [e["id"] for e in events] == [first, third]
    assert events[0]["type"] == "service.installed" and events[0]["subject"] == "web"
    assert events[0]["actor"] == "user:admin" and events[0]["data"] == {"generation": 1}
    assert f"id: {first}\nevent: service.installed\n" in body
