"""Deploy onto a Swarm: 30 ``hello`` instances, request → all answering HTTP.

Berth (``DesiredState.install(..., cluster="swarm")`` → worker → one Swarm service
create → tasks watched → instance records) against the floor: the same Swarm service
(the very kwargs Berth's mapping gives ``client.services.create``: image, env, host
network, slot-templated ports, health check, limits) created directly with docker-py,
in the same run, on the same three-node Swarm of the bench bed's engines. Both are
timed until every task answers HTTP on its port, polled the same way (every 10 ms per
port). Berth on its own agents (the same 30 instances, ``bench_deploy``'s way) is timed
in the same run for comparison. Rounds alternate; medians compared.
Target: Berth on the Swarm ≤ 1.3 × the floor.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from bench.cluster_bed import Bed, answers, hello_spec, until
from worker.swarm_spec import SwarmPlan, service_kwargs, swarm_name
from worker.testbed.swarm import CLUSTER, SwarmBed, swarm_ports

INSTANCES = 30
ROUNDS = 3
TARGET = 1.3


def wait_all_answer(targets: list[tuple[str, int]]) -> None:
    pending = set(targets)
    while pending:
        pending = {t for t in pending if not answers(*t)}
        if pending:
            time.sleep(0.01)


def floor_once(swarm: SwarmBed, round_no: int, spec: dict[str, Any], lane: int) -> float:
    """``client.services.create`` with Berth's own kwargs, wait for every port; seconds.

    The floor's port blocks are the last two of the lane's Swarm range (Berth takes the
    first free ones).
    """
    high = swarm_ports(lane)[1] + 1
    blocks = ((high - 200, high - 100),)
    name = f"floor{round_no}"
    plan = SwarmPlan(service=name, generation=1, replicas=INSTANCES, cluster="floor",
                     blocks=blocks)
    kwargs = service_kwargs(spec, plan)
    targets = [("127.0.0.1", blocks[0][1] + slot) for slot in range(1, INSTANCES + 1)]
    started = time.perf_counter()
    service = swarm.manager.services.create(**kwargs)
    wait_all_answer(targets)
    seconds = time.perf_counter() - started
    service.remove()
    until(lambda: not swarm.manager.api.tasks(filters={"name": swarm_name(name)})
          or not swarm.manager.services.list(filters={"name": swarm_name(name)}), 60)
    until(lambda: not any(answers(*t) for t in targets), 60)
    return seconds


def berth_once(bed: Bed, name: str, cluster: str | None) -> float:
    """Install through Berth (onto ``cluster``), wait until every instance answers."""
    package, spec = hello_spec(name, INSTANCES)
    started = time.perf_counter()
    deployment = bed.ops.install(name, spec, package=package, actor="bench",
                                 cluster=cluster)["deployment"]

    def all_answer() -> bool:
        found = [i for i in bed.store.instances.for_service(name) if i.get("port_list")]
        return len(found) == INSTANCES and all(answers(i["address"], i["port_list"][0])
                                               for i in found)

    until(all_answer, 180)
    seconds = time.perf_counter() - started
    bed.wait_deployment(deployment["id"], timeout=180)
    bed.wait_deployment(bed.ops.uninstall(name, actor="bench")["id"], timeout=180)
    return seconds


def run() -> dict[str, Any]:
    bed = Bed()
    swarm = SwarmBed(bed.bed)
    try:
        swarm.start()
        _, spec = hello_spec("floor", INSTANCES)
        floors, swarms, agents = [], [], []
        for n in range(ROUNDS):
            floors.append(floor_once(swarm, n, spec, bed.bed.lane))
            swarms.append(berth_once(bed, f"benchsw{n}", CLUSTER))
            agents.append(berth_once(bed, f"benchag{n}", None))
    finally:
        swarm.stop()
        bed.close()
    floor, on_swarm = statistics.median(floors), statistics.median(swarms)
    return {"instances": INSTANCES, "nodes": 3, "rounds": ROUNDS,
            "floor s (median)": round(floor, 2),
            "berth on swarm s (median)": round(on_swarm, 2),
            "berth on its agents s (median)": round(statistics.median(agents), 2),
            "floor runs": [round(f, 2) for f in floors],
            "swarm runs": [round(b, 2) for b in swarms],
            "agents runs": [round(b, 2) for b in agents],
            "ratio": round(on_swarm / floor, 2), "target ratio": TARGET,
            "met": on_swarm / floor <= TARGET}


if __name__ == "__main__":
    print(run())
