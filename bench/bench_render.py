"""Render through the API: a child-process render pool vs rendering in the server.

The real app factory (Flask's test client, the shipped universe, its own redis-server)
answers ``POST /api/v1/packages/{name}/render`` for a few universe packages with
their defaults, twice in the same run: with ``BERTH_RENDER_WORKERS=2`` (templates
render in :mod:`catalog.render_pool`'s children, the default) and with
``BERTH_RENDER_WORKERS=0`` (in the server process, as before the pool). Rounds of
the two alternate, so a busy moment of the machine hits both.

Target: pool p50 <= 2 x in-process p50. Also shown: the template render alone, in
process and through the pool, to see what one round trip to a child costs.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

ROUNDS = int(os.environ.get("BERTH_BENCH_ROUNDS", "200"))
PACKAGES = ("hello", "nginx", "redis", "postgres")
TARGET = 2.0


def _client(redis_url: str, workers: int) -> Any:
    from server.app import create_app

    app = create_app({"BERTH_REDIS_URL": redis_url, "BERTH_SECRET_KEY": "bench",
                      "BERTH_RENDER_WORKERS": str(workers), "BERTH_RENDER_RATE": "0",
                      "ENQUEUE": lambda name, args: None})
    return app.test_client()


def _available(client: Any) -> list[str]:
    names = [n for n in PACKAGES
             if client.get(f"/api/v1/packages/{n}").status_code == 200]
    if not names:
        raise RuntimeError(f"none of {PACKAGES} is in the universe")
    return names


def _one(client: Any, name: str) -> float:
    start = time.perf_counter()
    answer = client.post(f"/api/v1/packages/{name}/render", json={})
    elapsed = (time.perf_counter() - start) * 1000
    if answer.status_code != 200:
        raise RuntimeError(f"render {name} answered {answer.status_code}: {answer.json}")
    return elapsed


def _p50(samples: list[float]) -> float:
    return round(statistics.median(samples), 3)


def _template_alone(client: Any, rounds: int) -> dict[str, float]:
    """``render_template`` of hello's template in process vs through a pool child."""
    from catalog.options import resolve_options
    from catalog.render import render_template, template_context
    from catalog.render_pool import PoolSettings, RenderPool

    package = client.application.extensions["berth"].catalog.get().resolve("hello")
    context = template_context(package, resolve_options(package, {}), "hello")
    pool = RenderPool(PoolSettings(workers=1))
    ways: dict[str, Callable[[], str]] = {
        "in process": lambda: render_template(package.template, context),
        "pool": lambda: pool.render(package.template, context)}
    samples: dict[str, list[float]] = {k: [] for k in ways}
    try:
        for _ in range(rounds):
            for label, way in ways.items():
                start = time.perf_counter()
                way()
                samples[label].append((time.perf_counter() - start) * 1000)
    finally:
        pool.close()
    return {f"template alone, {k}, p50 ms": _p50(v) for k, v in samples.items()}


def run() -> dict[str, Any]:
    """Warm both apps, alternate rounds, return the figures."""
    from bench.local_redis import redis_server

    with redis_server() as url:
        clients = {"pool": _client(url, 2), "in process": _client(url, 0)}
        names = _available(clients["pool"])
        for client in clients.values():
            for name in names:
                _one(client, name)  # compile caches, start the children
        samples: dict[str, list[float]] = {k: [] for k in clients}
        for i in range(ROUNDS):
            name = names[i % len(names)]
            for label, client in clients.items():
                samples[label].append(_one(client, name))
        alone = _template_alone(clients["in process"], ROUNDS)
    ratio = statistics.median(samples["pool"]) / statistics.median(samples["in process"])
    return {
        "packages": ", ".join(names),
        "rounds": ROUNDS,
        "API render, pool, p50 / p95 ms": _pair(samples["pool"]),
        "API render, in process, p50 / p95 ms": _pair(samples["in process"]),
        "pool p50 / in-process p50": round(ratio, 2),
        **alone,
        "met": ratio <= TARGET,
        "target": f"API render p50 through the pool <= {TARGET:g} x in-process p50",
    }


def _pair(samples: list[float]) -> str:
    ordered = sorted(samples)
    return f"{_p50(ordered)} / {round(ordered[int(len(ordered) * 0.95) - 1], 3)}"


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value}")
