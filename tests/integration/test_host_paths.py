"""Host paths cannot escape through a link, on the real test bed.

The attack: service A mounts ``<root>/a`` read-write and makes links to the host's
``/`` inside it (``root -> /`` and a chain ``l1 -> l2 -> /``); service B asks for a
path through them. Then a link appears on the agent where B's own folder was, after
B's install, and B's container dies: the replacement must not be created. Finally a
legitimate B is checked from inside its container: it reads its own folder and
nothing else of the host.

The bed's engines run on this machine, so the test prepares and inspects host
folders directly, the way an attacker with a foothold on the agent would; Berth
itself only looks at them through the toolbox container on the agent.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path
from typing import Any

import pytest
from cluster_support import Cluster, until

from catalog.spec import validate_spec
from worker.docker_agent import DockerAgent
from worker.host_paths import CHECK_COMMAND, MOUNT_POINT
from worker.testbed.images import build_images
from worker.volume_stream import AFTER_SIGNAL

pytestmark = pytest.mark.integration

SHELL = "berth-test/shell:1.0.0"
TOOLBOX = "berth/toolbox:1.0.0"
ON_AGENT_1 = [["zone", "CLUSTER", "a"]]
# every regular file the container can read, outside the kernel's own trees
FIND_READABLE = ("find / \\( -path /proc -o -path /sys -o -path /dev \\) -prune -o -type f "
              "-exec grep -l {token} {{}} + 2>/dev/null; true")


@pytest.fixture(scope="module")
def shell_image(testbed, tmp_path_factory) -> str:
    """A busybox image with ``ln``, ``find`` and ``grep`` for the attack, on every agent."""
    root = tmp_path_factory.mktemp("images")
    folder = root / "shell" / "1.0.0"
    folder.mkdir(parents=True)
    (folder / "image.json").write_text(
        '{"repository": "berth-test/shell", "tag": "1.0.0", "env": ["PATH=/bin"], '
        '"applets": ["sh", "ln", "sleep", "cat", "ls", "grep", "find", "echo", "test", '
        '"readlink", "mkdir"]}')
    agents = [testbed.agent(i) for i in range(1, len(testbed.agents) + 1)]
    build_images(agents, root, testbed.image_dir)
    return SHELL


@pytest.fixture
def cluster(testbed, shell_image):
    c = Cluster(testbed)
    yield c
    c.uninstall_all()


@pytest.fixture
def host_root(testbed) -> Any:
    """The lane's allowed root, emptied of what a test left (links are unlinked)."""
    root = Path(testbed.host_root)
    root.mkdir(parents=True, exist_ok=True)
    yield root
    for entry in root.iterdir():
        if entry.is_symlink() or entry.is_file():
            entry.unlink()
        else:
            shutil.rmtree(entry)   # never follows the links inside


def _install(cluster: Cluster, name: str, command: str, host: str, *,
             read_only: bool = False) -> dict[str, Any]:
    spec = validate_spec({"image": SHELL, "command": command, "cpus": 0.1, "mem": 32,
                          "constraints": ON_AGENT_1, "volumes": [
                              {"containerPath": "/data", "hostPath": host,
                               "readOnly": read_only}]})
    cluster.created.append(name)
    return cluster.ops.install(name, spec, actor="test")["deployment"]


def _running(cluster: Cluster, name: str) -> list[Any]:
    return [c for c in cluster.containers(name) if c.running]


def _attacker(cluster: Cluster, host_root: Path) -> None:
    """Service A: links to the host's ``/`` in its own folder, made from inside."""
    done = cluster.wait(_install(
        cluster, "attacker", "ln -s / /data/root && ln -s / /data/l2 && ln -s l2 /data/l1 "
        "&& exec sleep 3600", f"{host_root}/a"))
    assert done["status"] == "succeeded", done
    until(lambda: os.path.islink(host_root / "a" / "l1"), 20, "A to make its links")
    assert os.readlink(host_root / "a" / "root") == "/"
    assert os.path.realpath(host_root / "a" / "l1") == "/"   # l1 -> l2 -> /


@pytest.mark.parametrize(("via", "read_only"), [("root", True), ("root", False),
                                                ("l1", False), ("l1", True)])
def test_a_path_through_another_services_link_is_refused_and_nothing_starts(
        host_root, cluster, via, read_only):
    _attacker(cluster, host_root)
    target = f"{host_root}/a/{via}"
    done = cluster.wait(_install(cluster, "victim", "exec sleep 3600", target,
                                 read_only=read_only))
    assert done["status"] == "failed"
    problems = {d["path"]: d["message"] for d in done["error_details"]}
    assert f"is not directly inside {host_root}" in problems["spec/volumes/0/hostPath"]
    assert target in problems["spec/volumes/0/hostPath"]
    assert cluster.containers("victim") == []
    assert cluster.instances("victim") == []


def test_a_later_version_of_the_same_service_cannot_mount_its_own_link(
        host_root, cluster, testbed):
    _attacker(cluster, host_root)
    marker = Path(testbed.root) / "outside-marker"
    marker.write_text("host only")
    try:
        spec = validate_spec({"image": SHELL, "command": "exec sleep 3600", "cpus": 0.1,
                              "mem": 32, "constraints": ON_AGENT_1, "volumes": [
                                  {"containerPath": "/data", "hostPath": f"{host_root}/a/root"}]})
        done = cluster.wait(cluster.ops.update("attacker", spec=spec, actor="test"))
        assert done["status"] == "failed"
        assert "not directly inside" in done["error_details"][0]["message"]
        [running] = _running(cluster, "attacker")
        assert running.labels["berth.generation"] == "1"
        # inside A, its links resolve in the container's own tree, not on the host
        agent = cluster.docker("agent-1")
        through = agent.exec_check(running.name, f"cat /data/l1{marker}", timeout=10)
        assert through.exit_code != 0 and "host only" not in through.output
    finally:
        marker.unlink()


def _own_folder_only(agent: DockerAgent, container: str, token: str) -> list[str]:
    """Files holding ``token`` that the container can read, found from inside it."""
    result = agent.exec_check(container, FIND_READABLE.format(token=token), timeout=30)
    assert result.exit_code == 0, result.output
    return sorted(result.output.split())


@pytest.mark.parametrize(("how", "read_only"), [("killed", False), ("restarted", True)])
def test_a_link_made_on_the_agent_after_install_stops_the_replacement(
        host_root, cluster, testbed, how, read_only):
    """B, confined (checked from inside); then its folder becomes a link on the agent
    and B's container dies or B is restarted: no new container is created."""
    outside, own = secrets.token_hex(8), secrets.token_hex(8)
    (host_root / "a").mkdir()
    (host_root / "a" / "marker").write_text(outside)            # another service's data
    marker = Path(testbed.root) / "outside-marker"
    marker.write_text(outside)                                  # the host's own files
    (host_root / "b").mkdir()
    (host_root / "b" / "own").write_text(own)                  # B's own data
    try:
        _confined_then_refused(cluster, host_root, own, outside, how, read_only)
    finally:
        marker.unlink()


def _confined_then_refused(cluster: Cluster, host_root: Path, own: str, outside: str,
                           how: str, read_only: bool) -> None:
    """B reads only its folder; once that folder is a link, no replacement starts."""
    # B writes nothing: were the fix broken, its mount could be the host's /
    done = cluster.wait(_install(cluster, "legit", "exec sleep 3600", f"{host_root}/b",
                                 read_only=read_only))
    assert done["status"] == "succeeded", done
    [container] = _running(cluster, "legit")
    agent = cluster.docker("agent-1")
    assert _own_folder_only(agent, container.name, own) == ["/data/own"]
    assert _own_folder_only(agent, container.name, outside) == []

    (host_root / "b").rename(host_root / "b.moved")   # the attack: B's folder becomes
    os.symlink("/", host_root / "b")                  # a link to the host's / on the agent
    restart = None
    if how == "killed":
        agent.kill(container.name)
    else:
        restart = cluster.ops.restart("legit", actor="test")

    def refused() -> dict[str, Any] | None:
        return next((i for i in cluster.instances("legit")
                     if i["state"] == "failed" and "symbolic link" in (i["error"] or "")), None)

    failed = until(refused, 60, "the replacement to be refused")
    assert failed["error"] == (f"spec/volumes/0/hostPath: {host_root}/b is a symbolic link "
                               "(to /) on agent agent-1; the container was not created")
    events = [e for e in cluster.store.state.read_events(count=100000)
              if e["type"] == "instance.failed" and e["subject"] == failed["id"]]
    assert events and "symbolic link" in events[-1]["data"]["reason"]
    if restart is not None:   # the restart's own steps say why it cannot go on
        until(lambda: any("symbolic link" in step.get("message", "") for step in
                          cluster.store.deployments.get(restart["id"])["steps"]),
              30, "the restart deployment to record the refusal")
    survivors = _running(cluster, "legit")
    for survivor in survivors:   # the first container only, mounted before the attack
        assert survivor.name == container.name
        assert _own_folder_only(agent, survivor.name, outside) == []
    # killed: nothing runs; restarted: the rolling restart keeps the old one serving
    assert len(survivors) == (0 if how == "killed" else 1)


def test_the_toolbox_checks_a_folder_on_the_agent(testbed, host_root):
    agent = testbed.agent(2)
    binds = {str(host_root): {"bind": MOUNT_POINT, "mode": "rw"}}
    made = agent.run_toolbox(TOOLBOX, [CHECK_COMMAND, "fresh"], binds=binds)
    assert made.exit_code == 0 and (host_root / "fresh").is_dir() and \
        not (host_root / "fresh").is_symlink()
    os.symlink("/", host_root / "link")
    (host_root / "file").write_text("x")
    link = agent.run_toolbox(TOOLBOX, [CHECK_COMMAND, "link"], binds=binds)
    assert link.exit_code == 3 and link.output.strip() == "is a symbolic link (to /)"
    file = agent.run_toolbox(TOOLBOX, [CHECK_COMMAND, "file"], binds=binds)
    assert file.exit_code == 3 and file.output.strip() == "is not a folder"
    assert agent.list_instances({"berth.toolbox": "1"}) == []   # each one removed


def test_a_toolbox_command_that_hangs_is_cut_off_and_removed(testbed):
    agent = testbed.agent(2)
    hung = agent.run_toolbox(TOOLBOX, ["/bin/sh", "-c", "while :; do :; done"], timeout=1)
    assert hung.exit_code is None and "timed out after 1s" in hung.output
    assert agent.list_instances({"berth.toolbox": "1"}) == []


def test_a_started_toolbox_works_only_once_signalled_and_is_removed(testbed, host_root):
    """What the target's listing of a copy uses: the container runs before the work is
    due, does it on SIGUSR1 (sent at once here, while its shell may still be starting),
    and goes; one that never ends is cut off and removed too."""
    agent = testbed.agent(2)
    binds = {str(host_root): {"bind": MOUNT_POINT, "mode": "rw"}}
    script = f'cat {MOUNT_POINT}/written-after-the-start; echo " asked for $1"; exit 4'
    waiting = agent.start_toolbox(TOOLBOX, ["/bin/sh", "-c", AFTER_SIGNAL, script, "it"],
                                  binds=binds)
    (host_root / "written-after-the-start").write_text("late")
    assert agent.list_instances({"berth.toolbox": "1"})[0].running
    done = agent.finish_toolbox(waiting)
    assert done.exit_code == 4
    assert done.output.split() == ["late", "asked", "for", "it"]
    stuck = agent.start_toolbox(TOOLBOX, ["/bin/sh", "-c", "while :; do sleep 1; done"])
    cut = agent.finish_toolbox(stuck, timeout=1)   # no handler for the signal: it ignores it
    assert cut.exit_code is None and "timed out after 1s" in cut.output
    assert agent.list_instances({"berth.toolbox": "1"}) == []
