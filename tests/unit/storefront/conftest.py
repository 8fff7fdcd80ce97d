"""Fixtures for the store front's tests: the real app factory, a real Redis, a catalog.

The catalog holds the shipped universe plus a ``lab`` repository built in a temp
folder with one hostile package (``xss-demo``: script, ``javascript:`` links and
event handlers in its README, description and notes, and an SVG icon with script).
Tasks are not sent to a broker: the app's ``ENQUEUE`` records them.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from worker.store.crypto import generate_key

ROOT = Path(__file__).resolve().parents[3]
HOSTILE_TEXT = (
    "Tiny demo <script>alert('desc')</script><img src=x onerror=alert(1)> "
    '<a href="javascript:alert(2)">click</a>'
)
HOSTILE_README = """# XSS demo

<script>document.title = 'owned'</script>

[run me](javascript:alert('readme')) · [safe](https://example.org/docs)

<a href="https://example.org/" onclick="alert('click')" onmouseover="alert('hover')">hover</a>

<img src="shot.png" onerror="alert('img')"> <img src="javascript:alert('src')">

<svg onload="alert('svg')"></svg><iframe src="javascript:alert('frame')"></iframe>

<p style="background:url(javascript:alert('css'))" onfocus="alert('focus')">styled</p>
"""
SVG_WITH_SCRIPT = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">'
    b'<script>alert("svg")</script><rect width="10" height="10"/></svg>'
)
PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


def write_hostile_package(root: Path) -> Path:
    """A valid package whose maintainer texts try every way to run script."""
    folder = root / "packages" / "xss-demo" / "1.0.0"
    folder.mkdir(parents=True)
    meta = {
        "name": "xss-demo",
        "version": "1.0.0",
        "title": "XSS <b>demo</b>",
        "description": HOSTILE_TEXT,
        "maintainer": "Mallory <script>x()</script>",
        "tags": ["demo", "security"],
        "website": "https://example.org/xss-demo",
        "preInstallNotes": "Before: <script>alert('pre')</script>[x](javascript:alert(3))",
        "postInstallNotes": "After: <img src=y onerror=alert('post')>",
    }
    (folder / "package.json").write_text(json.dumps(meta))
    (folder / "config.json").write_text(
        json.dumps(
            {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "properties": {
                    "message": {
                        "type": "string",
                        "title": "<i>Message</i>",
                        "description": "<script>alert('help')</script>",
                        "default": "hi",
                    }
                },
            }
        )
    )
    (folder / "resource.json").write_text(
        json.dumps(
            {
                "images": {"icon": "icon.svg", "screenshots": ["shot.png"]},
                "assets": {"container": {"docker": {"hello": "berth/hello:1.0.0"}}},
            }
        )
    )
    (folder / "service.json.j2").write_text(
        '{"image": {{ resource.assets.container.docker.hello | tojson }}, '
        '"command": "httpd -f -p $PORT0", "cpus": 0.1, "mem": 32, '
        '"env": {"MSG": {{ options.message | tojson }}}, '
        '"ports": [{"name": "http", "hostPort": 0}]}'
    )
    (folder / "README.md").write_text(HOSTILE_README)
    (folder / "icon.svg").write_bytes(SVG_WITH_SCRIPT)
    (folder / "shot.png").write_bytes(PNG_1PX)
    return root


class StaticSource:
    """A catalog source that always answers the same catalog."""

    def __init__(self, catalog: Any) -> None:
        self.catalog = catalog

    def get(self) -> Any:
        return self.catalog


@pytest.fixture(scope="session")
def storefront_catalog(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The shipped universe plus the hostile ``lab`` repository."""
    from catalog.index import Catalog
    from catalog.loader import load_repository_dir

    lab_dir = write_hostile_package(tmp_path_factory.mktemp("lab"))
    universe, _ = load_repository_dir(
        ROOT / "universe", name="universe", priority=100, kind="builtin"
    )
    lab, problems = load_repository_dir(lab_dir, name="lab", priority=200)
    assert problems == [], problems
    hello = next(p for p in universe.packages if p.name == "hello")
    frameworkish = dataclasses.replace(
        hello,
        name="spark-like",
        title="Spark-like",
        format="dcos",
        featured=False,
        unsupported=("runs a Mesos framework scheduler", "needs host volumes on every agent"),
    )
    return Catalog([universe, lab.with_packages((*lab.packages, frameworkish))])


def _database(url: str, number: int) -> str:
    if "db=" in url:
        return re.sub(r"db=\d+", f"db={number}", url)
    base, _, last = url.rpartition("/")
    return f"{base}/{number}" if last.isdigit() else f"{url.rstrip('/')}/{number}"


@pytest.fixture
def storefront_redis(redis_url: str) -> Iterator[str]:
    """Database 7 of the shared test Redis, empty for each test."""
    url = _database(redis_url, 7)
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    yield url


@pytest.fixture
def enqueued() -> list[tuple[str, list[Any]]]:
    return []


@pytest.fixture
def app(storefront_redis: str, storefront_catalog: Any, enqueued: list) -> Any:
    """The real Berth app (store front registered by ``create_app``)."""
    from server.app import create_app

    return create_app(
        {
            "BERTH_REDIS_URL": storefront_redis,
            "BERTH_SECRET_KEY": "storefront-tests",
            "BERTH_ALLOW_HOST_NETWORK": "true",  # as on the local system
            "BERTH_DATA_KEY": generate_key(),
            "CATALOG": StaticSource(storefront_catalog),
            "ENQUEUE": lambda name, args: enqueued.append((name, list(args))),
            "TESTING": True,
        }
    )


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


def token_for(app: Any, role: str) -> str:
    """A fresh API token with ``role``."""
    from server.auth import create_token

    with app.app_context():
        _record, token = create_token(app.extensions["berth"].store, name=f"t-{role}", role=role)
    return token


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def login(client: Any, app: Any, role: str) -> None:
    """Log the test client's session in with a token of ``role``."""
    page = client.get("/login").get_data(as_text=True)
    answer = client.post(
        "/login", data={"token": token_for(app, role), "csrf_token": csrf_from(page), "next": "/"}
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)[:500]


@pytest.fixture
def admin(client: Any, app: Any) -> Any:
    """The test client, logged in as an admin."""
    login(client, app, "admin")
    return client


@pytest.fixture
def viewer(client: Any, app: Any) -> Any:
    """The test client, logged in as a viewer."""
    login(client, app, "viewer")
    return client
