"""Remote repository sync at scale: a static server hosting 10,000 packages.

A static index (``catalog.static_index``) of 10,000 packages x 2 versions is served by
``http.server`` on loopback with strong ETags; Berth's fetcher syncs it into a private
``redis-server``. Figures: the first sync, a refresh when nothing changed (target: only
conditional requests, answered 304, in <= 1 s), a refresh after 10 packages changed
(only their documents are fetched), and building the catalog from the stored copy.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PACKAGES = int(os.environ.get("BERTH_BENCH_REMOTE_PACKAGES", "10000"))
VERSIONS = 2


class _Handler(BaseHTTPRequestHandler):
    """Static files from memory with strong ETags (what nginx or a CDN would do)."""

    protocol_version = "HTTP/1.1"  # keep-alive, as real web servers

    def setup(self) -> None:
        super().setup()  # no Nagle delay between headers and body, as nginx's tcp_nodelay
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        entry = self.server.files.get(self.path)
        status, body, etag = (404, b"", None) if entry is None else (200, *entry)
        if etag and self.headers.get("If-None-Match") == etag:
            status, body = 304, b""
        self.server.statuses.append(status)
        self.send_response(status)
        if etag:
            self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _packages(count: int, generation: int = 0) -> list[Any]:
    from catalog.model import Package
    from catalog.version import parse_version

    found = []
    for i in range(count):
        for v in range(VERSIONS):
            revision = generation if i < 10 else 0  # only the first 10 change
            version = f"1.{v}.{revision}"
            found.append(Package(
                name=f"pkg-{i:05d}", version=version, semver=parse_version(version),
                description=f"Package {i}: a service for benchmarks, revision {revision}",
                tags=("bench", f"group-{i % 40}"), maintainer="bench",
                config_schema={"type": "object", "properties": {
                    "port": {"type": "integer", "default": 8000 + i % 100}}},
                resource={"assets": {"container": {"docker": {"app": f"bench/app:{i}"}}}},
                template='{"image": {{ resource.assets.container.docker.app | tojson }}}'))
    return found


def _serve(packages: list[Any]) -> dict[str, tuple[bytes, str]]:
    from catalog.static_index import build_index

    listing, documents = build_index(packages)
    files = {f"/packages/{n}.json": d for n, d in documents.items()}
    files["/index.json"] = listing
    return {path: (data, '"' + hashlib.sha256(data).hexdigest()[:24] + '"')
            for path, data in files.items()}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    import redis

    port = _free_port()
    with open(folder / "redis.log", "wb") as log:
        process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                    "--save", "", "--appendonly", "no", "--dir", str(folder)],
                                   stdout=log, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            redis.Redis.from_url(url).ping()
            return process, url
        except redis.ConnectionError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("redis-server did not start")


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - started


def _catalog_build(store: Any, folder: Path) -> tuple[float, float]:
    """Seconds for the first catalog build from Redis, and for a no-change check."""
    from server.catalog_cache import CatalogCache

    empty = folder / "universe"
    empty.mkdir(exist_ok=True)
    source = CatalogCache(type("S", (), {"universe_dir": str(empty), "extra": {}})(), store)
    catalog, first = _timed(source.get)
    bench = next(r for r in catalog.repositories if r.name == "bench")
    assert len(bench.packages) == PACKAGES * VERSIONS, "catalog incomplete"
    _, check = _timed(source.get)
    return first, check


def run() -> dict[str, Any]:
    """Serve, sync, refresh; return the figures."""
    from worker.repository_fetcher import RemotePolicy, refresh
    from worker.store import Store

    if shutil.which("redis-server") is None:
        return {"skipped": "redis-server is not installed"}
    folder = Path(tempfile.mkdtemp(prefix="berth-bench-remote-"))
    redis_process, redis_url = _start_redis(folder)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.files, httpd.statuses = _serve(_packages(PACKAGES)), []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    policy = RemotePolicy(allow_loopback=True)
    try:
        store = Store.from_url(redis_url)
        store.repositories.add({"name": "bench", "url": f"http://127.0.0.1:"
                                f"{httpd.server_address[1]}/", "priority": 10})
        first, first_s = _timed(refresh, store, "bench", policy)
        httpd.statuses.clear()
        again, again_s = _timed(refresh, store, "bench", policy)
        unchanged = list(httpd.statuses)
        build_s, check_s = _catalog_build(store, folder)
        httpd.files = _serve(_packages(PACKAGES, generation=1))
        httpd.statuses.clear()
        changed, changed_s = _timed(refresh, store, "bench", policy)
        size = len(httpd.files["/index.json"][0])
    finally:
        httpd.shutdown()
        httpd.server_close()
        redis_process.terminate()
        redis_process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
    assert first["status"] == "updated" and first["changed"] == PACKAGES, first
    assert again["status"] == "not_modified" and unchanged == [304], (again, unchanged)
    assert changed["changed"] == 10, changed
    return {
        "packages (x2 versions)": PACKAGES,
        "listing KB": round(size / 1024, 1),
        "first sync s": round(first_s, 2),
        "first sync requests": first["requests"],
        "unchanged refresh s": round(again_s, 3),
        "unchanged refresh requests (all 304)": len(unchanged),
        "10 changed refresh s": round(changed_s, 3),
        "10 changed refresh requests": changed["requests"],
        "catalog build from Redis s": round(build_s, 2),
        "catalog unchanged check ms": round(check_s * 1000, 2),
    }


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:>40}: {value}")
