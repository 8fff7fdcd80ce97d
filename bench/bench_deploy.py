"""Deploy throughput: 30 ``hello`` instances over three agents, request → all answering.

Berth (``DesiredState.install`` → worker → placement → containers → health) against the
floor: the same 30 containers (same image, command, limits, host network and ports)
created and started directly with the Docker SDK, one thread per agent, in the same
run. Both are timed until every instance answers HTTP, polled the same way (every
10 ms per instance). Three rounds each, alternating; medians compared.
Target: Berth ≤ 1.3 × the floor.
"""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

import docker

from bench.cluster_bed import Bed, answers, hello_spec, until
from worker.containers import container_config

INSTANCES = 30
ROUNDS = 3
TARGET = 1.3


def wait_all_answer(targets: list[tuple[str, int]]) -> None:
    pending = set(targets)
    while pending:
        pending = {t for t in pending if not answers(*t)}
        if pending:
            time.sleep(0.01)


def floor_once(bed: Bed, spec: dict[str, Any]) -> float:
    """Create and start the containers directly, one thread per agent; seconds."""
    agents = bed.store.agents.list()
    per_agent = INSTANCES // len(agents)
    plan = [(agent, agent["port_range"][0] + n) for agent in agents for n in range(per_agent)]
    clients = {a["id"]: docker.APIClient(base_url=a["url"], version="auto") for a in agents}

    def start_on(agent: dict[str, Any]) -> None:
        api = clients[agent["id"]]
        for _, port in [p for p in plan if p[0]["id"] == agent["id"]]:
            config = container_config(f"floor-{agent['id']}-{port}", spec,
                                      labels={"bench": "floor"}, env={}, ports=[port],
                                      address=agent["address"])
            host = api.create_host_config(**config["host_config"])
            created = api.create_container(host_config=host, **config["container"])
            api.start(created["Id"])

    started = time.perf_counter()
    threads = [threading.Thread(target=start_on, args=(a,)) for a in agents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_all_answer([(a["address"], port) for a, port in plan])
    seconds = time.perf_counter() - started
    for api in clients.values():
        for container in api.containers(all=True, filters={"label": "bench=floor"}):
            api.remove_container(container["Id"], force=True)
        api.close()
    return seconds


def berth_once(bed: Bed, round_no: int) -> float:
    """Install through Berth and wait until every instance answers HTTP; seconds."""
    name = f"bench{round_no}"
    package, spec = hello_spec(name, INSTANCES)
    started = time.perf_counter()
    deployment = bed.ops.install(name, spec, package=package, actor="bench")["deployment"]

    def all_answer() -> bool:
        found = [i for i in bed.store.instances.for_service(name) if i.get("container_id")]
        return len(found) == INSTANCES and all(answers(i["address"], i["port_list"][0])
                                               for i in found)

    until(all_answer, 120)
    seconds = time.perf_counter() - started
    bed.wait_deployment(deployment["id"])
    bed.wait_deployment(bed.ops.uninstall(name, actor="bench")["id"])
    return seconds


def run() -> dict[str, Any]:
    bed = Bed()
    try:
        _, spec = hello_spec("floor", INSTANCES)
        floors, berths = [], []
        for n in range(ROUNDS):
            floors.append(floor_once(bed, spec))
            berths.append(berth_once(bed, n))
    finally:
        bed.close()
    floor, berth = statistics.median(floors), statistics.median(berths)
    return {"instances": INSTANCES, "agents": 3, "rounds": ROUNDS,
            "floor s (median)": round(floor, 2), "berth s (median)": round(berth, 2),
            "floor runs": [round(f, 2) for f in floors],
            "berth runs": [round(b, 2) for b in berths],
            "ratio": round(berth / floor, 2), "target ratio": TARGET,
            "met": berth / floor <= TARGET}


if __name__ == "__main__":
    print(run())
