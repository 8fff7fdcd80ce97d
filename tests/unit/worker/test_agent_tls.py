"""TLS agents: the client certificate files an agent is reached with, and the docker-py
``TLSConfig`` built from them (the real handshake is in tests/integration)."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.agents import AgentPool
from worker.docker_agent import DockerAgent, TLSFiles, agent_tls
from worker.errors import AgentError

URL = "tcp://127.0.0.1:2376"


def _folder(root: Path, agent_id: str, names=("ca.pem", "cert.pem", "key.pem")) -> Path:
    folder = root / agent_id
    folder.mkdir(parents=True)
    for name in names:
        (folder / name).write_text("PEM\n")
    return folder


def test_the_tls_config_presents_the_client_pair_and_verifies_by_the_ca(tmp_path):
    folder = _folder(tmp_path, "agent-a")
    config = DockerAgent(URL, tls=TLSFiles.in_folder(folder))._tls_config()
    assert config.cert == (str(folder / "cert.pem"), str(folder / "key.pem"))
    assert config.ca_cert == str(folder / "ca.pem")
    assert config.verify is True


def test_an_agent_without_tls_files_gets_no_tls_config(tmp_path):
    assert DockerAgent(URL)._tls_config() is False
    assert agent_tls(str(tmp_path), "agent-b") is None      # no folder for it
    assert agent_tls("", "agent-b") is None                 # no TLS dir set
    assert agent_tls(str(tmp_path), "../agent-b") is None   # never outside the dir


def test_a_folder_missing_a_file_names_it(tmp_path):
    _folder(tmp_path, "agent-c", names=("ca.pem", "cert.pem"))
    with pytest.raises(AgentError) as info:
        agent_tls(str(tmp_path), "agent-c")
    assert [d["path"] for d in info.value.details] == [str(tmp_path / "agent-c" / "key.pem")]


def test_the_pool_finds_each_agents_files_by_its_id(tmp_path):
    folder = _folder(tmp_path, "agent-d")
    pool = AgentPool(tls_dir=str(tmp_path))
    client = pool.get({"id": "agent-d", "url": URL})
    assert client.tls == TLSFiles.in_folder(folder)
    assert pool.heartbeat_client({"id": "agent-d", "url": URL}).tls == client.tls
    assert pool.get({"id": "agent-e", "url": "unix:///run/docker.sock"}).tls is None


@pytest.mark.parametrize("url", [
    "rediss://:pw@redis:6380/0", "rediss://:pw@redis:6380/0?ssl_cert_reqs=none",
    "rediss://:pw@redis:6380/0?ssl_cert_reqs=optional&ssl_ca_certs=/ca.pem"])
def test_a_rediss_url_that_would_not_verify_the_server_is_refused(url):
    from server.settings import Settings, SettingsError
    from worker.settings import WorkerSettings

    with pytest.raises(ValueError, match="BERTH_REDIS_URL: a rediss:// URL needs ssl_cert_reqs"):
        WorkerSettings.from_env({"BERTH_REDIS_URL": url})
    with pytest.raises(SettingsError, match="BERTH_BROKER_URL"):
        Settings.from_env({"BERTH_BROKER_URL": url})


def test_a_verifying_rediss_url_is_kept_as_given():
    from worker.settings import WorkerSettings

    url = "rediss://:pw@redis:6380/0?ssl_cert_reqs=required&ssl_ca_certs=/etc/berth/ca.pem"
    assert WorkerSettings.from_env({"BERTH_REDIS_URL": url}).broker == url


def test_the_local_system_reaches_named_tls_engines_with_their_files(tmp_path):
    from worker.testbed.bed import Testbed

    folder = _folder(tmp_path / "tls", "agent-1")
    bed = Testbed(tmp_path / "var", lane=9, agent_urls=[URL],
                  agent_tls_dir=str(tmp_path / "tls"))
    assert bed.agent(1).tls == TLSFiles.in_folder(folder)
    assert bed.env["BERTH_AGENT_TLS_DIR"] == str(tmp_path / "tls")   # worker and server
    bed.save()
    assert Testbed.load(tmp_path / "var").agent(1).tls == bed.agent(1).tls
