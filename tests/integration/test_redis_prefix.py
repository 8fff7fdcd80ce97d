"""``BERTH_REDIS_PREFIX``: a server and a worker started with one prefix share records.

Real processes around a real Redis: gunicorn serving ``server.wsgi:app`` and ``python
-m worker`` (the Celery worker and its watcher), both started with the same prefix. An
admin adds a remote repository through the server (a record the server writes); the
worker's task fetches it (it must find that record under the prefix) and keeps the
listing and documents (records the worker writes); the server then shows the
repository fetched and its package in the catalog. Nothing lands under the default
``berth:`` prefix. Before the server honoured the prefix, the worker never found the
repository and the server never showed it fetched.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis as redis_py
import requests

from catalog.static_index import write_index
from server.auth import create_token
from server.context import connect_redis
from tests.fixtures.live_server import free_port, start_server, stop_server
from worker.store import Store
from worker.store.crypto import generate_key

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PREFIX = f"prefix-{uuid.uuid4().hex[:8]}:"
PACKAGE = "prefix-probe"


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def static_repository(tmp_path: Path) -> Iterator[str]:
    """A static Berth repository (``index.json`` + documents) of one package, served
    on a loopback port; yields its URL."""
    source = tmp_path / "source" / "packages" / PACKAGE / "1.0.0"
    shutil.copytree(ROOT / "universe" / "packages" / "hello" / "1.0.0", source)
    meta = json.loads((source / "package.json").read_text())
    (source / "package.json").write_text(json.dumps({**meta, "name": PACKAGE}))
    served = tmp_path / "served"
    assert write_index(tmp_path / "source", served)["packages"] == 1
    httpd = ThreadingHTTPServer(("127.0.0.1", 0),
                                functools.partial(_Quiet, directory=str(served)))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def tcp_redis(tmp_path: Path) -> Iterator[str]:
    """A redis-server of this test on a free loopback port (the Celery broker wants TCP);
    yields its URL."""
    port = free_port()
    with open(tmp_path / "redis.log", "ab") as log:
        process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                    "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                                   stdout=log, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        _eventually(lambda: _pings(url), "redis-server did not answer", tmp_path / "redis.log")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _pings(url: str) -> bool:
    try:
        return bool(redis_py.Redis.from_url(url, socket_connect_timeout=0.2).ping())
    except redis_py.RedisError:
        return False


@pytest.fixture
def prefixed_env(tcp_redis: str) -> dict[str, str]:
    """The settings both processes get: one Redis, one prefix, one data key."""
    return {"BERTH_REDIS_URL": tcp_redis, "BERTH_REDIS_PREFIX": PREFIX,
            "BERTH_DATA_KEY": generate_key(), "BERTH_REPOSITORY_ALLOW_LOOPBACK": "1",
            "BERTH_WATCH_EVENTS": "false", "BERTH_WORKER_CONCURRENCY": "1"}


@pytest.fixture
def worker(prefixed_env: dict[str, str], tmp_path: Path) -> Iterator[Path]:
    """``python -m worker`` with the prefix; yields its log file."""
    log = tmp_path / "worker.log"
    with open(log, "ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "worker"], cwd=ROOT,
                                   env={**os.environ, **prefixed_env}, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield log
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the worker's process group (the supervisor and its two children)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


@pytest.fixture
def server(prefixed_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """gunicorn serving ``server.wsgi:app`` with the prefix; yields its URL."""
    process, url, _log = start_server(prefixed_env["BERTH_REDIS_URL"], tmp_path,
                                      prefixed_env)
    try:
        yield url
    finally:
        stop_server(process)


def _eventually(check: Callable[[], Any], what: str, log: Path, timeout: float = 60) -> Any:
    """Poll ``check`` until it returns something truthy; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    pytest.fail(f"{what} within {timeout}s; worker log:\n{tail}")


def test_a_server_and_a_worker_with_one_prefix_see_each_others_records(
        prefixed_env: dict[str, str], static_repository: str, server: str,
        worker: Path) -> None:
    client = connect_redis(prefixed_env["BERTH_REDIS_URL"], 2.0)
    _record, token = create_token(Store(client, prefix=PREFIX), name="prefix-test",
                                  role="admin", created_by="tests")
    headers = {"Authorization": f"Bearer {token}"}
    api = server + "/api/v1"

    added = requests.post(api + "/repositories", headers=headers, timeout=10,
                          json={"name": "probe", "url": static_repository, "priority": 20})
    assert added.status_code == 202, added.text

    def fetched() -> dict[str, Any] | None:
        view = requests.get(api + "/repositories/probe", headers=headers, timeout=10).json()
        return view if view.get("fetched_at") else None

    view = _eventually(fetched, "the worker did not fetch the repository the server added",
                       worker)
    assert view["error"] is None and view["packages"] == 1
    package = requests.get(f"{api}/packages/{PACKAGE}", headers=headers, timeout=10)
    assert package.status_code == 200, package.text
    assert package.json()["repository"] == "probe"

    raw = redis_py.Redis.from_url(prefixed_env["BERTH_REDIS_URL"], decode_responses=True)
    assert raw.keys(PREFIX + "*"), "nothing was written under the prefix"
    assert raw.keys("berth:*") == [], "records were written under the default prefix"
