"""A TLS agent on a real engine: ``dockerd --tlsverify`` on ``tcp://…:2376``.

Without a client certificate signed by the agent's CA the engine answers nothing;
with the files in ``BERTH_AGENT_TLS_DIR/<agent-id>/`` Berth registers it, reads its
capacity and pings it. The engine is this test's own (address ``127.0.(10+L).9``,
folders under ``/tmp/berth-L/tls-agent``), started and stopped by pid.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fixtures.testbed import test_lane
from tests.fixtures.tls import make_pki
from worker.agents import AgentPool, heartbeat, register_agent
from worker.docker_agent import DockerAgent, agent_tls
from worker.store import Store
from worker.testbed import processes as proc
from worker.testbed.bed import lane_root

pytestmark = pytest.mark.integration

AGENT_ID = "agent-tls"


class TLSEngine:
    """One dockerd that accepts only clients with a certificate of its CA."""

    def __init__(self, lane: int, pki: Path) -> None:
        self.address = f"127.0.{10 + lane}.9"
        self.url = f"tcp://{self.address}:2376"
        self.pki = pki
        self.folder = lane_root(lane) / "tls-agent"
        self.log = pki / "dockerd.log"
        self.pid: int | None = None

    def start(self) -> TLSEngine:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o700)
        proc.stop_pidfile(self.folder / "docker.pid", grace=30, program="dockerd")
        self.pid = proc.spawn([
            "dockerd", "--iptables=false", "--ip6tables=false", "--bridge=none",
            "--storage-driver=vfs", "--data-root", str(self.folder / "data"),
            "--exec-root", str(self.folder / "exec"),
            "--pidfile", str(self.folder / "docker.pid"),
            "--cgroup-parent", f"/berth-{self.folder.parent.name}-tls",
            "--tlsverify", "--tlscacert", str(self.pki / "ca.pem"),
            "--tlscert", str(self.pki / "server-cert.pem"),
            "--tlskey", str(self.pki / "server-key.pem"), "-H", self.url], self.log)
        client = DockerAgent(self.url, timeout=2, tls=agent_tls(self.tls_dir, AGENT_ID))
        proc.wait_for(client.is_up, what="TLS dockerd", pid=self.pid, log=self.log,
                      timeout=60)
        return self

    @property
    def tls_dir(self) -> str:
        """A ``BERTH_AGENT_TLS_DIR`` holding this agent's client files."""
        return str(self.pki / "agents")

    def stop(self) -> None:
        if self.pid is not None:
            proc.terminate(self.pid, grace=30)
            self.pid = None


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSEngine]:
    if shutil.which("dockerd") is None:
        pytest.fail("dockerd is not installed (make deps installs it)", pytrace=False)
    lane = test_lane()
    pki = make_pki(tmp_path_factory.mktemp("pki"), f"127.0.{10 + lane}.9")
    (pki / "agents").mkdir()
    shutil.copytree(pki / "client", pki / "agents" / AGENT_ID)
    shutil.copytree(pki / "stranger", pki / "agents" / "agent-stranger")
    tls = TLSEngine(lane, pki)
    try:
        yield tls.start()
    finally:
        tls.stop()


def test_without_a_client_certificate_the_engine_answers_nothing(engine: TLSEngine) -> None:
    with pytest.raises(requests.exceptions.ConnectionError):   # a TLS alert, or a reset
        requests.get(f"https://{engine.address}:2376/version", verify=str(engine.pki / "ca.pem"),
                     timeout=5)
    plain = requests.get(f"http://{engine.address}:2376/version", timeout=5)
    assert "ApiVersion" not in plain.text


def test_a_certificate_of_another_ca_is_refused(engine: TLSEngine) -> None:
    stranger = DockerAgent(engine.url, timeout=5,
                           tls=agent_tls(engine.tls_dir, "agent-stranger"))
    assert not stranger.is_up()
    assert not DockerAgent(engine.url, timeout=5).is_up()   # and no TLS at all


def test_with_its_files_berth_registers_and_pings_the_agent(engine: TLSEngine,
                                                            fresh_redis_url: Any) -> None:
    store = Store.from_url(fresh_redis_url)
    agent = register_agent(store, engine.url, agent_id=AGENT_ID, tls_dir=engine.tls_dir,
                           port_range=(20000, 20009))
    assert agent["capacity"]["cpus"] > 0 and agent["state"] == "up"
    pool = AgentPool(timeout=5, tls_dir=engine.tls_dir)
    assert pool.get(agent).info()["version"]
    store.agents.update(AGENT_ID, lambda a: {**a, "state": "unreachable"})
    assert heartbeat(store, pool, unreachable_timeout=30)["up"] == [AGENT_ID]
