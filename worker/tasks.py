"""The worker's tasks, by name: thin — take an id, re-read state, call plain code.

``berth.deploy(deployment_id)``, ``berth.reconcile()``, ``berth.reconcile_service(name)``,
``berth.heartbeat()``, ``berth.refresh_repositories()``, ``berth.refresh_repository(name)``
(the first fetch of a repository just added), ``berth.prune_volumes(prune_id)``,
``berth.delete_backup(backup_id)``. Reliability options sit on the decorators; clients
(store, Docker pool) are built once per process, after the fork.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import redis
from celery import shared_task

from .agents import AgentPool, remove_containers
from .backups import delete_by_id
from .deploy import Deployer
from .errors import AgentError, NotDurable
from .reconcile import Reconciler
from .repository_fetcher import refresh as refresh_remote
from .repository_fetcher import refresh_all
from .settings import WorkerSettings
from .store import Store
from .volumes import run_prune

log = logging.getLogger(__name__)

RETRYABLE = (AgentError, NotDurable, redis.ConnectionError, redis.TimeoutError)
RETRIES = {"autoretry_for": RETRYABLE, "max_retries": 3, "retry_backoff": 2,
           "retry_backoff_max": 30, "retry_jitter": True}


@dataclass
class Context:
    """What a worker process keeps between tasks."""

    settings: WorkerSettings
    store: Any
    pool: AgentPool
    deployer: Deployer
    reconciler: Reconciler


_contexts: dict[int, Context] = {}


def context(app: Any) -> Context:
    """This process's context (built on first use, after any fork)."""
    pid = os.getpid()
    if pid not in _contexts:
        settings = getattr(app, "berth_settings", None) or WorkerSettings.from_env()
        store = Store.from_settings(settings)
        pool = AgentPool(timeout=settings.docker_timeout, tls_dir=settings.agent_tls_dir)

        def enqueue(name: str, args: Any) -> Any:
            return app.send_task(name, args=list(args))

        _contexts.clear()
        _contexts[pid] = Context(settings, store, pool, Deployer(store, pool, settings),
                                 Reconciler(store, pool, settings, enqueue))
    return _contexts[pid]


@shared_task(name="berth.deploy", bind=True, acks_late=True, **RETRIES)
def deploy(self: Any, deployment_id: str) -> str | None:
    """Drive one deployment to its end (idempotent: a re-run converges)."""
    ctx = context(self.app)
    try:
        result = ctx.deployer.run(deployment_id)
    except AgentError as error:
        if self.request.retries >= self.max_retries:
            ctx.deployer.fail(deployment_id, f"agent error: {error.message}")
            return "failed"
        raise
    return result["status"] if result else None


@shared_task(name="berth.reconcile", bind=True, acks_late=True, **RETRIES)
def reconcile(self: Any) -> dict[str, Any] | None:
    """One reconciliation pass (skipped while another pass runs)."""
    ctx = context(self.app)
    guard = ctx.store.state.key("lock", "reconcile")
    ttl = int(max(ctx.settings.reconcile_interval * 3, 30) * 1000)
    if not ctx.store.redis.set(guard, os.getpid(), nx=True, px=ttl):
        return None
    try:
        return ctx.reconciler.reconcile()
    finally:
        ctx.store.redis.delete(guard)


@shared_task(name="berth.reconcile_service", bind=True, acks_late=True, **RETRIES)
def reconcile_service(self: Any, name: str) -> str | None:
    """Check one service now and recover it in place (behind Docker events)."""
    ctx = context(self.app)
    ctx.store.redis.delete(ctx.store.state.key("pending", "reconcile", name))
    result = ctx.reconciler.reconcile_service(name)
    return result["status"] if result else None


@shared_task(name="berth.heartbeat", bind=True, acks_late=True, **RETRIES)
def heartbeat(self: Any, period: int | None = None) -> dict[str, list[str]]:
    """Ping every agent; an agent gone silent gets its instances replaced.

    ``period`` is the schedule's period this run belongs to: runs are counted per
    period in ``<prefix>schedule:ran:berth.heartbeat`` (kept an hour), which shows
    that the schedule ran exactly once per period across failovers.
    """
    ctx = context(self.app)
    if period is not None:
        counts = ctx.store.state.key("schedule", "ran", "berth.heartbeat")
        with ctx.store.redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(counts, str(period), 1)
            pipe.expire(counts, 3600)
            pipe.execute()
    changed = ctx.reconciler.heartbeat()
    if changed["unreachable"] or changed["up"]:
        self.app.send_task("berth.reconcile", args=[])
    return changed


@shared_task(name="berth.remove_agent_containers", bind=True, acks_late=True, **RETRIES)
def remove_agent_containers(self: Any, agent: dict[str, Any], containers: list[str]) -> int:
    """Remove the containers of a forcibly removed agent (its records are gone)."""
    return remove_containers(agent, containers, pool=context(self.app).pool)


@shared_task(name="berth.refresh_repositories", bind=True, acks_late=True, max_retries=0)
def refresh_repositories(self: Any) -> Any:
    """Fetch every remote repository again (``worker.repository_fetcher.refresh_all``)."""
    return refresh_all(context(self.app).store)


@shared_task(name="berth.refresh_repository", bind=True, acks_late=True, max_retries=0)
def refresh_repository(self: Any, name: str) -> Any:
    """Fetch one remote repository now: the first fetch after it was added, which the
    server leaves to a worker so a slow remote never holds a request."""
    store = context(self.app).store
    if store.repositories.get(name) is None:
        return None  # removed before the worker got to it
    return refresh_remote(store, name)


@shared_task(name="berth.prune_volumes", bind=True, acks_late=True, **RETRIES)
def prune_volumes(self: Any, prune_id: str) -> int:
    """Remove the left-over volumes a prune request names; how many went."""
    ctx = context(self.app)
    record = run_prune(ctx.store, ctx.pool, prune_id)
    return len(record["removed"]) if record else 0


@shared_task(name="berth.delete_backup", bind=True, acks_late=True, **RETRIES)
def delete_backup(self: Any, backup_id: str) -> bool:
    """Remove a backup's files from the backup store, then its record."""
    ctx = context(self.app)
    return delete_by_id(ctx.store, ctx.pool, ctx.settings, backup_id)
