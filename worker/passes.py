"""Periodic passes that never pile up: a pass queued or running is not queued again.

The watcher's schedule sends ``berth.heartbeat``, ``berth.reconcile`` and
``berth.refresh_repositories`` on a clock. When a pass takes longer than its interval
(a reconcile pass over a large cluster), sending on the clock alone fills the queue with
passes that each redo the same work. So each scheduled task has one mark in Redis,
``<prefix>pass:<task>``:

- the schedule sends a pass only when it can create the mark (``SET NX``, value
  ``queued``, expiring after :func:`queued_ttl`: a pass normally starts within moments,
  and a message a killed worker had reserved comes back only after the broker's
  visibility timeout, an hour and more, which the schedule must not wait for);
- a worker process turns it into ``running <token>`` when the task starts, with a short
  lease (:func:`running_ttl`, a few intervals) that a thread of that process renews
  while the task runs, and deletes it when the task ends, whatever its outcome; the
  next tick then queues the next pass. A process killed mid-pass (SIGKILL, its host
  gone) renews nothing: the lease runs out and the schedule goes on a few intervals
  later, instead of after the task's hard time limit.

The marks are set from Celery's ``task_prerun`` / ``task_postrun`` signals
(:func:`connect`), so the tasks themselves stay unchanged.
"""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any

from celery.signals import task_postrun, task_prerun

from .settings import WorkerSettings

__all__ = ["PERIODIC", "claim", "started", "finished", "connect", "mark_key"]

log = logging.getLogger(__name__)

PERIODIC = ("berth.heartbeat", "berth.reconcile", "berth.refresh_repositories")


def interval(settings: WorkerSettings, task: str) -> float:
    """The schedule's interval of a periodic task, in seconds."""
    return {"berth.heartbeat": settings.heartbeat_interval,
            "berth.reconcile": settings.reconcile_interval,
            "berth.refresh_repositories": settings.refresh_interval}[task]


def queued_ttl(settings: WorkerSettings, task: str) -> int:
    """How long a ``queued`` mark lives (ms): three intervals, at least 15 s. Past it one
    more pass is queued, so a lost or stranded message delays the schedule by that at
    most, and a queue backed up behind deployments gets one more pass per that time."""
    return int(max(interval(settings, task) * 3, 15.0) * 1000)


def running_ttl(settings: WorkerSettings, task: str) -> int:
    """The lease of a ``running`` mark (ms): three intervals, at least 10 s; renewed
    every third of it while the pass runs (:class:`_Lease`)."""
    return int(max(interval(settings, task) * 3, 10.0) * 1000)


def mark_key(prefix: str, task: str) -> str:
    """The Redis key of a periodic task's mark."""
    return f"{prefix}pass:{task}"


def claim(redis: Any, prefix: str, settings: WorkerSettings, task: str) -> bool:
    """Whether the schedule may send ``task`` now (and, if so, mark it ``queued``)."""
    return bool(redis.set(mark_key(prefix, task), "queued", nx=True,
                          px=queued_ttl(settings, task)))


_RENEW = """if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('psetex', KEYS[1], ARGV[2], ARGV[1]) end return false"""
_RELEASE = """if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1]) end return 0"""


class _Lease:
    """A pass's ``running`` mark, renewed by a daemon thread until :meth:`end`."""

    def __init__(self, redis: Any, key: str, ttl_ms: int) -> None:
        self.redis, self.key, self.ttl_ms = redis, key, ttl_ms
        self.value = f"running {uuid.uuid4().hex}"
        self.done = threading.Event()
        redis.set(key, self.value, px=ttl_ms)
        self.thread = threading.Thread(target=self._renew, daemon=True,
                                       name=f"lease {key}")
        self.thread.start()

    def _renew(self) -> None:
        while not self.done.wait(self.ttl_ms / 3000):
            try:
                if not self.redis.eval(_RENEW, 1, self.key, self.value, self.ttl_ms):
                    return   # taken over (it ran out meanwhile): not ours to keep
            except Exception:  # noqa: BLE001 - Redis away a moment: the next try renews
                log.warning("could not renew %s", self.key, exc_info=True)

    def end(self) -> None:
        self.done.set()
        self.redis.eval(_RELEASE, 1, self.key, self.value)


_leases: dict[str, _Lease] = {}   # task id → the lease of its running pass


def started(redis: Any, prefix: str, settings: WorkerSettings, task: str,
            task_id: str = "") -> None:
    """A pass started: its mark says ``running …`` until :func:`finished`."""
    _leases[task_id] = _Lease(redis, mark_key(prefix, task), running_ttl(settings, task))


def finished(redis: Any, prefix: str, task: str, task_id: str = "") -> None:
    """A pass ended (done, failed or retried): the schedule may send the next one."""
    lease = _leases.pop(task_id, None)
    if lease is not None:
        lease.end()
    else:
        redis.delete(mark_key(prefix, task))


def _store_of(task: Any) -> tuple[Any, WorkerSettings]:
    from .tasks import context  # the worker process's store, built after the fork

    ctx = context(task.app)
    return ctx.store, ctx.settings


def _on_prerun(sender: Any = None, task_id: str = "", **_: Any) -> None:
    if sender is None or sender.name not in PERIODIC:
        return
    try:
        store, settings = _store_of(sender)
        started(store.redis, store.state.prefix, settings, sender.name, task_id)
    except Exception:  # noqa: BLE001 - Redis away: the task's own retries deal with it
        log.warning("could not mark %s running", sender.name, exc_info=True)


def _on_postrun(sender: Any = None, task_id: str = "", **_: Any) -> None:
    if sender is None or sender.name not in PERIODIC:
        return
    try:
        store, _settings = _store_of(sender)
        finished(store.redis, store.state.prefix, sender.name, task_id)
    except Exception:  # noqa: BLE001 - the mark expires on its own
        log.warning("could not clear the mark of %s", sender.name, exc_info=True)


def connect() -> None:
    """Keep the marks from the worker processes (called by ``create_celery``)."""
    task_prerun.connect(_on_prerun, weak=False, dispatch_uid="berth-pass-prerun")
    task_postrun.connect(_on_postrun, weak=False, dispatch_uid="berth-pass-postrun")
