"""Store front at scale: the catalog page with 10,000 packages in <= 50 ms server time.

The catalog is built in memory (10,000 packages x 2 versions, each with tags, an icon
file and a config schema) and served by the real app factory through Flask's test
client, so the figure is server time only: routing, search, tag counts, templates.
Measured: the first catalog page, a search, a tag filter, a deep page, and the
partial results block the search-as-you-type script fetches.
"""

from __future__ import annotations

import os
import random
import statistics
import time
from typing import Any

PACKAGES = int(os.environ.get("BERTH_BENCH_PACKAGES", "10000"))
ROUNDS = int(os.environ.get("BERTH_BENCH_ROUNDS", "60"))
TARGET_MS = 50.0
WORDS = (
    "web",
    "data",
    "cache",
    "queue",
    "proxy",
    "store",
    "stream",
    "log",
    "metric",
    "auth",
    "mail",
    "search",
    "graph",
    "time",
    "object",
    "file",
    "chat",
    "build",
)
ICON = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 8 8"><rect width="8" height="8"/></svg>'
)
SCHEMA = {"type": "object", "properties": {"port": {"type": "integer", "default": 0}}}


def build_catalog(packages: int = PACKAGES) -> Any:
    """A catalog of ``packages`` names, two versions each, built in memory."""
    from catalog.index import Catalog
    from catalog.loader import package_from_files
    from catalog.repository import Repository

    rng = random.Random(11)
    items = []
    for i in range(packages):
        words = rng.sample(WORDS, 3)
        name = f"{words[0]}-{words[1]}-{i}"
        for version in ("1.0.0", "1.1.0"):
            meta = {
                "name": name,
                "version": version,
                "title": f"{words[0].title()} {i}",
                "description": f"A {words[0]} and {words[1]} service for {words[2]}.",
                "maintainer": "bench",
                "tags": words,
                "featured": i % 1000 == 0,
            }
            resource = {
                "images": {"icon": "icon.svg"},
                "assets": {"container": {"docker": {"app": f"x/{name}:{version}"}}},
            }
            items.append(
                package_from_files(
                    meta, SCHEMA, resource, "{}", "", repository="bench", files={"icon.svg": ICON}
                )
            )
    return Catalog(
        [Repository(name="bench", priority=100, kind="directory", packages=tuple(items))]
    )


class _Source:
    def __init__(self, catalog: Any) -> None:
        self.catalog = catalog

    def get(self) -> Any:
        return self.catalog


def _client(catalog: Any) -> Any:
    """The real app with the in-memory catalog; Redis is only touched for sessions."""
    from server.app import create_app

    app = create_app(
        {
            "BERTH_SECRET_KEY": "bench",
            "CATALOG": _Source(catalog),
            "BERTH_REDIS_URL": "redis://127.0.0.1:1/0",
            "BERTH_REDIS_TIMEOUT": "0.2",
            "ENQUEUE": lambda name, args: None,
        }
    )
    return app.test_client()


def _time(client: Any, url: str, rounds: int) -> dict[str, float]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        answer = client.get(url)
        samples.append((time.perf_counter() - start) * 1000)
        if answer.status_code != 200:
            raise RuntimeError(f"{url} answered {answer.status_code}")
    samples.sort()
    return {
        "p50 ms": round(statistics.median(samples), 2),
        "p95 ms": round(samples[int(len(samples) * 0.95) - 1], 2),
    }


def run() -> dict[str, Any]:
    """Build the catalog, warm up, time each page; return the figures."""
    start = time.perf_counter()
    catalog = build_catalog()
    built = time.perf_counter() - start
    client = _client(catalog)
    urls = {
        "catalog page": "/",
        "search": "/?q=cache",
        "tag filter": "/?tag=proxy",
        "page 200": "/?page=200",
        "search as you type": "/?q=stre&partial=1",
    }
    for url in urls.values():
        client.get(url)  # warm caches and templates
    figures = {label: _time(client, url, ROUNDS) for label, url in urls.items()}
    worst = max(f["p50 ms"] for f in figures.values())
    return {
        "packages": len(catalog),
        "build s": round(built, 2),
        "server": "Flask test client, real app factory, in-memory catalog",
        **{f"{label} {k}": v for label, f in figures.items() for k, v in f.items()},
        "met": worst <= TARGET_MS,
        "target": f"catalog pages p50 <= {TARGET_MS:.0f} ms server time",
    }


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value}")
