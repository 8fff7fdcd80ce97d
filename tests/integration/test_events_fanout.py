"""50 ``/events`` listeners on a real gunicorn (started with ``server/gunicorn_conf.py``,
as the image, ``make run`` and the test bed start it) all get one event.

Only Redis is needed (the session's lone ``redis-server``), no Docker. The server ran
2 workers × 4 threads before: 8 listeners got the event, the other 42 waited in the
accept queue.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.fernet import Fernet

from server.auth import create_token
from server.context import connect_redis
from tests.fixtures.live_server import ROOT, _wait_until_up, free_port, stop_server
from worker.store import Store

pytestmark = pytest.mark.integration

LISTENERS = 50


@pytest.fixture(scope="module")
def gunicorn(redis_url: str, tmp_path_factory: pytest.TempPathFactory,
             ) -> Iterator[tuple[str, str, Store]]:
    """gunicorn serving ``server.wsgi:app`` with Berth's config; (url, token, store)."""
    prefix = f"fan{uuid.uuid4().hex[:8]}:"
    port = free_port()
    log_path = Path(tmp_path_factory.mktemp("fanout")) / "server.log"
    env = {**os.environ, "BERTH_REDIS_URL": redis_url, "BERTH_REDIS_PREFIX": prefix,
           "BERTH_SECRET_KEY": secrets.token_urlsafe(32),
           "BERTH_DATA_KEY": Fernet.generate_key().decode(), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "gunicorn", "-c", "python:server.gunicorn_conf",
               "--bind", f"127.0.0.1:{port}", "--no-control-socket", "server.wsgi:app"]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    store = Store(connect_redis(redis_url, 2.0), prefix=prefix)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_up(process, url, log_path, timeout=60)
        _record, token = create_token(store, name="fanout", role="viewer", created_by="tests")
        yield url, token, store
    finally:
        stop_server(process)
        keys = list(store.redis.scan_iter(match=prefix + "*"))
        if keys:
            store.redis.delete(*keys)


def test_fifty_listeners_on_gunicorn_all_get_one_event(
        gunicorn: tuple[str, str, Store]) -> None:
    url, token, store = gunicorn
    marker = f"test.fanout.{uuid.uuid4().hex[:8]}"
    opened = threading.Semaphore(0)
    got: list[str] = []
    statuses: list[int] = []
    lock = threading.Lock()

    def listen() -> None:
        with requests.get(f"{url}/api/v1/events?timeout=60", stream=True, timeout=60,
                          headers={"Authorization": f"Bearer {token}"}) as answer:
            with lock:
                statuses.append(answer.status_code)
            lines = answer.iter_lines(decode_unicode=True)
            first = next(lines, "")  # "retry: …": the stream is open, its position fixed
            opened.release()
            if not first.startswith("retry:"):
                return
            for line in lines:
                if line.startswith("id: "):
                    with lock:
                        got.append(line)
                    return

    threads = [threading.Thread(target=listen, daemon=True) for _ in range(LISTENERS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    for _ in range(LISTENERS):  # every stream answered and fixed its position
        assert opened.acquire(timeout=max(0.0, deadline - time.monotonic())), \
            f"only {len(statuses)} of {LISTENERS} streams opened within 30 s"
    event_id = store.state.publish_event(marker, "fanout", "tests", {})
    for thread in threads:
        thread.join(timeout=max(0.0, deadline + 15 - time.monotonic()))
    assert statuses == [200] * LISTENERS
    assert got == [f"id: {event_id}"] * LISTENERS, f"{len(got)} of {LISTENERS} got it"


def test_other_requests_are_served_while_fifty_streams_are_open(
        gunicorn: tuple[str, str, Store]) -> None:
    url, token, _store = gunicorn
    headers = {"Authorization": f"Bearer {token}"}
    streams: list[Any] = []
    try:
        for _ in range(LISTENERS):
            stream = requests.get(f"{url}/api/v1/events?timeout=60", stream=True,
                                  timeout=30, headers=headers)
            assert stream.status_code == 200
            streams.append(stream)
        answer = requests.get(f"{url}/api/v1/services", headers=headers, timeout=10)
        assert answer.status_code == 200
    finally:
        for stream in streams:
            stream.close()
