"""The worker's host-path settings and which volumes it checks on the agent."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from worker import agents
from worker.agents import AgentPool
from worker.host_paths import CHECK_COMMAND, host_folders
from worker.instances import InstanceRunner
from worker.service_ops import DesiredState
from worker.settings import WorkerSettings
from worker.testbed.images import load_image_source


def test_nested_allowed_roots_stop_the_worker_with_the_variable_named() -> None:
    with pytest.raises(ValueError, match="BERTH_ALLOWED_HOST_PATHS.*nest"):
        WorkerSettings.from_env({"BERTH_ALLOWED_HOST_PATHS": "/srv/berth:/srv/berth/a"})
    with pytest.raises(ValueError, match="nest"):
        WorkerSettings.from_env({"BERTH_ALLOWED_HOST_PATHS": "/srv/berth",
                                 "BERTH_READONLY_HOST_PATHS": "/srv"})


def test_the_toolbox_image_and_read_only_paths_are_settings() -> None:
    settings = WorkerSettings.from_env({"BERTH_TOOLBOX_IMAGE": "registry.local/tb:2",
                                        "BERTH_READONLY_HOST_PATHS": "/proc:/sys"})
    assert settings.toolbox_image == "registry.local/tb:2"
    assert settings.readonly_host_paths == ("/proc", "/sys")
    assert settings.host_path_roots == ("/srv/berth",)
    assert WorkerSettings().toolbox_image == "berth/toolbox:1.0.0"


def test_only_folders_below_a_root_are_checked_on_the_agent() -> None:
    spec = {"volumes": [{"containerPath": "/a", "name": "vol"},
                        {"containerPath": "/b", "hostPath": "/srv/berth/b"},
                        {"containerPath": "/p", "hostPath": "/proc", "readOnly": True}]}
    assert list(host_folders(spec, ("/srv/berth",))) == [(1, "/srv/berth/b", "/srv/berth", "b")]


def test_the_toolbox_image_carries_the_check_and_the_applets_it_uses() -> None:
    source = load_image_source(Path(__file__).resolve().parents[3] / "universe" / "images"
                               / "toolbox" / "1.0.0")
    assert source.ref == WorkerSettings().toolbox_image
    script = source.path / "rootfs" / CHECK_COMMAND.lstrip("/")
    assert script.stat().st_mode & 0o111
    subprocess.run(["sh", "-n", str(script)], check=True)  # noqa: S603,S607 - a syntax check
    assert {"sh", "mkdir", "readlink", "echo", "["} <= set(source.applets)


def test_a_stored_nested_path_is_refused_before_any_docker_call(store: Any) -> None:
    """A service stored before the one-folder rule (``/srv/berth/a/root``) is not
    restarted by a replacement outside a deployment: the start checks the policy."""
    agents.register_agent(store, "tcp://127.0.0.1:1", {}, (20000, 20009),
                          {"cpus": 1, "mem": 128}, agent_id="agent-1")
    store.agents.update("agent-1", lambda a: {**a, "state": "up"})
    spec = {"image": "berth/hello:1.0.0", "cpus": 0.1, "mem": 32, "volumes": [
        {"containerPath": "/data", "hostPath": "/srv/berth/a/root", "readOnly": True}]}
    service = DesiredState(store).install("old", spec)["service"]
    ops = InstanceRunner(store, AgentPool(timeout=1), WorkerSettings())
    [instance] = ops.place(service, [], 1, "d-1")
    [error] = ops.start(service, [instance])
    assert error.startswith("refused: spec/volumes/0/hostPath: '/srv/berth/a/root' is not "
                            "directly inside /srv/berth")
    assert store.instances.get(instance["id"])["state"] == "failed"
