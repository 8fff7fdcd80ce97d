"""The test bed the cluster benchmarks run on (not a benchmark itself).

A :class:`~worker.testbed.bed.Testbed` on lane ``BERTH_BENCH_LANE`` (default 7), a client
``DesiredState`` sending tasks to its worker, and the ``hello`` spec from the universe.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from catalog.index import Catalog
from catalog.loader import load_repository_dir
from catalog.options import resolve_options
from catalog.render import render_service
from worker.celery_app import create_celery
from worker.service_ops import DesiredState
from worker.settings import WorkerSettings
from worker.testbed.bed import Testbed

UNIVERSE = Path(__file__).resolve().parent.parent / "universe"


def lane() -> int:
    return int(os.environ.get("BERTH_BENCH_LANE", "7"))


def hello_spec(name: str, instances: int, version: str = "1.0.0",
               **options: Any) -> tuple[dict, dict]:
    repo, _ = load_repository_dir(UNIVERSE, name="universe", priority=100)
    package = Catalog([repo]).resolve("hello", version)
    spec = render_service(package, resolve_options(package, options), service_name=name,
                          instances=instances)
    return ({"name": package.name, "version": package.version,
             "repository": package.repository}, spec)


class Bed:
    """A started test bed with ops; ``close()`` stops everything it started."""

    def __init__(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="berth-bench-")
        self.bed = Testbed(self.folder, lane=lane()).start()
        self.store = self.bed.store()
        app = create_celery(WorkerSettings(redis_url=self.bed.redis_url))
        self.send: Callable[[str, Any], Any] = lambda n, a: app.send_task(n, args=list(a))
        self.ops = DesiredState(self.store, self.send)

    def close(self) -> None:
        self.bed.stop()

    def wait_deployment(self, deployment_id: str, timeout: float = 120,
                        every: float = 0.01) -> dict[str, Any]:
        """The deployment once it has ended, read every ``every`` seconds."""
        return until(lambda: (lambda d: d if d["status"] not in ("queued", "running")
                              else None)(self.store.deployments.get(deployment_id)), timeout,
                     every)


def until(check: Callable[[], Any], timeout: float, every: float = 0.01) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark condition not met in time")
        time.sleep(every)


def answers(address: str, port: int) -> bool:
    try:
        return requests.get(f"http://{address}:{port}/", timeout=1).ok
    except requests.RequestException:
        return False
