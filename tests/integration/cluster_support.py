"""Helpers of the cluster integration tests: specs from the real catalog, a client-side
``DesiredState`` that sends tasks to the test bed's worker, and polling with deadlines."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

import requests

from catalog.index import Catalog
from catalog.loader import load_repository_dir
from catalog.options import resolve_options
from catalog.render import render_service
from worker.celery_app import create_celery
from worker.docker_agent import DockerAgent, split_ref
from worker.service_ops import DesiredState
from worker.settings import WorkerSettings

UNIVERSE = Path(__file__).resolve().parents[2] / "universe"
ACTIVE = ("queued", "running")


@cache
def catalog() -> Catalog:
    repo, _problems = load_repository_dir(UNIVERSE, name="universe", priority=100)
    return Catalog([repo])


def hello(version: str, name: str, instances: int,
          constraints: Iterable[Iterable[str]] = (), **options: Any) -> tuple[dict, dict]:
    """(package identity, rendered spec) of the universe's ``hello`` package."""
    package = catalog().resolve("hello", version)
    spec = render_service(package, resolve_options(package, options), service_name=name,
                          instances=instances,
                          constraints=tuple(tuple(c) for c in constraints))
    identity = {"name": package.name, "version": package.version,
                "repository": package.repository}
    return identity, spec


class Cluster:
    """The test bed seen from a client: ops, store, agents, and patient checks."""

    def __init__(self, bed: Any) -> None:
        self.bed = bed
        self.store = bed.store()
        self.app = create_celery(WorkerSettings(redis_url=bed.redis_url))
        self.ops = DesiredState(self.store, lambda name, args: self.app.send_task(
            name, args=list(args)))
        self.created: list[str] = []

    def install(self, name: str, instances: int, version: str = "1.0.0",
                constraints: Iterable[Iterable[str]] = (), **options: Any) -> dict[str, Any]:
        """Install ``hello``; returns the deployment (not waited for)."""
        package, spec = hello(version, name, instances, constraints, **options)
        self.created.append(name)
        return self.ops.install(name, spec, package=package, actor="test")["deployment"]

    def wait(self, deployment: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        """The deployment once finished (fails the test after ``timeout``)."""
        return until(lambda: _finished(self.store.deployments.get(deployment["id"])),
                     timeout, f"deployment {deployment['id']} to finish")

    def instances(self, name: str) -> list[dict[str, Any]]:
        return self.store.instances.for_service(name)

    def docker(self, agent_id: str) -> DockerAgent:
        return DockerAgent(self.store.agents.get(agent_id)["url"], timeout=5)

    def containers(self, name: str, agents: Iterable[str] = ()) -> list[Any]:
        """Every container (running or not) of a service on the given (or every) agent."""
        found = []
        for agent_id in agents or [a.id for a in self.bed.agents]:
            found += self.docker(agent_id).list_instances({"berth.service": name})
        return found

    def uninstall_all(self, *, delete_data: bool = False) -> None:
        for name in self.created:
            if self.store.services.get(name) is not None:
                try:
                    self.wait(self.ops.uninstall(name, actor="test", delete_data=delete_data),
                              timeout=90)
                except Exception as error:  # noqa: BLE001 - best effort clean-up
                    print(f"clean-up of {name} failed: {error}")


def _finished(deployment: dict[str, Any] | None) -> dict[str, Any] | None:
    if deployment is not None and deployment["status"] not in ACTIVE:
        return deployment
    return None


def until(check: Callable[[], Any], timeout: float, what: str | Callable[[], str],
          every: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` (``what``
    may be a function, called then, to say what was seen)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout}s waiting for {said}")
        time.sleep(every)


def answers(instance: dict[str, Any], path: str = "/") -> str | None:
    """The body an instance serves on its first port, or None."""
    try:
        response = requests.get(f"http://{instance['address']}:{instance['port_list'][0]}{path}",
                                timeout=2)
    except requests.RequestException:
        return None
    return response.text if response.ok else None


def serving(instances: list[dict[str, Any]], count: int, version: str = "") -> bool:
    """``count`` healthy instances, each answering HTTP (with ``version`` if given)."""
    healthy = [i for i in instances if i["state"] == "running" and i["health"] == "healthy"]
    if len(healthy) != count:
        return False
    bodies = [answers(i, "/version.json") for i in healthy]
    return all(b is not None and version in b for b in bodies)


def commit_variant(agent: DockerAgent, ref: str, base: str = "berth/hello:2.0.0") -> str:
    """Commit ``base`` plus one small layer (a marker file) as ``ref`` on ``agent``, with
    the base's command: an image no other agent has, which runs like ``base``."""
    config = agent.api.inspect_image(base)["Config"]
    created = agent.api.create_container(
        base, command=["/bin/sh", "-c", f"echo {ref} > /etc/variant-marker"],
        host_config=agent.api.create_host_config(network_mode="none"))
    try:
        agent.api.start(created["Id"])
        assert agent.api.wait(created["Id"], timeout=60)["StatusCode"] == 0
        repository, tag = split_ref(ref)
        agent.api.commit(created["Id"], repository=repository, tag=tag,
                         changes=[f"CMD {json.dumps(config['Cmd'])}"])
    finally:
        agent.api.remove_container(created["Id"], force=True)
    return ref
