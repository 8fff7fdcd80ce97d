"""High availability: the failover window, and deploy throughput with 2 workers against 1.

On :class:`worker.testbed.ha.HaTestbed` (three Redis under three Sentinels with
``down-after-milliseconds`` 2000, two servers, two workers, the bed's three engines) in
lane ``BERTH_BENCH_LANE + 20``:

- **failover window**, three times: a client writes through a server every 50 ms (an
  install of an empty service, answered 202 only once a replica holds it); the master
  is SIGKILLed; the window is the time from the kill to the first write acknowledged
  again. The killed Redis is started again (it comes back a replica) between runs.
  Target: ≤ 10 s.
- **deploy throughput**: six services of five ``hello`` instances installed at once,
  until all 30 are healthy — with both workers, then with one (the other stopped), in
  the same run on the same agents; instances per second each way.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from typing import Any

import requests

from worker.testbed.ha import HaTestbed, wait_until

DOWN_AFTER_MS = 2000
TARGET_S = 10.0
RUNS = 3
SERVICES, PER_SERVICE = 6, 5


def lane() -> int:
    return int(os.environ.get("BERTH_BENCH_LANE", "7")) + 20


class Client:
    """Writes and deployments through the bed's first server."""

    def __init__(self, bed: HaTestbed) -> None:
        self.bed = bed
        self.headers = {"Authorization": f"Bearer {bed.admin_token}"}
        self.count = 0

    def install(self, name: str, instances: int, server: int = 0) -> requests.Response:
        return requests.post(f"{self.bed.server_urls[server]}/api/v1/services",
                             json={"package": "hello", "name": name,
                                   "instances": instances},
                             headers=self.headers, timeout=15)

    def probe(self) -> bool:
        """One write: whether it was acknowledged (202)."""
        self.count += 1
        try:
            return self.install(f"probe-{self.count}", 0).status_code == 202
        except requests.RequestException:
            return False

    def uninstall(self, name: str) -> None:
        requests.delete(f"{self.bed.server_urls[0]}/api/v1/services/{name}",
                        headers=self.headers, timeout=15)


def failover_once(bed: HaTestbed, client: Client) -> float:
    """Kill the master; seconds until a write is acknowledged again."""
    wait_until(client.probe, timeout=30, what="a write acknowledged before the kill")
    old = bed.master()
    killed = time.monotonic()
    bed.kill(old)
    wait_until(client.probe, timeout=60, what="a write acknowledged after the kill",
               interval=0.05)
    window = time.monotonic() - killed
    bed.start_part(old)
    wait_until(lambda: bed.role(old) == "slave", timeout=30, what=f"{old} a replica again")
    return window


def deploy_all(bed: HaTestbed, client: Client, tag: str) -> float:
    """Install SERVICES × PER_SERVICE instances at once; seconds until all succeeded."""
    store = bed.store()
    started = time.monotonic()
    ids = []
    for i in range(SERVICES):
        response = client.install(f"{tag}-{i}", PER_SERVICE, server=i % 2)
        assert response.status_code == 202, response.text
        ids.append(response.json()["deployment"]["id"])

    def done() -> bool:
        found = [store.deployments.get(d) for d in ids]
        return all(d is not None and d["status"] == "succeeded" for d in found)

    wait_until(done, timeout=300, what="every deployment to succeed", interval=0.05)
    took = time.monotonic() - started
    for i in range(SERVICES):
        client.uninstall(f"{tag}-{i}")
    wait_until(lambda: not [n for n in store.services.names() if n.startswith(tag)],
               timeout=120, what="the uninstalls")
    return took


def run() -> dict[str, Any]:
    bed = HaTestbed(tempfile.mkdtemp(prefix="berth-bench-ha-"), lane=lane(),
                    down_after_ms=DOWN_AFTER_MS,
                    worker_env={"BERTH_DEPLOY_LOCK_TTL": "3", "BERTH_STUCK_AFTER": "4"})
    try:
        bed.start(serve=True)
        client = Client(bed)
        windows = [failover_once(bed, client) for _ in range(RUNS)]
        wait_until(lambda: bed.master() is not None, timeout=10, what="a master")
        two = deploy_all(bed, client, "two")
        bed._stop("worker-2")
        one = deploy_all(bed, client, "one")
    finally:
        bed.stop()
    total = SERVICES * PER_SERVICE
    median = statistics.median(windows)
    return {"down-after-milliseconds": DOWN_AFTER_MS,
            "failover window median s": round(median, 2),
            "failover window max s": round(max(windows), 2),
            "runs s": [round(w, 2) for w in windows], "target s": TARGET_S,
            "met": max(windows) <= TARGET_S,
            "deploy 30 instances, 2 workers s": round(two, 2),
            "deploy 30 instances, 1 worker s": round(one, 2),
            "2 workers instances/s": round(total / two, 2),
            "1 worker instances/s": round(total / one, 2),
            "speed-up": round(one / two, 2)}


if __name__ == "__main__":
    print(run())
