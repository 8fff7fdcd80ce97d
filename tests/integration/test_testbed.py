"""The test bed itself: what it started, its lanes, and its fault helpers."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from click.testing import CliRunner

from server.client.cli import cli
from worker.testbed import processes as proc
from worker.testbed.bed import Testbed, lane_agents
from worker.testbed.swarm import SwarmBed

pytestmark = pytest.mark.integration


def eventually(predicate: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.1)
    return value


def test_lanes_use_their_own_addresses_and_disjoint_port_ranges() -> None:
    assert [a.address for a in lane_agents(0)] == [f"127.0.0.{i}" for i in (2, 3, 4)]
    assert [a.url for a in lane_agents(0)] == [
        f"unix:///tmp/berth-0/agent{i}/docker.sock" for i in (1, 2, 3)]
    assert lane_agents(2)[0].address == "127.0.12.2"
    assert lane_agents(2)[0].url == "unix:///tmp/berth-2/agent1/docker.sock"
    ranges = [a.port_range for lane in (0, 1, 2) for a in lane_agents(lane)]
    ports = [p for low, high in ranges for p in range(low, high + 1)]
    assert len(ports) == len(set(ports)) == 9 * 300


def test_redis_runs_with_aof_on_the_lane_port(testbed: Testbed) -> None:
    client = redis.Redis.from_url(testbed.redis_url)
    assert client.config_get("appendonly") == {"appendonly": "yes"}
    assert testbed.redis_url.endswith(f":{6390 + testbed.lane}/0")
    client.close()


def test_three_agents_answer_and_are_registered(testbed: Testbed) -> None:
    assert all(testbed.agent(i).is_up() for i in (1, 2, 3))
    records = {a["id"]: a for a in testbed.store().agents.list()}
    assert sorted(records) == ["agent-1", "agent-2", "agent-3"]
    for spec in testbed.agents:
        record = records[spec.id]
        assert record["url"] == spec.url and record["address"] == spec.address
        assert record["attributes"]["hostname"] == spec.id
        assert tuple(record["port_range"]) == spec.port_range


def test_every_started_process_runs_and_its_output_goes_to_a_log(testbed: Testbed) -> None:
    assert set(testbed.status()) == {"redis", "agent-1", "agent-2", "agent-3", "worker"}
    assert all(testbed.status().values())
    assert (testbed.log_dir / "worker.log").stat().st_size > 0
    assert (testbed.log_dir / "agent-1.log").stat().st_size > 0


def test_dev_status_and_up_report_the_running_bed(testbed: Testbed) -> None:
    runner = CliRunner()
    status = runner.invoke(cli, ["dev", "status", "--var", str(testbed.var_dir)])
    assert status.exit_code == 0, status.output
    assert "redis" in status.output and "stopped" not in status.output
    up = runner.invoke(cli, ["dev", "up", "--var", str(testbed.var_dir),
                             "--lane", str(testbed.lane)])
    assert up.exit_code == 0 and "already running" in up.output
    assert testbed.agents[0].url in up.output


def test_dev_down_with_nothing_started_says_so(tmp_path: Any) -> None:
    result = CliRunner().invoke(cli, ["dev", "down", "--var", str(tmp_path)])
    assert result.exit_code == 0 and "nothing to stop" in result.output


def test_restarted_redis_keeps_what_was_written(testbed: Testbed) -> None:
    client = redis.Redis.from_url(testbed.redis_url)
    client.set("berth-test:kept", "yes")
    testbed.restart_redis()
    client = redis.Redis.from_url(testbed.redis_url)
    assert client.get("berth-test:kept") == b"yes"
    client.delete("berth-test:kept")
    client.close()


def test_a_killed_worker_is_gone_and_a_new_one_starts(testbed: Testbed) -> None:
    old = testbed.pids["worker"]
    testbed.kill_worker()
    assert not proc.alive(old) and "worker" not in testbed.pids
    testbed.start_worker()
    assert proc.alive(testbed.pids["worker"]) and testbed.pids["worker"] != old


def test_a_stopped_agent_is_unreachable_until_started_again(testbed: Testbed) -> None:
    stream = testbed.agent(3).events()
    follower = threading.Thread(target=lambda: list(stream), daemon=True)
    follower.start()
    testbed.stop_agent(3)
    assert not testbed.agent(3).is_up()
    follower.join(10)
    assert not follower.is_alive()   # an event stream ends when its engine goes away
    testbed.start_agent(3)
    assert testbed.agent(3).is_up() and testbed.agent(3).has_image("berth/hello:1.0.0")
    eventually(lambda: testbed.store().agents.get("agent-3")["state"] == "up")


def test_a_crashed_engine_is_revived_and_a_stopped_one_is_left_stopped(
        testbed: Testbed) -> None:
    crashed = testbed.pids["agent-3"]
    os.kill(crashed, signal.SIGKILL)   # as a Swarm manager's panic ends dockerd
    eventually(lambda: not proc.alive(crashed))
    assert testbed.revive_agents() == ["agent-3"]
    assert testbed.pids["agent-3"] != crashed and testbed.agent(3).is_up()
    assert testbed.revive_agents() == []   # nothing else had died
    testbed.stop_agent(3)
    try:
        assert testbed.revive_agents() == [] and not testbed.agent(3).is_up()
    finally:
        testbed.start_agent(3)
    eventually(lambda: testbed.store().agents.get("agent-3")["state"] == "up")


def test_a_swarm_whose_manager_crashed_is_still_left_by_every_engine(
        testbed: Testbed) -> None:
    swarm = SwarmBed(testbed).start()
    manager = testbed.pids["agent-1"]
    os.kill(manager, signal.SIGKILL)
    eventually(lambda: not proc.alive(manager))
    swarm.stop()
    assert all(testbed.agent(i).is_up() for i in (1, 2, 3))
    states = [testbed.agent(i).client.info()["Swarm"]["LocalNodeState"] for i in (1, 2, 3)]
    assert states == ["inactive"] * 3


def test_a_rerun_stops_the_leftovers_of_a_crashed_run(testbed: Testbed, tmp_path: Any) -> None:
    lane = testbed.lane + 20   # a lane of its own, beside the session's bed
    crashed = Testbed(tmp_path / "crashed", lane=lane).start(worker=False)
    leftovers = dict(crashed.pids)   # the crashed run never calls stop()
    rerun = Testbed(tmp_path / "rerun", lane=lane)
    try:
        rerun.start(worker=False)
        assert not any(proc.alive(pid) for pid in leftovers.values())
        assert all(rerun.status().values()) and rerun.agent(1).is_up()
    finally:
        rerun.stop()
        for pid in leftovers.values():   # only when the rerun failed to stop them
            if proc.alive(pid):
                proc.terminate(pid)
    assert rerun.pids == {}


def test_configured_agents_are_used_and_never_started_stopped_or_cleared(
        testbed: Testbed, tmp_path: Any) -> None:
    """`berth dev up --agents URL` (BERTH_AGENTS): the engine is the caller's own."""
    own_engine = testbed.agent(1)
    keeper = own_engine.run_instance(f"berth-test-keep-{int(time.time())}",
                                     {"image": "berth/hello:1.0.0",
                                      "command": "exec sleep 300"},
                                     labels={"berth-test.case": "configured"})
    bed = Testbed(tmp_path, lane=9, agent_urls=[testbed.agents[0].url])
    try:
        bed.start(worker=False)
        assert set(bed.pids) == {"redis"}  # no engine of its own
        [agent] = bed.store().agents.list()
        assert (agent["id"], agent["url"]) == ("agent-1", testbed.agents[0].url)
        assert agent["port_range"] == [29000, 29299]
        assert Testbed.load(tmp_path).agents[0]["external"] is True
    finally:
        bed.stop()
    assert own_engine.is_up()
    assert own_engine.find(keeper) is not None  # the bed cleared nothing
    own_engine.remove(keeper)


def test_a_configured_agent_that_is_not_a_docker_url_is_one_line(tmp_path: Any) -> None:
    result = CliRunner().invoke(cli, ["dev", "up", "--var", str(tmp_path), "--lane", "9",
                                      "--agents", "ftp://example.org"])
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit)
    assert "'ftp://example.org' is not a Docker engine URL" in result.output
    assert "Traceback" not in result.output
