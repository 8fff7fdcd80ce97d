"""The watcher: the clock and the ears of the workers (run by ``python -m worker``).

One process per worker host; only the one holding the leader lock (a Redis key with a
TTL, renewed) acts, so several workers never double-run the schedule:

- every ``heartbeat_interval`` it sends ``berth.heartbeat``, every
  ``reconcile_interval`` ``berth.reconcile`` (the first right away, which drives
  on any deployment a dead worker left), every ``refresh_interval``
  ``berth.refresh_repositories`` (each remote repository is fetched when it is due);
- it follows the Docker events of every agent; a Berth container that dies sends
  ``berth.reconcile_service(name)`` at once (at most one pending per service), which
  is how a killed instance is replaced within a couple of seconds;
- it runs the health checks of running instances and sends
  ``berth.reconcile_service`` for a service with an instance gone unhealthy.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

from .agents import AgentPool
from .backend import ClusterBackend, EventFeed
from .errors import AgentError
from .reconcile import Reconciler
from .settings import WorkerSettings
from .store import Store

__all__ = ["Watcher"]

log = logging.getLogger("worker.watcher")

WAKE_ACTIONS = ("die", "oom", "destroy")
TICK = 0.25


class Watcher:
    """Schedule, Docker events and health checks, for one cluster."""

    def __init__(self, settings: WorkerSettings, send_task: Any) -> None:
        self.settings = settings
        self.send_task = send_task
        self.store = Store.from_url(settings.redis_url, prefix=settings.prefix)
        self.store.state.events_maxlen = settings.events_maxlen
        self.pool: ClusterBackend = AgentPool(timeout=settings.docker_timeout,
                                              tls_dir=settings.agent_tls_dir)
        self.reconciler = Reconciler(self.store, self.pool, settings, self._send)
        self.stop = threading.Event()
        self.leader = False
        self.token = uuid.uuid4().hex
        self._streams: dict[str, EventFeed] = {}
        self._followers: dict[str, threading.Thread] = {}

    def run(self) -> None:
        """Work until :meth:`close` is called (from a signal handler or another thread)."""
        threads = [threading.Thread(target=self._guard, args=(loop,), name=loop.__name__,
                                    daemon=True)
                   for loop in (self._schedule, self._health, self._follow_agents)]
        for thread in threads:
            thread.start()
        log.info("watcher started (heartbeat %.1fs, reconcile %.1fs, unreachable after %.1fs)",
                 self.settings.heartbeat_interval, self.settings.reconcile_interval,
                 self.settings.unreachable_timeout)
        self.stop.wait()
        for stream in list(self._streams.values()):
            _close(stream)
        for thread in threads:
            thread.join(5)

    def close(self) -> None:
        self.stop.set()

    def _guard(self, loop: Any) -> None:
        """Run a loop forever, logging and restarting it after an unexpected error."""
        while not self.stop.is_set():
            try:
                loop()
            except Exception:  # noqa: BLE001 - Redis or an agent away: try again shortly
                log.warning("%s failed; retrying", loop.__name__, exc_info=True)
                self.stop.wait(1.0)

    # leadership and schedule ----------------------------------------------------------
    def _lead(self) -> bool:
        """Take or keep the leader lock; whether this watcher leads."""
        key = self.store.state.key("lock", "watcher")
        ttl = int(max(3.0, self.settings.heartbeat_interval * 3) * 1000)
        redis = self.store.redis
        if redis.set(key, self.token, nx=True, px=ttl):
            self.leader = True
        elif redis.get(key) == self.token:
            redis.pexpire(key, ttl)
            self.leader = True
        else:
            self.leader = False
        return self.leader

    def _schedule(self) -> None:
        due = {"berth.heartbeat": 0.0, "berth.reconcile": 0.0,
               "berth.refresh_repositories": 0.0}
        every = {"berth.heartbeat": self.settings.heartbeat_interval,
                 "berth.reconcile": self.settings.reconcile_interval,
                 "berth.refresh_repositories": self.settings.refresh_interval}
        while not self.stop.wait(TICK):
            if not self._lead():
                continue
            now = time.monotonic()
            for task, when in due.items():
                if now >= when:
                    self._send(task, [])
                    due[task] = now + every[task]

    def _send(self, task: str, args: Sequence[Any]) -> None:
        self.send_task(task, args=list(args))

    def wake(self, service: str) -> None:
        """Ask for ``berth.reconcile_service(service)`` unless one is already pending."""
        key = self.store.state.key("pending", "reconcile", service)
        if self.store.redis.set(key, "1", nx=True, px=5000):
            self._send("berth.reconcile_service", [service])

    # health ---------------------------------------------------------------------------
    def _health(self) -> None:
        while not self.stop.wait(TICK * 2):
            if self.leader:
                for service in self.reconciler.monitor():
                    self.wake(service)

    # Docker events --------------------------------------------------------------------
    def _follow_agents(self) -> None:
        """Keep one event follower per registered agent (unless ``watch_events`` is off)."""
        while self.settings.watch_events and not self.stop.is_set():
            for agent in self.store.agents.list():
                thread = self._followers.get(agent["url"])
                if thread is None or not thread.is_alive():
                    thread = threading.Thread(target=self._follow, args=(agent,),
                                              name=f"events-{agent['id']}", daemon=True)
                    self._followers[agent["url"]] = thread
                    thread.start()
            self.stop.wait(2.0)

    def _follow(self, agent: dict[str, Any]) -> None:
        """Follow one agent's container events until stopped; reconnect after errors."""
        docker = self.pool.get(agent)
        since: float | None = None
        while not self.stop.is_set():
            try:
                stream = docker.events(since=int(since) if since else None)
                self._streams[agent["url"]] = stream
                for event in stream:
                    since = event.time or since
                    if event.action in WAKE_ACTIONS and event.service and self.leader:
                        self.wake(event.service)
                    if self.stop.is_set():
                        break
            except AgentError:
                since = since or time.time()
                self.stop.wait(1.0)
            except Exception:  # noqa: BLE001 - a broken stream: reconnect
                log.debug("event stream of %s broke", agent["id"], exc_info=True)
                self.stop.wait(1.0)
            if agent["id"] not in self.store.agents.ids():
                return


def _close(stream: EventFeed) -> None:
    """Close an event stream, whatever state it is in."""
    try:
        stream.close()
    except Exception:  # noqa: BLE001 - closing a broken stream
        log.debug("closing an event stream failed", exc_info=True)
