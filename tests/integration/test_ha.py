"""No single point of failure, on real processes: three Redis under three Sentinels, two
servers (gunicorn) and two workers (``python -m worker``), the bed's three engines.

- the master SIGKILLed in the middle of a 30-instance deployment: a replica is
  promoted, the deployment ends with exactly one container per instance, every request
  answered 202 is in the store, and the API answered 503 only inside the measured
  failover window (never 500, never a hang);
- one server and one worker SIGKILLed under a steady stream of writes: the writes go on
  through the other server, the deployment in flight on the killed worker completes on
  the other; then the schedule's leader is SIGKILLed, and the schedule ran exactly once
  per period all along (heartbeats counted);
- the master frozen (SIGSTOP, a partition) and resumed after the failover: it comes
  back a replica, and no deployer acted twice.

The bed runs in lane ``BERTH_TEST_LANE + 20`` so that it never meets the session's
ordinary bed (same engines' folders and port ranges otherwise).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fixtures.testbed import test_lane
from worker.testbed.ha import HaTestbed, wait_until

pytestmark = pytest.mark.integration

LANE_OFFSET = 20
# quick takeovers; Redis timeouts with room for a busy 2-core machine (a replica there
# may lag a second behind without anything being wrong)
QUICK = {"BERTH_DEPLOY_LOCK_TTL": "3", "BERTH_STUCK_AFTER": "4",
         "BERTH_HEALTH_POLL": "0.2", "BERTH_WORKER_CONCURRENCY": "3",
         "BERTH_REDIS_TIMEOUT": "5", "BERTH_REDIS_WAIT_TIMEOUT": "3"}
REQUEST_TIMEOUT = 15.0          # an answer slower than this counts as a hang


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HaTestbed]:
    """The HA bed, shared by the module; stopped (every part, by pid) at its end."""
    ha = HaTestbed(tmp_path_factory.mktemp("ha"), lane=test_lane() + LANE_OFFSET,
                   worker_env=dict(QUICK), down_after_ms=1500)
    try:
        ha.start(serve=True)
        yield ha
    finally:
        try:
            _uninstall_everything(ha)
        finally:
            ha.stop()


def _headers(bed: HaTestbed) -> dict[str, str]:
    return {"Authorization": f"Bearer {bed.admin_token}"}


@dataclass
class Answer:
    server: str
    started: float
    took: float
    status: int | str           # an HTTP status, or "refused" / "hang"
    name: str = ""
    error: str = ""             # the error body's code and message


@dataclass
class Stream:
    """A steady, bounded stream of writes (installs of empty services) and reads, sent
    round-robin to the given servers; every answer recorded with its time."""

    bed: HaTestbed
    servers: list[str]
    prefix: str
    every: float = 0.15
    answers: list[Answer] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Stream:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(REQUEST_TIMEOUT + 5)

    def _run(self) -> None:
        n = 0
        while not self.stop.wait(self.every):
            server = self.servers[n % len(self.servers)]
            name = f"{self.prefix}-{n}"
            self.answers.append(self._send(server, "POST", "/api/v1/services", name,
                                           {"package": "hello", "name": name,
                                            "instances": 0}))
            self.answers.append(self._send(server, "GET", "/api/v1/services", ""))
            n += 1

    def _send(self, server: str, method: str, path: str, name: str,
              body: dict[str, Any] | None = None) -> Answer:
        started = time.monotonic()
        try:
            response = requests.request(method, server + path, json=body,
                                        headers=_headers(self.bed), timeout=REQUEST_TIMEOUT)
            status: int | str = response.status_code
            error = "" if response.ok else f"{method} {response.text[:200]}"
        except requests.Timeout:
            status, error = "hang", ""
        except requests.ConnectionError:
            status, error = "refused", ""
        return Answer(server, started, time.monotonic() - started, status, name, error)

    def acknowledged(self) -> list[str]:
        return [a.name for a in self.answers if a.name and a.status == 202]


def _install(bed: HaTestbed, name: str, instances: int, server: int = 0) -> dict[str, Any]:
    response = requests.post(bed.server_urls[server] + "/api/v1/services",
                             json={"package": "hello", "name": name, "instances": instances},
                             headers=_headers(bed), timeout=REQUEST_TIMEOUT)
    assert response.status_code == 202, response.text
    return response.json()["deployment"]


def _deployment(bed: HaTestbed, store: Any, deployment_id: str) -> dict[str, Any] | None:
    return store.deployments.get(deployment_id)


def _finished(store: Any, deployment_id: str, timeout: float) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def done() -> bool:
        doc = store.deployments.get(deployment_id)
        found.update(doc or {})
        return doc is not None and doc["status"] not in ("queued", "running")

    wait_until(done, timeout=timeout, what=f"deployment {deployment_id} to finish")
    return found


def _under_way(store: Any, deployment_id: str, placed: int = 1) -> None:
    wait_until(lambda: (store.deployments.get(deployment_id) or {}).get("progress", {})
               .get("placed", 0) >= placed, timeout=60, what="the deployment under way",
               interval=0.02)


def _diagnose(bed: HaTestbed, store: Any, name: str, deployment_id: str) -> str:
    """What the records and the engines hold (written next to the logs, for a failure)."""
    lines = [json.dumps(store.deployments.get(deployment_id), default=str)[:4000]]
    for i in store.instances.for_service(name):
        lines.append(f"instance {i['id']} {i['state']} {i['agent']} {i['port_list']} "
                     f"{i.get('error')}")
    for n in range(1, len(bed.agents) + 1):
        for c in bed.agent(n).list_instances({"berth.service": name}):
            lines.append(f"container agent-{n} {c.name} {c.status}")
    lines += [f"event {e['type']} {e['subject']} {e['data']}" for e in
              store.state.read_events(count=100000) if e["type"].startswith("instance.")]
    text = "\n".join(lines)
    (Path(bed.var_dir) / f"diagnosis-{name}.txt").write_text(text)
    return str(Path(bed.var_dir) / f"diagnosis-{name}.txt")


def _one_container_per_instance(bed: HaTestbed, store: Any, name: str, count: int) -> None:
    instances = store.instances.for_service(name)
    containers = [c for i in range(1, len(bed.agents) + 1)
                  for c in bed.agent(i).list_instances({"berth.service": name})]
    assert len(instances) == count
    assert sorted(c.name for c in containers) == sorted(i["container"] for i in instances)
    assert all(i["state"] == "running" for i in instances)


def _replicas_online(bed: HaTestbed, wanted: int = 2) -> bool:
    info = bed.redis_client(bed.master()).info("replication")
    return sum(1 for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)
               and v.get("state") == "online") >= wanted


def _report(bed: HaTestbed, name: str, figures: dict[str, Any]) -> None:
    """Print a measured figure and keep it beside the bed's logs."""
    print(f"\n{name}: {json.dumps(figures)}")
    path = Path(bed.var_dir) / "failover.json"
    known = json.loads(path.read_text()) if path.is_file() else {}
    known[name] = figures
    path.write_text(json.dumps(known, indent=2))


def test_master_killed_mid_deployment_loses_nothing_acknowledged(bed: HaTestbed) -> None:
    store = bed.store()
    with Stream(bed, bed.server_urls, "probe-a") as stream:
        time.sleep(1.0)
        deployment = _install(bed, "big", 30)
        _under_way(store, deployment["id"], placed=3)
        old = bed.master()
        killed = time.monotonic()
        bed.kill(old)
        promoted = wait_until(lambda: bed.master() != old, timeout=30,
                              what="Sentinel to promote a replica")
        finished = _finished(store, deployment["id"], timeout=180)
        time.sleep(2.0)   # writes after the failover too
    assert finished["status"] == "succeeded", (finished.get("error"),
                                               _diagnose(bed, store, "big", deployment["id"]))
    _one_container_per_instance(bed, store, "big", 30)
    statuses = {a.status for a in stream.answers}
    assert statuses <= {200, 202, 503}, [(a.status, a.error) for a in stream.answers
                                         if a.status not in (200, 202, 503)]  # no 500/hang
    unavailable = [a for a in stream.answers if a.status == 503]
    early = [(round(a.started - killed, 2), a.error) for a in unavailable
             if a.started + a.took < killed]
    assert early == []                      # none answered before the kill (in flight: ok)
    window = max((a.started + a.took for a in unavailable), default=killed) - killed
    assert window <= promoted + 10, (window, promoted)       # only inside the failover
    after = [a for a in stream.answers if a.started > killed + window and a.status == 202]
    assert after, "writes were acknowledged again after the failover"
    missing = [n for n in stream.acknowledged() if store.services.get(n) is None]
    assert missing == []                                     # every 202 is in the store
    _report(bed, "master_kill", {"promoted_after_s": round(promoted, 2),
                                 "unavailable_window_s": round(window, 2),
                                 "answers": len(stream.answers), "503": len(unavailable),
                                 "acknowledged_writes": len(stream.acknowledged())})
    bed.start_part(old)   # back as a replica of the new master (Sentinel says so)
    wait_until(lambda: bed.role(old) == "slave" and _replicas_online(bed), timeout=30,
               what=f"{old} to rejoin as a replica")


def _worker_of(bed: HaTestbed, pid: int) -> str | None:
    """The ``worker-N`` whose process tree holds ``pid``."""
    owners = {v: k for k, v in bed.pids.items() if k.startswith("worker-")}
    while pid > 1:
        if pid in owners:
            return owners[pid]
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return None


def _lock_holder(store: Any, service: str) -> int | None:
    """The pid of the deployer holding a service's lock (``<gen>:<host>.<pid>.<rnd>``)."""
    token = store.redis.get(store.state.key("lock", "service", service))
    return int(token.split(":", 1)[1].split(".")[-2]) if token else None


def _leader(bed: HaTestbed, store: Any) -> str | None:
    """The ``worker-N`` whose watcher holds the schedule's lease (``<host>.<pid>.<rnd>``)."""
    token = store.redis.get(store.state.key("lock", "watcher"))
    return _worker_of(bed, int(token.split(".")[-2])) if token else None


def _heartbeats(store: Any, since: float, until: float) -> tuple[list[int], dict[str, str]]:
    """The heartbeat periods that ran between two times, and the run count of each."""
    ran = store.redis.hgetall(store.state.key("schedule", "ran", "berth.heartbeat"))
    return sorted(int(p) for p in ran if since + 1 <= int(p) <= until - 2), ran


def test_a_server_and_a_worker_killed_under_load(bed: HaTestbed) -> None:
    store = bed.store()
    began = time.time()
    with Stream(bed, bed.server_urls, "probe-b") as stream:
        deployment = _install(bed, "roll", 12, server=1)
        _under_way(store, deployment["id"])
        holder = wait_until(lambda: _lock_holder(store, "roll"), timeout=30,
                            what="a deployer to lock the service")
        victim = _worker_of(bed, int(_lock_holder(store, "roll") or 0))
        assert victim, f"the deployer (pid {holder}) belongs to no worker of the bed"
        killed = time.monotonic()
        bed.kill("server-1")
        bed.kill(victim)
        finished = _finished(store, deployment["id"], timeout=120)
        time.sleep(2.0)
    assert finished["status"] == "succeeded", finished.get("error")
    _one_container_per_instance(bed, store, "roll", 12)
    survivor = bed.server_urls[1]
    after = [a for a in stream.answers if a.server == survivor and a.started > killed]
    assert after and all(a.status in (200, 202) for a in after), {a.status for a in after}
    assert [n for n in stream.acknowledged() if store.services.get(n) is None] == []
    bed.start_server(1)
    bed.start_worker(int(victim.rsplit("-", 1)[1]))
    # the schedule: now SIGKILL the worker whose watcher leads it
    wait_until(lambda: _leader(bed, store), timeout=15, what="a schedule leader")
    leader = str(_leader(bed, store))
    bed.kill(leader)
    wait_until(lambda: _leader(bed, store) not in (None, leader), timeout=15,
               what="another watcher to take the lease")
    time.sleep(3.0)
    bed.start_worker(int(leader.rsplit("-", 1)[1]))
    ended = time.time()
    periods, ran = _heartbeats(store, began, ended)
    assert periods and all(int(ran[str(p)]) == 1 for p in periods), ran   # never twice
    gaps = [b - a for a, b in zip(periods, periods[1:], strict=False)]
    assert max(gaps, default=1) <= 5, gaps          # the lease (3 s) passed on, no more
    _report(bed, "server_and_worker_kill", {
        "heartbeat_periods": len(periods), "longest_gap_s": max(gaps, default=1),
        "writes_after_kill": len(after)})


def test_a_frozen_master_comes_back_a_replica_and_nobody_acts_twice(bed: HaTestbed) -> None:
    store = bed.store()
    deployment = _install(bed, "frozen", 10)
    _under_way(store, deployment["id"])
    old = bed.master()
    bed.freeze(old)
    try:
        promoted = wait_until(lambda: bed.master() != old, timeout=30,
                              what="Sentinel to promote a replica")
        finished = _finished(store, deployment["id"], timeout=180)
    finally:
        bed.thaw(old)
    assert finished["status"] == "succeeded", finished.get("error")
    wait_until(lambda: bed.role(old) == "slave", timeout=30,
               what=f"the old master {old} to become a replica")
    _one_container_per_instance(bed, store, "frozen", 10)
    instances = {i["id"] for i in store.instances.for_service("frozen")}
    started = [e["subject"] for e in store.state.read_events(count=100000)
               if e["type"] == "instance.started" and e["subject"] in instances]
    assert all(started.count(i) <= 1 for i in instances), started   # started once each
    new = bed.master()
    key = store.state.key("service", "frozen")
    wait_until(lambda: bed.redis_client(old).get(key) == bed.redis_client(new).get(key),
               timeout=30, what="the old master to hold the new master's records")
    _report(bed, "master_freeze", {"promoted_after_s": round(promoted, 2)})


def _uninstall_everything(bed: HaTestbed) -> None:
    """Remove what the tests installed (best effort, bounded)."""
    store = bed.store()
    for name in store.services.names():
        try:
            requests.delete(f"{bed.server_urls[-1]}/api/v1/services/{name}",
                            headers=_headers(bed), timeout=REQUEST_TIMEOUT)
        except requests.RequestException:
            pass
    try:
        wait_until(lambda: not store.services.names(), timeout=90, what="uninstalls")
    except Exception as error:  # noqa: BLE001 - clean-up: the bed's stop removes containers
        print(f"clean-up: {error}")
