"""API latency: search and package detail over 10,000 packages vs. a trivial endpoint.

The real server (gunicorn, two sync workers) serves a generated directory repository
of 10,000 packages (``BERTH_REPOSITORY_DIRS``) against its own redis-server. A load
tool drives it over loopback — ``wrk`` (Debian's package) when installed, else a small
threaded ``requests`` driver — with the same concurrency for three request kinds in
the same run: ``/healthz`` (trivial), ``/api/v1/packages?q=…`` (search, varied
queries) and ``/api/v1/packages/{name}`` (detail, varied names).

Targets: search p50 <= 2 x trivial p50; search and detail p99 <= 20 ms. The server
caches search pages per catalog (``server.application.catalog.PageCache``), so the load runs,
which cycle through 500 queries, mostly hit that cache; a separate pass of distinct
queries with a page size the load runs never use measures searches that miss it.
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = int(os.environ.get("BERTH_BENCH_PACKAGES", "10000"))
VERSIONS = 2
DURATION = int(os.environ.get("BERTH_BENCH_SECONDS", "4"))
ROUNDS = 3  # kinds take turns, so a busy moment of the machine hits all of them
CONNECTIONS = 2
PATHS = 500  # distinct URLs per kind, cycled by the load tool

LUA = """
local paths = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
done = function(summary, latency, requests)
  io.write(string.format("BERTH_RESULT %%d %%d %%d %%d\\n", latency:percentile(50),
    latency:percentile(99), summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.timeout))
end
"""


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(predicate: Any, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:  # noqa: BLE001, S110 - not up yet, whatever the reason
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not come up in {timeout:.0f}s")


def _start(folder: Path, repo: Path) -> tuple[list[subprocess.Popen[bytes]], str]:
    """redis-server and gunicorn, logging into ``folder``; returns (processes, url)."""
    import redis
    from cryptography.fernet import Fernet

    redis_port, port = _free_port(), _free_port()
    log = open(folder / "bench-api.log", "ab")  # noqa: SIM115 - closed at exit
    redis_proc = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind",
                                   "127.0.0.1", "--save", "", "--appendonly", "no",
                                   "--dir", str(folder)], stdout=log, stderr=log)
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    _wait(lambda: redis.Redis.from_url(redis_url).ping(), "redis-server", 10)
    env = {**os.environ, "BERTH_REDIS_URL": redis_url, "BERTH_SECRET_KEY": "bench",
           "BERTH_DATA_KEY": Fernet.generate_key().decode(),
           "BERTH_REPOSITORY_DIRS": f"bench={repo}@10"}
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "server.wsgi:app", "--bind",
                               f"127.0.0.1:{port}", "--workers", "2", "--timeout", "300"],
                              cwd=ROOT, env=env, stdout=log, stderr=log,
                              start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    _wait(lambda: requests.get(url + "/healthz", timeout=1).ok, "the server", 60)
    return [server, redis_proc], url


def _warm(url: str) -> int:
    """Ask until both workers have built the 10,000-package catalog; its size."""
    def ready() -> bool:
        fast = 0
        for _ in range(6):
            t0 = time.perf_counter()
            requests.get(url + "/api/v1/packages?q=web", timeout=300).raise_for_status()
            fast += (time.perf_counter() - t0) < 0.1
        return fast == 6

    _wait(ready, "the catalog", 300)
    return requests.get(url + "/api/v1/packages", timeout=60).json()["total"]


def _paths(url: str, rng: random.Random) -> dict[str, list[str]]:
    names = []
    page = 1
    while len(names) < PATHS:
        items = requests.get(f"{url}/api/v1/packages?per_page=100&page={page}",
                             timeout=30).json()["items"]
        names += [p["name"] for p in items]
        page += 1
    words = ["web", "data", "cache", "proxy", "store", "log", "metric", "queue"]
    queries = [rng.choice([rng.choice(names), rng.choice(names)[:4], rng.choice(words),
                           f"{rng.choice(words)} {rng.choice(words)}", "zzz-none"])
               for _ in range(PATHS)]
    return {
        "trivial": ["/healthz"],
        "search": [f"/api/v1/packages?q={quote(q)}" for q in queries],
        "detail": [f"/api/v1/packages/{quote(n)}" for n in names[:PATHS]],
    }


def _wrk(url: str, paths: list[str], folder: Path) -> dict[str, float]:
    script = folder / "paths.lua"
    script.write_text(LUA % ",".join(f'"{p}"' for p in paths))
    out = subprocess.run(["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{DURATION}s", "-s",
                          str(script), url], capture_output=True, text=True, check=True,
                         timeout=DURATION + 60).stdout
    line = next(x for x in out.splitlines() if x.startswith("BERTH_RESULT"))
    p50, p99, count, errors = (int(v) for v in line.split()[1:])
    return {"p50 ms": p50 / 1000, "p99 ms": p99 / 1000, "requests": count,
            "req/s": round(count / DURATION), "errors": errors}


def _threaded(url: str, paths: list[str]) -> dict[str, float]:
    """The fallback load tool: CONNECTIONS threads with keep-alive sessions."""
    timings: list[float] = []
    errors = [0]
    deadline = time.monotonic() + DURATION

    def drive(offset: int) -> None:
        session = requests.Session()
        i = offset
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            ok = session.get(url + paths[i % len(paths)], timeout=30).ok
            timings.append(time.perf_counter() - t0)
            errors[0] += not ok
            i += 1

    threads = [threading.Thread(target=drive, args=(n * 7,)) for n in range(CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ordered = sorted(timings)
    return {"p50 ms": round(statistics.median(ordered) * 1000, 3),
            "p99 ms": round(ordered[int(0.99 * (len(ordered) - 1))] * 1000, 3),
            "requests": len(ordered), "req/s": round(len(ordered) / DURATION),
            "errors": errors[0]}


def _uncached(url: str, rng: random.Random, names: list[str]) -> dict[str, float]:
    """One pass of distinct searches none of which was asked before (cache misses)."""
    words = ["web", "data", "cache", "proxy", "store", "log", "metric", "queue"]
    queries = {rng.choice([rng.choice(names)[:5], rng.choice(words) + " " + rng.choice(words),
                           rng.choice(words)[:3]]) for _ in range(300)}
    session, timings = requests.Session(), []
    for query in sorted(queries):  # per_page=23: a page size the load runs never use
        t0 = time.perf_counter()
        session.get(f"{url}/api/v1/packages", params={"q": query, "per_page": 23},
                    timeout=30).raise_for_status()
        timings.append(time.perf_counter() - t0)
    ordered = sorted(timings)
    return {"p50 ms": round(statistics.median(ordered) * 1000, 3),
            "p99 ms": round(ordered[int(0.99 * (len(ordered) - 1))] * 1000, 3),
            "requests": len(ordered)}


def _median_of(rounds: list[dict[str, dict[str, float]]], kind: str) -> dict[str, float]:
    """Each figure of one kind: the median over the rounds (requests: the sum)."""
    keys = rounds[0][kind].keys()
    out = {k: round(statistics.median(r[kind][k] for r in rounds), 3) for k in keys}
    out["requests"] = sum(r[kind]["requests"] for r in rounds)
    return out


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def run() -> dict[str, Any]:
    """Start everything, measure the three kinds, stop everything; return the figures."""
    sys.path.insert(0, str(ROOT))
    from bench.bench_catalog import generate

    tool = "wrk" if shutil.which("wrk") else "threaded requests driver"
    with tempfile.TemporaryDirectory(prefix="berth-bench-api-") as tmp:
        folder = Path(tmp)
        generate(folder / "repo", packages=PACKAGES, versions=VERSIONS)
        processes, url = _start(folder, folder / "repo")
        try:
            total = _warm(url)
            paths = _paths(url, random.Random(5))
            measure = (lambda p: _wrk(url, p, folder)) if tool == "wrk" else \
                (lambda p: _threaded(url, p))
            rounds = [{kind: measure(p) for kind, p in paths.items()} for _ in range(ROUNDS)]
            figures = {kind: _median_of(rounds, kind) for kind in paths}
            names = [p.rsplit("/", 1)[1] for p in paths["detail"]]
            figures["search uncached"] = _uncached(url, random.Random(9), names)
        finally:
            _stop(processes)
    trivial, search, detail = figures["trivial"], figures["search"], figures["detail"]
    ratio = search["p50 ms"] / trivial["p50 ms"] if trivial["p50 ms"] else float("inf")
    return {
        "load tool": f"{tool}, {CONNECTIONS} connections, {ROUNDS} rounds x {DURATION} s "
                     "per kind (medians of the rounds)",
        "server": "gunicorn, 2 sync workers, over loopback",
        "packages": total,
        **{f"{kind} {k}": v for kind, f in figures.items() for k, v in f.items()},
        "search p50 / trivial p50": round(ratio, 2),
        "note": "search pages are cached per catalog in each server process (LRU 2048); "
                "'search uncached' is one pass of distinct queries, all cache misses",
        "met": ratio <= 2 and search["p99 ms"] <= 20 and detail["p99 ms"] <= 20,
        "targets": "search p50 <= 2 x trivial p50; p99 <= 20 ms",
    }


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value}")
