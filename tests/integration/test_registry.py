"""Installing from a real registry with credentials, and the ways a pull fails.

The bed's registry is Debian's ``docker-registry`` on loopback with htpasswd auth
(:mod:`worker.testbed.registry`). A variant of ``berth/hello:2.0.0`` with one more
layer (so every agent really downloads something) is pushed there and removed from
the agents; packages copied from ``hello`` 2.0.0 name it as their image. The worker
runs with peer copy and tarballs switched off (``BERTH_IMAGE_PEER_COPY=false``, no
``BERTH_IMAGE_DIR``), so the registry is the only source.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from catalog.bundle import build_bundle
from server.client import BerthClient
from tests.fixtures.live_server import free_port
from tests.integration.cluster_support import commit_variant
from worker.testbed.bed import Testbed
from worker.testbed.registry import USER, BedRegistry

pytestmark = pytest.mark.integration

HELLO = Path(__file__).resolve().parents[2] / "universe" / "packages" / "hello" / "2.0.0"
WRONG = "not-the-password-" + uuid.uuid4().hex   # a credential that must never show either


def berth(server: Any, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run the CLI against the live server (admin token)."""
    return subprocess.run([sys.executable, "-c", "from server.client.cli import main; main()",
                           *args], env=server.cli_env(), input=stdin, capture_output=True,
                          text=True, timeout=240, check=False)


@pytest.fixture(scope="module")
def registry(testbed: Testbed) -> Iterator[BedRegistry]:
    """The registry, and a worker that can only pull (peer copy and tarballs off)."""
    bed_registry = BedRegistry(testbed.var_dir, testbed.lane).start()
    testbed.worker_env.update(BERTH_IMAGE_PEER_COPY="false", BERTH_IMAGE_DIR="")
    try:
        testbed.restart_worker()
        yield bed_registry
    finally:
        for name in ("BERTH_IMAGE_PEER_COPY", "BERTH_IMAGE_DIR"):
            testbed.worker_env.pop(name, None)
        testbed.restart_worker()
        bed_registry.stop()


@pytest.fixture(scope="module")
def image(testbed: Testbed, registry: BedRegistry) -> Iterator[str]:
    """``<registry>/berth/hello:2.0.0-r<hex>``: hello 2.0.0 plus one layer, on no agent."""
    tag = f"2.0.0-r{uuid.uuid4().hex[:8]}"
    local = commit_variant(testbed.agent(1), f"berth/hello:{tag}")
    try:
        ref = registry.push(testbed.agent(1), local)
    finally:
        testbed.agent(1).api.remove_image(local)
    yield ref
    _remove_everywhere(testbed, ref)


@pytest.fixture
def pulled(testbed: Testbed, image: str) -> str:
    """The registry's image, removed from every agent first: it must be pulled again."""
    _remove_everywhere(testbed, image)
    return image


def _remove_everywhere(testbed: Testbed, ref: str) -> None:
    for i in range(1, len(testbed.agents) + 1):
        if testbed.agent(i).has_image(ref):
            testbed.agent(i).api.remove_image(ref, force=True)


@pytest.fixture(scope="module")
def server(live_server: Any, registry: BedRegistry) -> Iterator[Any]:
    """The live server with the registry's credentials added through the CLI."""
    added = berth(live_server, "registries", "add", registry.host, "--username", USER,
                  "--password-stdin", stdin=registry.password + "\n")
    assert added.returncode == 0, added.stderr
    try:
        yield live_server
    finally:
        berth(live_server, "registries", "remove", registry.host)


def _package(server: Any, tmp_path: Path, image: str) -> str:
    """Publish a copy of hello 2.0.0 whose image is ``image``; its name."""
    name = f"hello-reg-{uuid.uuid4().hex[:8]}"
    folder = tmp_path / name / "2.0.0"
    shutil.copytree(HELLO, folder)
    meta = json.loads((folder / "package.json").read_text())
    meta.update(name=name, title=f"Hello from {image}", featured=False)
    (folder / "package.json").write_text(json.dumps(meta))
    resource = json.loads((folder / "resource.json").read_text())
    resource["assets"]["container"]["docker"]["hello"] = image
    (folder / "resource.json").write_text(json.dumps(resource))
    answer = requests.post(server.url + "/api/v1/packages", data=build_bundle(folder),
                           timeout=60, headers={**server.headers(server.make_token(
                               "maintainer")), "Content-Type": "application/gzip"})
    assert answer.status_code == 201, answer.text
    return name


def _allocations(client: BerthClient) -> dict[str, Any]:
    return {a["id"]: a.get("allocated") for a in client.agents()}


def _install(server: Any, package: str, instances: int) -> tuple[BerthClient, str, dict]:
    """Install ``package``; (client, service name, the finished deployment)."""
    client = BerthClient(server.url, server.admin_token)
    service = f"reg-{uuid.uuid4().hex[:6]}"
    answer = client.install(package, name=service, instances=instances)
    return client, service, client.wait_for_deployment(answer["deployment"]["id"],
                                                       timeout=180)


def _uninstall(client: BerthClient, service: str) -> None:
    removal = client.uninstall(service)
    client.wait_for_deployment(removal["deployment"]["id"], timeout=120)


def test_a_package_is_pulled_from_the_registry_with_its_credentials(
        server: Any, testbed: Testbed, pulled: str, tmp_path: Path) -> None:
    image = pulled
    package = _package(server, tmp_path, image)
    client, service, deployment = _install(server, package, instances=2)
    try:
        assert deployment["status"] == "succeeded", deployment
        pulls = [s for s in deployment["steps"] if s["name"].startswith("pull agent-")]
        assert len(pulls) == 2, deployment["steps"]   # one step per agent, updated in place
        assert all(s["message"].startswith(f"{image}: pulled") for s in pulls), pulls
        agents = {i["agent"] for i in client.service(service)["instances_list"]}
        assert {s["name"].removeprefix("pull ") for s in pulls} == agents
        for agent in agents:
            assert testbed.agent(agent).has_image(image)
        shown = berth(server, "deployments", "--id", deployment["id"])
        assert shown.returncode == 0 and "pull agent-" in shown.stdout
        page = requests.get(f"{server.url}/deployments/{deployment['id']}", timeout=60,
                            headers=server.headers())
        assert page.ok and "pull agent-" in page.text and f"{image}: pulled" in page.text
    finally:
        _uninstall(client, service)


def test_wrong_credentials_fail_clearly_and_reserve_nothing(
        server: Any, registry: BedRegistry, pulled: str, tmp_path: Path) -> None:
    image = pulled
    package = _package(server, tmp_path, image)
    client = BerthClient(server.url, server.admin_token)
    before = _allocations(client)
    client.add_registry(registry.host, username=USER, password=WRONG)
    try:
        client, service, deployment = _install(server, package, instances=1)
    finally:
        client.add_registry(registry.host, username=USER, password=registry.password)
    try:
        assert deployment["status"] == "failed"
        assert "unauthorized" in deployment["error"], deployment["error"]
        assert image in deployment["error"]
        _check_nothing_reserved(client, service, before)
    finally:
        _uninstall(client, service)


def _check_nothing_reserved(client: BerthClient, service: str, before: dict) -> None:
    shown = client.service(service)
    assert shown["status"] == "failed" and not shown.get("instances_list")
    assert _allocations(client) == before


@pytest.mark.parametrize("case", ["not found", "unreachable"])
def test_an_image_that_cannot_be_had_fails_clearly_and_reserves_nothing(
        server: Any, registry: BedRegistry, tmp_path: Path, case: str) -> None:
    ref = (registry.ref(f"berth/hello:missing-{uuid.uuid4().hex[:6]}") if case == "not found"
           else f"127.0.0.1:{free_port()}/berth/hello:2.0.0")
    package = _package(server, tmp_path, ref)
    client = BerthClient(server.url, server.admin_token)
    before = _allocations(client)
    client, service, deployment = _install(server, package, instances=1)
    try:
        assert deployment["status"] == "failed"
        assert f"failed: {case}" in deployment["error"], deployment["error"]
        _check_nothing_reserved(client, service, before)
    finally:
        _uninstall(client, service)


def test_no_credential_appears_in_any_answer_event_or_log(
        server: Any, testbed: Testbed, registry: BedRegistry) -> None:
    client = BerthClient(server.url, server.admin_token)
    assert [r["username"] for r in client.registries() if r["host"] == registry.host] == [USER]
    answers = [json.dumps(client.registries()), json.dumps(client.deployments(limit=100)),
               json.dumps(client.services()),
               requests.get(server.api + "/events", params={
                   "since": "0", "timeout": "0", "type": "registry."},
                   headers=server.headers(), timeout=60).text,
               repr(testbed.store().redis.xrange(testbed.store().state.events_key)),
               berth(server, "registries", "list").stdout,
               berth(server, "registries", "list", "--json").stdout]
    logs = [p.read_text(errors="replace") for p in (testbed.log_dir.glob("*.log"))]
    logs.append(server.log_path.read_text(errors="replace"))
    assert any("registry.added" in a or "registry.updated" in a for a in answers)
    for text in answers + logs:
        assert registry.password not in text
        assert WRONG not in text
