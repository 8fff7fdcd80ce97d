"""Health checks of instances (http / tcp / command) and the state between checks.

Checks — one probe each, always within ``timeoutSeconds``:

- ``check(instance, agent_address, health_spec, docker_agent) -> bool`` — the contract
  entry; ``probe(...)`` is the same returning a :class:`Probe` (``ok`` and why).
- ``http``: ``GET http://<agent address>:<port><path>``; 200–399 is healthy (as in
  Marathon), redirects are not followed. ``tcp``: a connection is accepted.
  ``command``: the command (``/bin/sh -c``) exits 0 inside the container
  (``DockerAgent.exec_check``). The port is the instance's port named ``portName``
  (``instance["ports"]``), else ``portIndex``, else its first port.
- No health check (``None``/``{}``) counts as healthy. Any failure to reach the
  instance or the agent is a failed check, never an exception.

State — :class:`HealthTracker`, pure (the caller passes ``now``)::

    tracker = HealthTracker(spec["healthCheck"], started_at=instance["started_at"])
    if tracker.due(now):
        status = tracker.record(check(...), now)   # "unknown" | "healthy" | "unhealthy"
    tracker.failures, tracker.status, tracker.should_replace

Rules (Marathon's): failures inside ``gracePeriodSeconds`` before the first success are
ignored; after that each failure counts and ``maxConsecutiveFailures`` of them in a row
make the instance ``unhealthy`` (0 means never); one success resets the count and
makes it ``healthy``. Until the first success a check is due every
``startup_interval`` (0.5 s by default, at most ``intervalSeconds``) so that
deployments see new instances become healthy quickly; afterwards every
``intervalSeconds``.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

from worker.backend import Engine
from worker.errors import AgentError

__all__ = ["check", "probe", "Probe", "HealthTracker", "instance_port"]

UNKNOWN, HEALTHY, UNHEALTHY = "unknown", "healthy", "unhealthy"


@dataclass(frozen=True)
class Probe:
    """The outcome of one check: ``ok`` and a short reason."""

    ok: bool
    message: str = ""


def instance_port(instance: Mapping[str, Any], health_spec: Mapping[str, Any]) -> int | None:
    """The port the check targets: by ``portName``, else ``portIndex``, else the first."""
    ports = instance.get("ports") or {}
    port_list = list(instance.get("port_list") or ports.values())
    name = health_spec.get("portName")
    if name:
        return int(ports[name]) if name in ports else None
    index = int(health_spec.get("portIndex") or 0)
    return int(port_list[index]) if index < len(port_list) else None


def probe_http(address: str, port: int, path: str, timeout: float, scheme: str = "http"
               ) -> Probe:
    """One HTTP GET; 200–399 is healthy."""
    url = f"{scheme}://{address}:{port}/{path.lstrip('/')}"
    try:
        response = requests.get(url, timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        return Probe(False, f"GET {url}: {type(exc).__name__}")
    response.close()
    return Probe(200 <= response.status_code < 400, f"GET {url}: {response.status_code}")


def probe_tcp(address: str, port: int, timeout: float) -> Probe:
    """One TCP connect."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return Probe(True, f"tcp {address}:{port}: connected")
    except OSError as exc:
        return Probe(False, f"tcp {address}:{port}: {exc.strerror or exc}")


def probe_command(docker_agent: Engine | None, container: str, command: Any,
                  timeout: float) -> Probe:
    """Run the command in the container; exit code 0 is healthy."""
    if docker_agent is None or not container:
        return Probe(False, "command check: no agent or container to run it in")
    try:
        result = docker_agent.exec_check(container, command, timeout=timeout)
    except AgentError as exc:
        return Probe(False, f"command check: {exc.message}")
    return Probe(result.ok, f"command exited {result.exit_code}: {result.output[-200:]}")


def probe(instance: Mapping[str, Any], agent_address: str,
          health_spec: Mapping[str, Any] | None, docker_agent: Engine | None = None) -> Probe:
    """Run the instance's health check once."""
    if not health_spec:
        return Probe(True, "no health check")
    protocol = str(health_spec.get("protocol") or "http").lower()
    timeout = float(health_spec.get("timeoutSeconds") or 5)
    if protocol in ("command", "cmd"):
        container = instance.get("container_id") or instance.get("container") or ""
        return probe_command(docker_agent, container, health_spec.get("command"), timeout)
    port = instance_port(instance, health_spec)
    address = agent_address or str(instance.get("address") or "")
    if port is None:
        return Probe(False, f"{protocol} check: the instance has no port "
                            f"{health_spec.get('portName') or health_spec.get('portIndex', 0)}")
    if protocol == "tcp":
        return probe_tcp(address, port, timeout)
    if protocol in ("http", "https"):
        return probe_http(address, port, str(health_spec.get("path") or "/"), timeout, protocol)
    return Probe(False, f"unknown health check protocol {protocol!r}")


def check(instance: Mapping[str, Any], agent_address: str,
          health_spec: Mapping[str, Any] | None, docker_agent: Engine | None = None) -> bool:
    """Whether the instance passes its health check now (no check: True)."""
    return probe(instance, agent_address, health_spec, docker_agent).ok


class HealthTracker:
    """Grace period, interval and consecutive failures of one instance (pure)."""

    def __init__(self, health_spec: Mapping[str, Any] | None, started_at: float, *,
                 failures: int = 0, status: str = UNKNOWN, last_check: float | None = None,
                 startup_interval: float = 0.5) -> None:
        spec = health_spec or {}
        self.interval = float(spec.get("intervalSeconds", 10))
        self.grace = float(spec.get("gracePeriodSeconds", 30))
        self.max_failures = int(spec.get("maxConsecutiveFailures", 3))
        self.startup_interval = min(startup_interval, self.interval)
        self.started_at = started_at
        self.failures = failures
        self.status = status
        self.last_check = last_check

    def in_grace(self, now: float) -> bool:
        """Whether failures are still ignored (inside the grace period, never healthy)."""
        return self.status == UNKNOWN and now - self.started_at < self.grace

    def due(self, now: float) -> bool:
        """Whether a check should run at ``now``."""
        if self.last_check is None:
            return True
        every = self.interval if self.status == HEALTHY else self.startup_interval
        return now - self.last_check >= every

    def record(self, ok: bool, now: float) -> str:
        """Take one check's outcome into account; return the new status."""
        self.last_check = now
        if ok:
            self.failures, self.status = 0, HEALTHY
        elif not self.in_grace(now):
            self.failures += 1
            if self.max_failures and self.failures >= self.max_failures:
                self.status = UNHEALTHY
        return self.status

    @property
    def should_replace(self) -> bool:
        """Whether the instance failed its checks too often and must be replaced."""
        return self.status == UNHEALTHY

    def to_dict(self) -> dict[str, Any]:
        """What to keep in the instance record between checks."""
        return {"health": self.status, "failures": self.failures, "last_check": self.last_check}
