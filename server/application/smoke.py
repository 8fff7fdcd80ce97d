"""Smoke tests: run a service's package-declared ``tests.smoke`` on its running instances.

``berth package test --cluster URL`` calls this after an install and after an upgrade.
Only what the installed package version declares in ``package.json`` runs, never a
command from the request: a command check inside each running container (through the
agent's engine, as a command health check does; exit 0 passes), or an HTTP GET on a
declared port of each instance (the expected status passes, redirects are not
followed). Like reading logs, this reads from the agents; it writes no state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from worker.docker_agent import DockerAgent, agent_tls
from worker.health import instance_port, probe_command

from ..errors import ApiError

DEFAULT_TIMEOUT = 30.0
OUTPUT_CHARS = 500


class NoSmokeTest(ApiError):
    """The installed package version declares no ``tests.smoke``."""

    code = "no_smoke_test"
    status = 409


class SmokeTests:
    """Run the smoke test of an installed service's package (see the module doc)."""

    def __init__(self, berth: Any, services: Any) -> None:
        self.berth = berth
        self.services = services

    def run(self, name: str) -> dict[str, Any]:
        """``{service, package, smoke, passed, results: [{instance, agent, ok, message}]}``.

        :raises ServiceNotFound: no such service.
        :raises NoSmokeTest: its package version declares none.
        """
        service = self.services.ops.get_service(name)
        identity = service.get("package") or {}
        smoke = self._smoke_of(identity)
        running = [i for i in self.services.ops.list_instances(name)
                   if i.get("state") == "running"]
        results = [self._one(instance, smoke) for instance in running]
        return {"service": name, "package": identity, "smoke": smoke,
                "passed": bool(results) and all(r["ok"] for r in results),
                "results": results}

    def _smoke_of(self, identity: Mapping[str, Any]) -> dict[str, Any]:
        """The ``tests.smoke`` of the service's own package version."""
        package = self.services.catalog().resolve(
            str(identity.get("name")), str(identity.get("version")),
            repository=identity.get("repository") or None, include_yanked=True)
        smoke = (package.tests or {}).get("smoke")
        if not isinstance(smoke, Mapping):
            raise NoSmokeTest(f"{package.name} {package.version} declares no smoke test",
                              hint="add tests.smoke to its package.json "
                                   "(docs/packages.md)")
        return dict(smoke)

    def _one(self, instance: Mapping[str, Any], smoke: Mapping[str, Any]) -> dict[str, Any]:
        """The outcome of the smoke test on one instance."""
        timeout = float(smoke.get("timeoutSeconds") or DEFAULT_TIMEOUT)
        if smoke.get("protocol") == "http":
            ok, message = _http(instance, smoke, timeout)
        else:
            ok, message = self._command(instance, str(smoke.get("command") or ""), timeout)
        return {"instance": instance.get("id"), "agent": instance.get("agent"), "ok": ok,
                "message": message[-OUTPUT_CHARS:]}

    def _command(self, instance: Mapping[str, Any], command: str, timeout: float
                 ) -> tuple[bool, str]:
        agent = self.services.store.agents.get(instance.get("agent") or "")
        if agent is None:
            return False, f"instance {instance.get('id')} is on no known agent"
        engine = DockerAgent(agent["url"], timeout=timeout + 5,
                             tls=agent_tls(self.berth.settings.agent_tls_dir, agent["id"]))
        container = str(instance.get("container_id") or instance.get("container") or "")
        probe = probe_command(engine, container, command, timeout)
        return probe.ok, probe.message


def _http(instance: Mapping[str, Any], smoke: Mapping[str, Any], timeout: float
          ) -> tuple[bool, str]:
    """One GET on the instance's port; ``status`` (200 unless given) passes."""
    port = instance_port(instance, smoke)
    if port is None:
        return False, f"the instance has no port {smoke.get('portName')!r}"
    expected = int(smoke.get("status") or 200)
    url = f"http://{instance.get('address')}:{port}/{str(smoke.get('path') or '/').lstrip('/')}"
    try:
        response = requests.get(url, timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        return False, f"GET {url}: {type(exc).__name__}"
    response.close()
    ok = response.status_code == expected
    return ok, f"GET {url}: {response.status_code} (expected {expected})"
