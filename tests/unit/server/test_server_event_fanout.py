"""One Redis reader per process fans ``/events`` out (``server/api/event_fanout.py``).

On a real Redis: the hub alone (many listeners, one reader; catching up from behind
its memory; Redis lost; the reader ends with its last listener), and the server's
streams on a threaded loopback server (many streams, one Redis connection for all).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import requests
from werkzeug.serving import make_server

from server.api.event_fanout import EventHub, StoreUnavailable, stream_key
from worker.store import RedisState


@pytest.fixture
def state(server_redis_url: str) -> Iterator[RedisState]:
    client = redis.Redis.from_url(server_redis_url, socket_timeout=5)
    s = RedisState(client, prefix=f"fan{uuid.uuid4().hex[:8]}:")
    yield s
    client.delete(s.events_key)
    client.close()


def _until(check: Any, seconds: float = 10.0) -> bool:
    """Poll ``check`` until true or ``seconds`` pass; whether it became true."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return bool(check())


def test_stream_ids_compare_as_xread_does() -> None:
    assert stream_key("0") == (0, 0) < stream_key("1-0") == stream_key("1")
    assert stream_key("1764198000000-2") < stream_key("1764198000000-10")


def test_twenty_listeners_get_one_event_through_one_reader(state: RedisState) -> None:
    hub = EventHub(state, block_ms=200)
    since = state.last_event_id()
    got: list[list[dict[str, Any]]] = []
    ready = threading.Barrier(21)
    lock = threading.Lock()

    def listen() -> None:
        with hub.listen() as listener:
            ready.wait(10)
            batch = listener.wait(since, count=10, timeout=10)
            with lock:
                got.append(batch)

    threads = [threading.Thread(target=listen, daemon=True) for _ in range(20)]
    for thread in threads:
        thread.start()
    ready.wait(10)
    event_id = state.publish_event("test.one", "x")
    for thread in threads:
        thread.join(15)
    assert [[e["id"] for e in batch] for batch in got] == [[event_id]] * 20
    assert hub.reads < 20 * 2  # one reader's reads, not one loop per listener


def test_a_listener_far_behind_catches_up_from_redis_in_order(state: RedisState) -> None:
    hub = EventHub(state, block_ms=200, keep=3)
    ids = [state.publish_event("test.old", str(n)) for n in range(10)]
    with hub.listen() as listener:
        seen: list[str] = []
        since = "0"
        while len(seen) < 10:
            batch = listener.wait(since, count=4, timeout=5)
            assert batch, f"stuck after {seen}"
            seen += [e["id"] for e in batch]
            since = seen[-1]
        later = [state.publish_event("test.new", str(n)) for n in range(5)]  # memory: 3
        while len(seen) < 15:
            batch = listener.wait(since, count=100, timeout=5)
            assert batch, f"stuck after {seen}"
            seen += [e["id"] for e in batch]
            since = seen[-1]
    assert seen == ids + later


def test_an_idle_wait_returns_nothing_once_its_time_is_up(state: RedisState) -> None:
    hub = EventHub(state, block_ms=100)
    with hub.listen() as listener:
        assert listener.wait(state.last_event_id(), count=10, timeout=0.3) == []


def test_redis_lost_ends_the_listeners_with_store_unavailable() -> None:
    gone = RedisState(redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5),
                      prefix="gone:")
    hub = EventHub(gone, block_ms=100)
    with hub.listen() as listener, pytest.raises(StoreUnavailable):
        listener.wait("0", count=10, timeout=5)


def test_the_reader_ends_after_its_last_listener(state: RedisState) -> None:
    hub = EventHub(state, block_ms=100)
    with hub.listen() as listener:
        listener.wait(state.last_event_id(), count=1, timeout=0.2)
        assert hub._thread is not None and hub.listeners == 1
    assert _until(lambda: hub._thread is None), "the reader still runs without listeners"
    with hub.listen() as listener:  # and a new listener starts a new reader
        event_id = state.publish_event("test.again", "x")
        assert [e["id"] for e in listener.wait("0", count=5, timeout=5)] == [event_id]


@pytest.fixture
def served(make_app: Any) -> Iterator[tuple[Any, str]]:
    app = make_app(BERTH_EVENTS_BLOCK_MS="1000")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def test_twenty_streams_share_one_redis_connection(served: tuple[Any, str]) -> None:
    """Each stream used to hold its own connection in ``XREAD BLOCK``; now the
    process's reader holds one for all of them (and the requests borrow one briefly)."""
    app, url = served
    berth = app.extensions["berth"]
    streams: list[requests.Response] = []
    readers: list[Iterator[str]] = []
    try:
        for _ in range(20):
            stream = requests.get(f"{url}/api/v1/events?timeout=30", stream=True, timeout=20)
            lines = stream.iter_lines(decode_unicode=True)
            assert next(lines).startswith("retry:")
            streams.append(stream)
            readers.append(lines)
        event_id = berth.store.state.publish_event("test.shared", "x", "tests", {"n": 1})
        for lines in readers:
            seen = []
            for line in lines:
                seen.append(line)
                if line.startswith("data: "):
                    break
            assert json.loads(seen[-1][len("data: "):])["id"] == event_id, seen
        pool = berth.events_redis.connection_pool
        opened = len(pool._available_connections) + len(pool._in_use_connections)
        assert opened <= 3, f"{opened} Redis connections for 20 streams"
    finally:
        for stream in streams:
            stream.close()
