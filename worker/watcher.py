"""The watcher: the clock and the ears of the workers (run by ``python -m worker``).

One process per worker host; only the one holding the leader lease (a Redis key with a
TTL, renewed by a script that checks the holder's token) acts. The lease alone cannot
keep two watchers from sending the same task after a failover (the new master may not
have the lease; for a moment two watchers believe they lead), so every scheduled send
also claims its period in the store — ``<prefix>schedule:<task>:<period>``, set only
while the caller's token still holds the lease and only if unset — and a period is
sent exactly once whatever the number of watchers:

- every ``heartbeat_interval`` it sends ``berth.heartbeat``, every
  ``reconcile_interval`` ``berth.reconcile`` (the first right away, which drives
  on any deployment a dead worker left), every ``refresh_interval``
  ``berth.refresh_repositories`` (each remote repository is fetched when it is due),
  each only when the previous one is neither queued nor running (``worker/passes.py``);
- it follows the Docker events of every agent; a Berth container that dies sends
  ``berth.reconcile_service(name)`` at once (at most one pending per service) on the
  fast queue (``worker/celery_app.py``), which is how a killed instance is replaced
  within a couple of seconds;
- it follows each Swarm manager's service and node events, which ask for a
  ``berth.reconcile`` pass (refreshing the Swarm services' instances);
- it runs the health checks of running instances and sends
  ``berth.reconcile_service`` for a service with an instance gone unhealthy;
- it keeps the registered proxies carrying the routes (``worker/proxy_sync.py``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

from . import passes, swarm_events
from .agents import AgentPool
from .backend import ClusterBackend, EventFeed
from .errors import AgentError
from .proxy_sync import ProxySyncer
from .reconcile import Reconciler
from .settings import WorkerSettings
from .store import Store
from .swarm import SwarmBackend

__all__ = ["Watcher"]

log = logging.getLogger("worker.watcher")

WAKE_ACTIONS = ("die", "oom", "destroy")
TICK = 0.25
# take or keep the lease: set it when free, extend it when ours; whether we hold it
_LEASE = """local held = redis.call('get', KEYS[1])
if held == false then redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
if held == ARGV[1] then redis.call('pexpire', KEYS[1], ARGV[2]) return 1 end
return 0"""
# claim one period of one scheduled task, fenced by the lease
_CLAIM = """if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('set', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0"""


class Watcher:
    """Schedule, Docker events and health checks, for one cluster."""

    def __init__(self, settings: WorkerSettings, send_task: Any) -> None:
        self.settings = settings
        self.send_task = send_task
        self.store = Store.from_settings(settings)
        self.pool: ClusterBackend = AgentPool(timeout=settings.docker_timeout,
                                              tls_dir=settings.agent_tls_dir)
        self.reconciler = Reconciler(self.store, self.pool, settings, self._send)
        self.stop = threading.Event()
        self.leader = False
        # who leads, for admins reading the lease: host, process, then a random part
        self.token = f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:16]}"
        self._streams: dict[str, EventFeed] = {}
        self._followers: dict[str, threading.Thread] = {}

    def run(self) -> None:
        """Work until :meth:`close` is called (from a signal handler or another thread)."""
        threads = [threading.Thread(target=self._guard, args=(loop,), name=loop.__name__,
                                    daemon=True)
                   for loop in (self._schedule, self._health, self._follow_agents,
                                self._follow_swarms, self._proxies)]
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
    @property
    def lease_key(self) -> str:
        return self.store.state.key("lock", "watcher")

    def _lead(self) -> bool:
        """Take or keep the leader lease (atomically); whether this watcher leads."""
        ttl = int(max(3.0, self.settings.heartbeat_interval * 3) * 1000)
        try:
            self.leader = bool(self.store.redis.eval(_LEASE, 1, self.lease_key, self.token,
                                                     ttl))
        except Exception:
            self.leader = False   # Redis away (a failover): lead again once it answers
            raise
        return self.leader

    def claim(self, task: str, period: int, every: float) -> bool:
        """Claim ``period`` of ``task`` for this watcher: true for exactly one watcher,
        and only while it holds the lease."""
        slot = self.store.state.key("schedule", task, period)
        ttl = int(max(1.0, every * 3) * 1000)
        return bool(self.store.redis.eval(_CLAIM, 2, self.lease_key, slot, self.token, ttl))

    def _schedule(self) -> None:
        """Send each scheduled task once per period (``floor(time / interval)``, the same
        clock on every watcher), the period passed along as the task's argument."""
        every = {"berth.heartbeat": self.settings.heartbeat_interval,
                 "berth.reconcile": self.settings.reconcile_interval,
                 "berth.refresh_repositories": self.settings.refresh_interval}
        sent = dict.fromkeys(every, -1)
        while not self.stop.wait(TICK):
            if not self._lead():
                continue
            now = time.time()
            for task, interval in every.items():
                period = int(now // interval) if interval > 0 else int(now / TICK)
                if period != sent[task] and self.claim(task, period, interval):
                    if task == "berth.heartbeat":   # every period once: it is counted
                        self._send(task, [period])
                    else:
                        self._send_pass(task)
                    sent[task] = period
                elif period != sent[task]:
                    sent[task] = period   # another watcher sent this one

    def _send_pass(self, task: str) -> None:
        """Send a periodic pass unless one is already queued or running
        (:mod:`worker.passes`): a pass slower than its interval never piles up."""
        if passes.claim(self.store.redis, self.store.state.prefix, self.settings, task):
            self._send(task, [])

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

    # proxies --------------------------------------------------------------------------
    def _proxies(self) -> None:
        """Keep the registered proxies in sync with the routes while this watcher leads."""
        ProxySyncer(self.store, self.settings).run(self.stop, lambda: self.leader)

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

    def _follow_swarms(self) -> None:
        """One follower of each Swarm manager's events (``worker/swarm_events.py``):
        a service or node event asks for a reconcile pass, which refreshes the Swarm
        services' instances (at most one asked for per second)."""
        def refresh() -> None:
            key = self.store.state.key("pending", "swarm-refresh")
            if self.leader and self.store.redis.set(key, "1", nx=True, px=1000):
                self._send("berth.reconcile", [])

        while self.settings.watch_events and not self.stop.is_set():
            for cluster in self.store.clusters.list():
                name = f"swarm:{cluster['name']}"
                thread = self._followers.get(name)
                if thread is None or not thread.is_alive():
                    backend = SwarmBackend(cluster, timeout=self.settings.docker_timeout,
                                           tls_dir=self.settings.agent_tls_dir)
                    def kept(cluster_name: str = str(cluster["name"])) -> bool:
                        return self.store.clusters.get(cluster_name) is not None

                    thread = threading.Thread(target=swarm_events.follow,
                                              args=(backend, self.stop, refresh, kept),
                                              name=f"events-{name}", daemon=True)
                    self._followers[name] = thread
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
