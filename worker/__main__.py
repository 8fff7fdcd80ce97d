"""``python -m worker``: a Celery worker with Berth's schedule and Docker-events watcher.

``python -m worker`` supervises children that die with it and are restarted
when they exit: the Celery worker (``python -m worker celery``: prefork pool,
``BERTH_WORKER_CONCURRENCY`` processes, the default queue and the fast one), the fast
Celery worker (``python -m worker fast``: ``BERTH_WORKER_FAST_CONCURRENCY`` threads
on the fast queue only, so a killed instance's recovery never waits behind a periodic
pass and many services recover at once; not started when that is 0) and the watcher
(``python -m worker watch``: schedule, Docker events, health checks). Settings come from ``BERTH_…``
variables (:mod:`worker.settings`); logs go to stderr. Without ``BERTH_DATA_KEY`` (the
key that opens secret option values) it refuses to start.

``python -m worker new-data-key`` prints a new data key; ``python -m worker
rotate-data-key`` re-seals every service's secret values with the first key of
``BERTH_DATA_KEY`` (docs/production.md, "Rotating the data key").
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from typing import Any

from celery.signals import after_setup_logger

from .celery_app import (
    DEFAULT_QUEUE,
    FAST_QUEUE,
    create_celery,
    die_with_parent,
    keep_stream_buffers,
)
from .settings import WorkerSettings
from .store import Store
from .store.crypto import DataKeyError, generate_key, rotate_store
from .watcher import Watcher


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def watch(settings: WorkerSettings) -> int:
    """Run the watcher until SIGTERM or SIGINT."""
    die_with_parent()
    app = create_celery(settings)
    watcher = Watcher(settings, app.send_task)

    def stop(*_: Any) -> None:
        watcher.close()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    watcher.run()
    return 0


def _quiet_task_lines(**_: Any) -> None:
    """Drop Celery's per-task "received"/"succeeded" lines (the schedule sends tasks every
    second on a test bed); failures are still logged, progress lives in the records."""
    for name in ("celery.app.trace", "celery.worker.strategy"):
        logging.getLogger(name).setLevel(logging.WARNING)


def worker_argv(settings: WorkerSettings, role: str, pid: int) -> list[str]:
    """The Celery command line of a role: ``celery`` (main) or ``fast``."""
    if role == "fast":  # recoveries wait on Docker and health checks: threads suffice
        queues, pool, concurrency, name = FAST_QUEUE, "threads", settings.fast_concurrency, \
            "berth-fast"
    else:
        queues, pool, concurrency, name = f"{DEFAULT_QUEUE},{FAST_QUEUE}", "prefork", \
            settings.concurrency, "berth"
    return ["worker", "--loglevel=INFO", f"--pool={pool}", f"--queues={queues}",
            f"--concurrency={concurrency}", "--without-gossip", "--without-mingle",
            "--without-heartbeat", f"--hostname={name}-{pid}@%h"]


def celery_worker(settings: WorkerSettings, role: str = "celery") -> int:
    """Run a Celery worker of ``role`` in this process (prefork pool)."""
    die_with_parent()
    keep_stream_buffers()   # before the pool forks: its processes relay the streams
    after_setup_logger.connect(_quiet_task_lines, weak=False)
    app = create_celery(settings)
    app.worker_main(worker_argv(settings, role, os.getpid()))
    return 0


class Supervisor:
    """Runs the Celery worker and the watcher as children; restarts one that exits.

    A Celery worker can exit on a broker connection lost at the wrong moment (a
    Redis restart); restarting it here is what lets the workers resume on their own.
    """

    ROLES = ("celery", "fast", "watch")

    def __init__(self, roles: tuple[str, ...] = ROLES) -> None:
        self.roles = roles
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.started: dict[str, float] = {}
        self.quick_exits: dict[str, int] = {}
        self.stopping = False

    def spawn(self, role: str) -> None:
        self.started[role] = time.monotonic()
        self.children[role] = subprocess.Popen([sys.executable, "-m", "worker", role],
                                               preexec_fn=die_with_parent)  # noqa: PLW1509

    def delay(self, role: str) -> float:
        """Seconds to wait before a restart: 1, doubling while it keeps exiting quickly."""
        quick = time.monotonic() - self.started.get(role, 0.0) < 30
        self.quick_exits[role] = self.quick_exits.get(role, 0) + 1 if quick else 0
        return float(min(2 ** self.quick_exits[role] / 2, 30))

    def stop(self, *_: Any) -> None:
        self.stopping = True
        for child in self.children.values():
            if child.poll() is None:
                child.terminate()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        for role in self.roles:
            self.spawn(role)
        while not self.stopping:
            for role, child in list(self.children.items()):
                if child.poll() is not None and not self.stopping:
                    wait = self.delay(role)
                    logging.getLogger("worker").warning(
                        "%s exited with %s; restarting it in %.0fs", role, child.returncode,
                        wait)
                    time.sleep(wait)
                    self.spawn(role)
            time.sleep(0.2)
        for child in self.children.values():
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
        return 0


def _data_key_refusal(settings: WorkerSettings) -> str:
    """Why this worker must not start (no or a malformed data key), or ``""``."""
    try:
        keys = settings.data_keys()
    except DataKeyError as error:
        return error.message
    if keys is None:
        return ("BERTH_DATA_KEY is not set: a worker opens secret option values with it "
                "when it creates containers; give it the server's key "
                "(docs/production.md)")
    return ""


def rotate_data_key(settings: WorkerSettings) -> int:
    """Re-seal every service's secret values with the first key of ``BERTH_DATA_KEY``.

    Run it after putting a new key in front of the old one(s) everywhere; once it
    succeeds, the old keys can be removed (docs/production.md, "Rotating the data key").
    """
    refusal = _data_key_refusal(settings)
    if refusal:
        print(f"berth worker: {refusal}", file=sys.stderr)
        return 2
    keys = settings.data_keys()
    assert keys is not None  # _data_key_refusal refused a worker without keys
    try:
        count = rotate_store(Store.from_settings(settings), keys)
    except DataKeyError as error:
        print(f"berth worker: {error.message} ({error.hint})", file=sys.stderr)
        return 1
    print(f"re-sealed the secret values of {count} record(s) (services, registry "
          "passwords) with the newest data key")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    _logging()
    try:
        settings = WorkerSettings.from_env()
    except ValueError as error:
        print(f"berth worker: {error}", file=sys.stderr)
        return 2
    if argv[:1] == ["new-data-key"]:
        print(generate_key())
        return 0
    if argv[:1] == ["rotate-data-key"]:
        return rotate_data_key(settings)
    refusal = _data_key_refusal(settings)
    if refusal:
        print(f"berth worker: {refusal}", file=sys.stderr)
        return 2
    if argv[:1] == ["watch"]:
        return watch(settings)
    if argv[:1] in (["celery"], ["fast"]):
        return celery_worker(settings, argv[0])
    if argv:
        print("usage: python -m worker [celery|fast|watch|new-data-key|rotate-data-key]",
              file=sys.stderr)
        return 2
    return Supervisor(roles_for(settings)).run()


def roles_for(settings: WorkerSettings) -> tuple[str, ...]:
    """The children of ``python -m worker``: no fast worker when it has no processes."""
    return tuple(r for r in Supervisor.ROLES if r != "fast" or settings.fast_concurrency > 0)


if __name__ == "__main__":
    sys.exit(main())
