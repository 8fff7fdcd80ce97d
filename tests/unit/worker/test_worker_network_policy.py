"""The workers check the admin's network and user policy again, before any Docker call."""

from __future__ import annotations

import pytest

from worker import agents
from worker.deploy import Deployer
from worker.service_ops import DesiredState
from worker.settings import WorkerSettings

SPEC = {"image": "berth/hello:1.0.0", "instances": 1, "cpus": 0.1, "mem": 32,
        "network": "host"}
PACKAGE = {"name": "hello", "version": "1.0.0", "repository": "universe"}


def _install(store, spec=SPEC):
    agents.register_agent(store, "tcp://127.0.0.1:1", {}, (20000, 20009),
                          {"cpus": 1, "mem": 128}, agent_id="agent-1")
    store.agents.update("agent-1", lambda a: {**a, "state": "up"})
    return DesiredState(store).install("web", spec, package=PACKAGE)["deployment"]


def test_a_host_network_spec_is_refused_by_default(store):
    result = Deployer(store, settings=WorkerSettings()).run(_install(store)["id"])
    assert result["status"] == "failed"
    assert [d["path"] for d in result["error_details"]] == ["spec/network"]
    assert store.instances.for_service("web") == []


def test_an_allow_list_lets_the_named_package_through(store):
    settings = WorkerSettings.from_env({"BERTH_ALLOW_HOST_NETWORK": "traefik,hello"})
    deployment = _install(store, {**SPEC, "cpus": 5})   # passes the policy, cannot fit
    result = Deployer(store, settings=settings).run(deployment["id"])
    assert "not enough capacity" in result["error"]
    assert "spec/network" not in [d["path"] for d in result["error_details"]]


def test_root_is_refused_when_the_admin_says_so(store):
    settings = WorkerSettings.from_env({"BERTH_ALLOW_HOST_NETWORK": "true",
                                        "BERTH_REFUSE_ROOT_USER": "true"})
    deployment = _install(store, {**SPEC, "user": "0"})
    result = Deployer(store, settings=settings).run(deployment["id"])
    assert result["status"] == "failed"
    assert [d["path"] for d in result["error_details"]] == ["spec/user"]


def test_a_bad_allowance_is_refused_when_the_worker_starts():
    with pytest.raises(ValueError, match="BERTH_ALLOW_HOST_NETWORK"):
        WorkerSettings.from_env({"BERTH_ALLOW_HOST_NETWORK": "Not A Name"})
