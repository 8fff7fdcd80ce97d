"""Fixtures for the server's unit tests: a real redis-server and a Flask test client.

The tests use the ``redis_url`` fixture of ``tests/fixtures/testbed.py`` when it is
defined (database 9 of that Redis, flushed per test); otherwise they start their own
``redis-server`` on a free loopback port, without persistence.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.fixtures.live_server import free_port
from worker.store.crypto import generate_key

TEST_DATA_KEY = generate_key()   # the unit tests' BERTH_DATA_KEY (sealed secret values)


def _start_redis(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (make deps installs it)", pytrace=False)
    port = free_port()
    log = open(tmp / "redis.log", "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no", "--dir", str(tmp)],
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            redis.Redis.from_url(url, socket_connect_timeout=0.2).ping()
            return process, url
        except redis.ConnectionError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("redis-server did not start")


def _database(url: str, number: int) -> str:
    """The same Redis, another database (the store tests use 0)."""
    if "db=" in url:
        return re.sub(r"db=\d+", f"db={number}", url)
    if url.startswith("unix://"):
        return f"{url}{'&' if '?' in url else '?'}db={number}"
    base, _, last = url.rpartition("/")
    return f"{base}/{number}" if last.isdigit() else f"{url.rstrip('/')}/{number}"


@pytest.fixture(scope="session")
def server_redis_url(request: pytest.FixtureRequest,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis for the server's unit tests (the test bed's, else one of our own)."""
    try:
        shared = request.getfixturevalue("redis_url")
    except pytest.FixtureLookupError:
        shared = None
    if shared:
        yield _database(shared, 9)
        return
    process, url = _start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def shared_catalog(server_redis_url: str) -> Any:
    """One catalog source for the whole session (the universe is parsed once)."""
    from server.app import create_app

    app = create_app({"BERTH_REDIS_URL": server_redis_url, "BERTH_SECRET_KEY": "t"})
    return app.extensions["berth"].catalog


class Recorder:
    """Stands in for Celery in unit tests: tasks are recorded, no worker runs."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[Any]]] = []

    def __call__(self, task: str, args: list[Any]) -> None:
        self.calls.append((task, list(args)))


@pytest.fixture
def make_app(server_redis_url: str, shared_catalog: Any) -> Any:
    """Build an app with extra settings; Redis is flushed first."""
    from server.app import create_app

    redis.Redis.from_url(server_redis_url).flushdb()

    def build(**settings: Any) -> Any:
        # the universe's packages ask for the host network, as on the local system
        config = {"BERTH_REDIS_URL": server_redis_url, "BERTH_SECRET_KEY": "unit-tests",
                  "BERTH_DATA_KEY": TEST_DATA_KEY,
                  "ENQUEUE": Recorder(), "CATALOG": shared_catalog, "TESTING": True,
                  "BERTH_ALLOW_HOST_NETWORK": "true", **settings}
        return create_app(config)

    return build


@pytest.fixture
def app(make_app: Any) -> Any:
    return make_app()


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def tokens(app: Any) -> dict[str, str]:
    """One token per role."""
    from server.auth import create_token

    store = app.extensions["berth"].store
    return {role: create_token(store, name=f"unit-{role}", role=role)[1]
            for role in ("viewer", "maintainer", "admin")}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
