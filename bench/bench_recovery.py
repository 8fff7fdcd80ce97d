"""Recovery: an instance's container killed → a replacement answering HTTP.

``hello`` with 3 instances over the three agents; ten times, the oldest instance's
container is SIGKILLed and the time until a new instance answers HTTP is measured
(polled every 10 ms). Between kills the service is left to settle. The path measured:
Docker ``die`` event → watcher → ``berth.reconcile_service`` → placement → container →
health check → HTTP. Target: median ≤ 2 s.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from bench.cluster_bed import Bed, answers, hello_spec, until
from worker.docker_agent import DockerAgent

KILLS = 10
TARGET_S = 2.0
NAME = "recovery"


def settled(bed: Bed) -> bool:
    service = bed.store.services.get(NAME)
    found = bed.store.instances.for_service(NAME)
    return (service["deployment"] is None and len(found) == 3
            and all(i["state"] == "running" and i["health"] == "healthy" for i in found))


def kill_once(bed: Bed) -> float:
    """Kill the oldest instance; seconds until a new one answers."""
    until(lambda: settled(bed), 60)
    before = bed.store.instances.for_service(NAME)
    victim = before[0]
    agent = bed.store.agents.get(victim["agent"])
    known = {i["id"] for i in before}
    started = time.perf_counter()
    DockerAgent(agent["url"]).kill(victim["container"])

    def replaced() -> bool:
        fresh = [i for i in bed.store.instances.for_service(NAME)
                 if i["id"] not in known and i.get("container_id")]
        return any(answers(i["address"], i["port_list"][0]) for i in fresh)

    until(replaced, 60)
    return time.perf_counter() - started


def run() -> dict[str, Any]:
    bed = Bed()
    try:
        package, spec = hello_spec(NAME, 3)
        bed.wait_deployment(bed.ops.install(NAME, spec, package=package,
                                            actor="bench")["deployment"]["id"])
        times = [kill_once(bed) for _ in range(KILLS)]
    finally:
        bed.close()
    median = statistics.median(times)
    return {"kills": KILLS, "median s": round(median, 2), "max s": round(max(times), 2),
            "runs": [round(t, 2) for t in times], "target median s": TARGET_S,
            "met": median <= TARGET_S}


if __name__ == "__main__":
    print(run())
