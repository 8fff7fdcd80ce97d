"""Catalog at scale: load and validate 10,000 packages x 5 versions, then search them.

Targets (2 cores): load+validate <= 5 s, search p50 <= 5 ms, peak RSS <= 400 MB.
The repository is generated in a temporary folder: every package has its own name,
description, tags, options schema (shared by its versions, as real packages mostly
do), template and README; every version its own package.json and image tag.
"""

from __future__ import annotations

import json
import os
import random
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

PACKAGES = int(os.environ.get("BERTH_BENCH_PACKAGES", "10000"))
VERSIONS = 5
QUERIES = 2000
LOADS = int(os.environ.get("BERTH_BENCH_LOADS", "3"))
WORDS = ("web", "data", "cache", "queue", "proxy", "store", "stream", "log", "metric",
         "auth", "mail", "search", "graph", "time", "object", "file", "chat", "build")


def _config(i: int) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "service": {"type": "object", "title": f"Service {i}", "properties": {
                "port": {"type": "integer", "minimum": 0, "maximum": 65535, "default": 0,
                         "title": "Port", "description": "0 assigns one"},
                "log_level": {"type": "string", "enum": ["debug", "info", "warn"],
                              "default": "info"}}},
            "resources": {"type": "object", "properties": {
                "cpus": {"type": "number", "exclusiveMinimum": 0, "default": 0.1 + i % 7},
                "mem": {"type": "integer", "minimum": 16, "default": 64 + i % 50}}},
            "password": {"type": "string", "x-secret": True, "default": "",
                         "pattern": "^[^\\s]*$"},
        },
    }


TEMPLATE = """{
  "image": {{ resource.assets.container.docker.app | tojson }},
  "env": {"LOG_LEVEL": {{ options.service.log_level | tojson }}, "PKG": "%s"},
  "cpus": {{ options.resources.cpus | tojson }},
  "mem": {{ options.resources.mem | tojson }},
  "ports": [{"name": "http", "hostPort": {{ options.service.port | tojson }}}],
  "healthCheck": {"protocol": "http", "portName": "http", "path": "/"}
}
"""


def generate(root: Path, packages: int = PACKAGES, versions: int = VERSIONS) -> int:
    """Write a repository of ``packages`` x ``versions`` under ``root``; return the count."""
    rng = random.Random(7)
    base = root / "packages"
    for i in range(packages):
        words = rng.sample(WORDS, 3)
        name = f"{words[0]}-{words[1]}-{i}"
        config = json.dumps(_config(i))
        template = TEMPLATE % name
        readme = f"# {name}\n\nA {words[2]} service number {i}.\n"
        for v in range(versions):
            version = f"{1 + v // 2}.{v % 2}.{i % 10}"
            folder = base / name / version
            folder.mkdir(parents=True)
            meta = {"name": name, "version": version, "title": f"{words[0].title()} {i}",
                    "description": f"A {words[0]} and {words[1]} service for {words[2]}.",
                    "maintainer": "bench@berth.invalid", "tags": words,
                    "featured": i % 500 == 0}
            (folder / "package.json").write_text(json.dumps(meta))
            (folder / "config.json").write_text(config)
            (folder / "resource.json").write_text(json.dumps(
                {"assets": {"container": {"docker": {"app": f"example/{name}:{version}"}}}}))
            (folder / "service.json.j2").write_text(template)
            (folder / "README.md").write_text(readme)
    return packages * versions


def _queries(names: list[str], rng: random.Random) -> list[str]:
    kinds = [lambda: rng.choice(names), lambda: rng.choice(names)[:4],
             lambda: rng.choice(WORDS), lambda: f"{rng.choice(WORDS)} {rng.choice(WORDS)}",
             lambda: "zzz-no-such-package", lambda: rng.choice(names).split("-")[1][:3]]
    return [rng.choice(kinds)() for _ in range(QUERIES)]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run() -> dict[str, Any]:
    """Generate, load, search; return the figures."""
    from catalog import Catalog, load_repository_dir

    with tempfile.TemporaryDirectory(prefix="berth-bench-") as tmp:
        started = time.perf_counter()
        count = generate(Path(tmp))
        generated = time.perf_counter() - started
        loads, cpus = [], []
        repo = None
        for _ in range(LOADS):  # each a full load: nothing is cached between them
            repo = None  # the previous result is freed first: peak RSS is one load's
            started, cpu = time.perf_counter(), time.process_time()
            repo, problems = load_repository_dir(tmp, name="bench", priority=10)
            loads.append(time.perf_counter() - started)
            cpus.append(time.process_time() - cpu)
        started = time.perf_counter()
        catalog = Catalog([repo])
        indexed = time.perf_counter() - started
    assert not problems, problems[:3]
    assert len(repo.packages) == count
    rng = random.Random(11)
    timings = []
    for query in _queries(catalog.names, rng):
        t0 = time.perf_counter()
        catalog.search(query)
        timings.append((time.perf_counter() - t0) * 1000)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "package versions": count,
        "generate s": round(generated, 2),
        "load+validate s (first)": round(loads[0], 2),
        "load+validate s (best)": round(min(loads), 2),
        "load+validate CPU s (both threads, best)": round(min(cpus), 2),
        "index build s": round(indexed, 2),
        "search p50 ms": round(statistics.median(timings), 3),
        "search p99 ms": round(_percentile(timings, 0.99), 3),
        "peak RSS MB": round(peak_mb, 1),
        "targets": "load+validate <= 5 s, search p50 <= 5 ms, peak RSS <= 400 MB",
    }


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value}")
