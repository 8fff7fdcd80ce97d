"""Invalid request bodies just under the size cap: how long until the answer.

The real app factory (Flask's test client, the shipped universe, its own
redis-server) answers ``POST /api/v1/packages/hello/render`` with bodies built to be
as costly as the server allows — each just under ``BERTH_MAX_JSON_BODY`` (256 KiB by
default) — and, as a baseline in the same run, a valid empty body (a full render).
The 15 MB body that once took 15 s is sent too; it is refused by size.

Target: every invalid body under the cap answered in <= 100 ms — judged on each
body's median over the rounds (the slowest body's median is the figure); each body's
maximum is printed beside it, since on a shared 2-core machine a single request can
wait on the scheduler for longer than the server works on it.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

ROUNDS = int(os.environ.get("BERTH_BENCH_ROUNDS", "20"))
CAP = 256 * 1024  # BERTH_MAX_JSON_BODY's default
TARGET_MS = 100.0
URL = "/api/v1/packages/hello/render"


def _fill(make: Callable[[int], Any], cap: int = CAP - 64) -> bytes:
    """The largest body ``make(n)`` builds that stays under ``cap`` bytes."""
    low, high = 1, 1
    while len(json.dumps(make(high))) < cap:
        low, high = high, high * 2
    while low + 1 < high:
        mid = (low + high) // 2
        low, high = (mid, high) if len(json.dumps(make(mid))) < cap else (low, mid)
    return json.dumps(make(low)).encode()


def bodies() -> dict[str, bytes]:
    """Each worst case, named by what it attacks."""
    return {
        "constraints: ~25k wrong items": _fill(lambda n: {"constraints": [[1, 2, 3, 4]] * n}),
        "constraints: 20 items of long strings": _fill(
            lambda n: {"constraints": [["h" * (n // 60), "UNIQUE", "x" * (n // 60)]] * 20}),
        "version: one long string": _fill(lambda n: {"version": "1" * n}),
        "instances: a long string echoed": _fill(lambda n: {"instances": "y" * n}),
        "options: 200 keys, wide wrong values": _fill(
            lambda n: {"options": {f"k{i}": [0] * (n // 200) for i in range(200)}}),
        "options: known key, a flood of wrong items": _fill(
            lambda n: {"options": {"greeting": [[{"a": 1}]] * n}}),
        "options: just under the value count": json.dumps(
            {"options": {"greeting": [{"a": [0, 1]}] * 4990}}).encode(),
        "unknown fields: a flood": _fill(lambda n: {f"x{i}": 1 for i in range(n)}),
        "deep nesting: 32 levels, wide": _fill(
            lambda n: {"options": {"a": _nested(31, n)}}),
        "not JSON": b"{" + b'"a": 1, ' * ((CAP - 64) // 8),
    }


def _nested(depth: int, width: int) -> Any:
    value: Any = [0] * max(width // 4, 1)
    for _ in range(depth - 2):
        value = [value]
    return value


def _client(redis_url: str) -> Any:
    from server.app import create_app

    app = create_app({"BERTH_REDIS_URL": redis_url, "BERTH_SECRET_KEY": "bench",
                      "BERTH_RENDER_RATE": "0", "ENQUEUE": lambda name, args: None})
    return app.test_client()


def _time(client: Any, body: bytes, rounds: int) -> tuple[list[float], int]:
    samples, status = [], 0
    for _ in range(rounds):
        start = time.perf_counter()
        answer = client.post(URL, data=body, headers={"Content-Type": "application/json"})
        samples.append((time.perf_counter() - start) * 1000)
        status = answer.status_code
    return samples, status


def run() -> dict[str, Any]:
    """Time the baseline, every worst case and the 15 MB body; return the figures."""
    from bench.local_redis import redis_server

    cases = bodies()
    with redis_server() as url:
        client = _client(url)
        _time(client, b"{}", 3)  # warm: compile caches, the render child
        baseline, ok = _time(client, b"{}", ROUNDS * 3)
        if ok != 200:
            raise RuntimeError(f"the valid render answered {ok}")
        figures: dict[str, Any] = {
            "body cap bytes": CAP,
            "baseline (valid render) p50 ms": round(statistics.median(baseline), 2)}
        worst = 0.0
        for label, body in cases.items():
            samples, status = _time(client, body, ROUNDS)
            worst = max(worst, statistics.median(samples))
            figures[f"{label} ({len(body)} B): {status}, p50 / max ms"] = (
                f"{statistics.median(samples):.1f} / {max(samples):.1f}")
        big = json.dumps({"constraints": [["hostname", "UNIQUE"]] * 630_000}).encode()
        samples, status = _time(client, big, 3)
        figures[f"15 MB constraints ({len(big)} B): {status}, max ms"] = round(max(samples), 1)
    figures["slowest invalid body's p50 ms"] = round(worst, 1)
    figures["slowest p50 ÷ baseline p50"] = round(worst / statistics.median(baseline), 2)
    figures["met"] = worst <= TARGET_MS
    figures["target"] = (f"every invalid body under the cap answered in <= {TARGET_MS:g} ms "
                         "(median of the rounds)")
    return figures


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value}")
