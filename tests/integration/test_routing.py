"""Reaching what was installed, with the real parts: a real Caddy (Debian's) kept in
sync by the bed's worker through its admin API, requests through it with a Host
header, a killed container, a rolling upgrade under load, and Debian's Prometheus
discovering instances through Berth's HTTP SD document.

One Caddy for the module (lane ports, ``worker/testbed/proxy.py``), registered through
the API like an admin would; every service a test installs is uninstalled after it.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cluster_support import Cluster, hello, until

from tests.fixtures.testbed import test_lane
from worker.testbed.processes import tail
from worker.testbed.proxy import CaddyProcess, PrometheusProcess

pytestmark = pytest.mark.integration

ADDRESS = re.compile(r'<span id="address">([^<]+)</span>')
VERSION = re.compile(r'id="version">([^<]+)<')


@pytest.fixture(scope="module")
def caddy(testbed, live_server, tmp_path_factory) -> Iterator[CaddyProcess]:
    """A real Caddy, registered as proxy ``edge`` through the API; removed afterwards."""
    proxy = CaddyProcess(tmp_path_factory.mktemp("caddy"), test_lane()).start()
    body = {"name": "edge", "kind": "caddy", "admin_url": proxy.admin_url,
            "listen": proxy.listen}
    added = requests.post(live_server.api + "/proxies", json=body,
                          headers=live_server.headers(), timeout=10)
    assert added.status_code == 201, added.text
    try:
        yield proxy
    finally:
        requests.delete(live_server.api + "/proxies/edge", headers=live_server.headers(),
                        timeout=10)
        proxy.stop()


@pytest.fixture
def cluster(testbed) -> Iterator[Cluster]:
    c = Cluster(testbed)
    yield c
    c.uninstall_all()


def name() -> str:
    return f"rt{uuid.uuid4().hex[:6]}"


def install_routed(cluster: Cluster, service: str, host: str, count: int,
                   version: str = "1.0.0") -> None:
    deployment = cluster.install(service, count, version=version, public_host=host)
    done = cluster.wait(deployment, timeout=90)
    assert done["status"] == "succeeded", done["error"]


def through(caddy: CaddyProcess, host: str, timeout: float = 5) -> requests.Response:
    """One request through Caddy with ``Host: host`` on a fresh connection."""
    return requests.get(caddy.url + "/", headers={"Host": host, "Connection": "close"},
                        timeout=timeout)


def dials(cluster: Cluster, service: str) -> set[str]:
    return {f"{i['address']}:{i['port_list'][0]}" for i in cluster.instances(service)
            if i["state"] == "running" and i["health"] == "healthy"}


def handler(service: str) -> str:
    return f"berth-upstreams-edge-{service}-0"


def test_three_instances_are_reached_through_caddy_which_balances_across_all(
        cluster, caddy, live_server):
    service = name()
    install_routed(cluster, service, f"{service}.test", 3)
    want = dials(cluster, service)
    assert len(want) == 3
    until(lambda: set(caddy.upstreams(handler(service)) or []) == want, 10,
          lambda: f"Caddy's upstreams {caddy.upstreams(handler(service))} to be {want}")
    seen = set()
    for _ in range(30):
        response = through(caddy, f"{service}.test")
        assert response.status_code == 200, response.text
        seen.add(ADDRESS.search(response.text).group(1))
    assert seen == want
    [route] = [r for r in requests.get(live_server.api + "/routes", timeout=10,
                                       headers=live_server.headers()).json()["items"]
               if r["service"] == service]
    assert route["state"] == "serving" and set(route["upstreams"]) == want
    [proxy] = requests.get(live_server.api + "/proxies", timeout=10,
                           headers=live_server.headers()).json()["items"]
    assert proxy["sync"]["state"] == "in sync" and proxy["sync"]["last_sync_at"]


def test_a_killed_instance_leaves_caddy_within_2s_and_its_replacement_joins(
        cluster, caddy):
    service = name()
    install_routed(cluster, service, f"{service}.test", 3)
    until(lambda: len(caddy.upstreams(handler(service)) or []) == 3, 10, "3 upstreams")
    victim = cluster.instances(service)[0]
    dead = f"{victim['address']}:{victim['port_list'][0]}"
    killed_at = time.monotonic()
    cluster.docker(victim["agent"]).kill(victim["container"])
    until(lambda: dead not in (caddy.upstreams(handler(service)) or [dead]), 2,
          lambda: f"{dead} to leave Caddy's upstreams {caddy.upstreams(handler(service))}")
    left_after = time.monotonic() - killed_at
    assert left_after <= 2.0
    for _ in range(10):   # nothing is sent to it any more: every request is answered
        assert through(caddy, f"{service}.test").status_code == 200
    until(lambda: len(dials(cluster, service)) == 3, 60, "a healthy replacement")
    want = dials(cluster, service)
    assert victim["id"] not in {i["id"] for i in cluster.instances(service)}
    until(lambda: set(caddy.upstreams(handler(service)) or []) == want, 5,
          lambda: f"the replacement in Caddy's upstreams {caddy.upstreams(handler(service))}")


class Load:
    """A steady, bounded load through Caddy: one request every 20 ms (50/s), each on a
    fresh connection, failures counted (anything but a 200, or no answer)."""

    def __init__(self, caddy: CaddyProcess, host: str, rate: float = 50.0) -> None:
        self.caddy, self.host, self.every = caddy, host, 1.0 / rate
        self.ok = 0
        self.failures: list[str] = []
        self.versions: list[str] = []
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def _one(self) -> None:
        try:
            response = through(self.caddy, self.host, timeout=5)
        except requests.RequestException as error:
            self.failures.append(type(error).__name__)
            return
        if response.status_code != 200:
            self.failures.append(f"HTTP {response.status_code}")
            return
        self.ok += 1
        found = VERSION.search(response.text)
        self.versions.append(found.group(1) if found else "?")

    def _drive(self) -> None:
        next_at = time.monotonic()
        while not self.stop.is_set():
            thread = threading.Thread(target=self._one, daemon=True)
            thread.start()
            self.threads.append(thread)
            next_at += self.every
            self.stop.wait(max(0.0, next_at - time.monotonic()))

    def __enter__(self) -> Load:
        self.driver = threading.Thread(target=self._drive, daemon=True)
        self.driver.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.driver.join(5)
        for thread in self.threads:
            thread.join(10)


def test_a_rolling_upgrade_under_load_through_caddy_fails_no_request(cluster, caddy):
    service = name()
    install_routed(cluster, service, f"{service}.test", 3)
    until(lambda: len(caddy.upstreams(handler(service)) or []) == 3, 10, "3 upstreams")
    package, spec = hello("2.0.0", service, 3, public_host=f"{service}.test")
    with Load(caddy, f"{service}.test") as load:
        time.sleep(1.0)   # steady load before the upgrade starts
        deployment = cluster.ops.update(service, spec=spec, package=package, actor="test")
        done = cluster.wait(deployment, timeout=120)
        until(lambda: set(caddy.upstreams(handler(service)) or []) == dials(cluster, service),
              10, "Caddy to carry the new instances")
        time.sleep(1.0)   # and after it ended
    assert done["status"] == "succeeded", done["error"]
    total = load.ok + len(load.failures)
    assert total >= 100, f"only {total} requests were sent"
    assert load.failures == [], f"{len(load.failures)} of {total} failed: {load.failures[:5]}"
    assert load.versions[0] == "1.0.0" and load.versions[-1] == "2.0.0"


def test_a_restarted_caddy_gets_the_routes_back(cluster, caddy, testbed):
    service = name()
    install_routed(cluster, service, f"{service}.test", 1)
    until(lambda: len(caddy.upstreams(handler(service)) or []) == 1, 10, "1 upstream")
    caddy.restart()
    assert caddy.upstreams(handler(service)) is None   # Caddy forgot Berth's server
    # the periodic check (BERTH_PROXY_RESYNC_INTERVAL, 10 s by default) loads it again
    until(lambda: caddy.upstreams(handler(service)) == list(dials(cluster, service)), 25,
          "the routes back in the restarted Caddy")
    assert through(caddy, f"{service}.test").status_code == 200


def test_prometheus_scrapes_the_instances_and_follows_a_scale_from_2_to_4(
        cluster, live_server, tmp_path: Path):
    service = name()
    deployment = cluster.install(service, 2)
    assert cluster.wait(deployment, timeout=90)["status"] == "succeeded"
    # Berth holds Prometheus' question until the targets change (``wait``, cut a second
    # before the refresh interval Prometheus names): it hears of a scale at once
    refresh = 10.0
    viewer = live_server.make_token("viewer")
    document = f"{live_server.api}/sd/prometheus?service={service}"
    asked_first = time.monotonic()
    prometheus = PrometheusProcess(
        tmp_path / "prometheus", test_lane(), sd_url=f"{document}&wait=60",
        token=viewer, refresh=f"{refresh:g}s").start()
    try:
        def scraped(count: int) -> list[dict[str, Any]]:
            up = [t for t in prometheus.targets()
                  if t["labels"].get("service") == service and t["health"] == "up"]
            return up if len(up) == count else []

        def seen() -> str:
            answer = requests.get(document, headers=live_server.headers(viewer), timeout=5)
            return (f"2 targets up: {prometheus.targets()}; Berth answered {answer.status_code} "
                    f"{answer.text[:300]}; Prometheus said {tail(prometheus.log)}")

        [first, _] = until(lambda: scraped(2), 30, seen)
        labels = first["labels"]
        assert labels["package"] == "hello" and labels["version"] == "1.0.0"
        assert labels["agent"].startswith("agent-") and labels["instance"].startswith(service)
        assert {t["scrapeUrl"].split("/")[2] for t in scraped(2)} == dials(cluster, service)
        # Prometheus asks once when it starts, then one refresh interval later and on
        # (each question after the first is held): scale once the second one is out
        until(lambda: time.monotonic() - asked_first > refresh + 1, refresh + 2,
              "Prometheus' second question")
        done = cluster.wait(cluster.ops.scale(service, 4, actor="test"), timeout=90)
        assert done["status"] == "succeeded", done["error"]
        healthy_at = time.monotonic()
        # Berth's part: the document lists the new instances as soon as they are healthy
        answer = requests.get(document, headers=live_server.headers(viewer), timeout=5).json()
        assert {g["targets"][0] for g in answer} == dials(cluster, service)
        assert len(answer) == 4
        # Prometheus' part: its held question returns with them; its discovery manager
        # then hands target changes to the scrape pools at most every 5 s (fixed in
        # 2.42): within one refresh interval, though Prometheus asks only every 10 s
        until(lambda: len([t for t in prometheus.targets()
                           if t["labels"].get("service") == service]) == 4,
              refresh, "Prometheus to discover 4 targets within one refresh interval")
        followed = time.monotonic() - healthy_at
        assert followed <= refresh
        until(lambda: scraped(4), 15, "4 targets scraped and up")
    finally:
        prometheus.stop()


def test_a_scale_down_takes_instances_out_of_the_endpoints_before_stopping_them(
        cluster, live_server):
    """The victims leave the endpoints first; the engine is told to stop them (its own
    ``kill`` event, SIGTERM) only a drain delay later (``BERTH_DRAIN_DELAY``, 2 s)."""
    service = name()
    assert cluster.wait(cluster.install(service, 3), timeout=90)["status"] == "succeeded"
    url = f"{live_server.api}/services/{service}/endpoints"
    before = requests.get(url, headers=live_server.headers(), timeout=10).json()
    assert len(before["ports"]["http"]) == 3
    instances = {i["id"]: i for i in cluster.instances(service)}
    deployment = cluster.ops.scale(service, 1, actor="test")
    changed = requests.get(url + "?wait=30", timeout=40, headers={
        **live_server.headers(), "If-None-Match": before["etag"]})
    left_at = time.time()
    assert changed.status_code == 200 and changed.json()["etag"] != before["etag"]
    left = {e["instance"] for e in changed.json()["ports"]["http"]}
    gone = [instances[e["instance"]] for e in before["ports"]["http"]
            if e["instance"] not in left]
    assert gone and len(left) < 3   # one or both victims: they are marked one by one
    assert cluster.wait(deployment, timeout=60)["status"] == "succeeded"
    for instance in gone:
        engine = cluster.docker(instance["agent"])
        stream = engine.events(since=left_at - 5, until=time.time() + 1, actions=("kill",))
        kills = [e.time for e in stream if e.name == instance["container"]]
        assert kills, f"no kill event for {instance['container']}"
        # the engine's clock is this machine's: the kill came after the drain delay
        assert min(kills) - left_at >= 1.5, f"stopped {min(kills) - left_at:.2f}s after it left"
