"""The Celery application of the workers (a factory: nothing happens at import time).

Reliability settings, all in one place: JSON only; a task is acknowledged after it
ran (``acks_late``) and given back when its worker dies (``task_reject_on_worker_lost``);
each worker process reserves one message at a time (prefetch 1); time limits; the
broker's visibility timeout outlasts the longest task, so a message is only handed
out again once its first run cannot still be going. Every task is idempotent: a re-run
converges and never creates a second container for an instance.

With ``BERTH_REDIS_SENTINELS`` the broker is kombu's ``sentinel://`` transport: the
Sentinels are asked for the master of ``BERTH_REDIS_MASTER`` (``master_name``), with
their own password in ``sentinel_kwargs``, and a worker whose connection breaks in a
failover reconnects to the new master (``broker_connection_max_retries=None``).

Queues: ``berth.reconcile_service`` (the fast path: a die event or a failed health check
of one service) is routed to :data:`FAST_QUEUE`, which the fast processes of ``python -m
worker`` consume alone, so a recovery never waits behind periodic passes in the default
queue (:data:`DEFAULT_QUEUE`, which the main processes consume with the fast queue too).
Periodic passes carry a mark in Redis so one already queued or running is not queued
again (:mod:`worker.passes`).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
from typing import Any

from celery import Celery
from celery.signals import worker_process_init

from . import passes
from .settings import WorkerSettings

__all__ = ["create_celery", "TASK_NAMES", "DEFAULT_QUEUE", "FAST_QUEUE", "ROUTES"]

log = logging.getLogger(__name__)

TASK_NAMES = ("berth.deploy", "berth.reconcile", "berth.reconcile_service",
              "berth.heartbeat", "berth.refresh_repositories", "berth.refresh_repository",
              "berth.prune_volumes")

DEFAULT_QUEUE = "celery"
FAST_QUEUE = "berth.fast"
ROUTES = {"berth.reconcile_service": {"queue": FAST_QUEUE}}


def create_celery(settings: WorkerSettings | None = None) -> Celery:
    """A Celery app for ``settings`` (read from the environment when not given)."""
    settings = settings or WorkerSettings.from_env()
    endpoint = settings.redis_endpoint
    app = Celery("berth", broker=settings.broker, include=["worker.tasks"])
    hard = float(settings.task_time_limit)
    app.conf.update(
        task_serializer="json", result_serializer="json", accept_content=["json"],
        task_ignore_result=True, result_backend=None,
        task_acks_late=True, task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1, worker_concurrency=settings.concurrency,
        task_time_limit=hard, task_soft_time_limit=max(1.0, hard - 30),
        broker_transport_options={"visibility_timeout": int(hard + 300),
                                  **endpoint.broker_transport_options()},
        broker_use_ssl=endpoint.broker_use_ssl(),
        broker_connection_retry_on_startup=True, broker_connection_max_retries=None,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_send_task_events=False, task_send_sent_event=False,
        enable_utc=True, timezone="UTC",
        task_default_queue=DEFAULT_QUEUE, task_routes=ROUTES,
    )
    app.berth_settings = settings  # type: ignore[attr-defined]
    worker_process_init.connect(_die_with_parent, weak=False, dispatch_uid="berth-pdeathsig")
    passes.connect()
    return app


def _die_with_parent(**_: Any) -> None:
    """Make a pool process die with the worker (a SIGKILLed worker leaves no orphans)."""
    die_with_parent()


MMAP_THRESHOLD = 4 << 20    # bytes: a volume stream's 1 MiB chunks come from the heap
TRIM_THRESHOLD = 8 << 20    # bytes of free heap kept before any is given back
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3   # glibc's mallopt parameters


def keep_stream_buffers() -> bool:
    """Let glibc's malloc reuse the memory of a volume stream's chunks (True when set).

    A copy or backup allocates a 1 MiB chunk for every MiB it relays. In a worker's pool
    process malloc gave each one fresh pages and returned them when it was freed: a
    page fault per 4 KiB relayed (280,000 for 1 GiB), a second of CPU per GiB, and a
    checked move 20 % slower than the same copy in a plain process. Fixed thresholds
    keep them in the heap (at most :data:`TRIM_THRESHOLD` of it free). Settings an
    operator gives malloc (``GLIBC_TUNABLES``, ``MALLOC_…_``) are left as they are;
    a C library without ``mallopt`` (musl) is left alone.
    """
    if "malloc." in os.environ.get("GLIBC_TUNABLES", "") or any(
            name.startswith("MALLOC_") and name.endswith("_") for name in os.environ):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (no-op elsewhere)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        log.debug("PR_SET_PDEATHSIG is not available here")
