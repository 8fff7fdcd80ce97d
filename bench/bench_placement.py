"""Placement at scale (pure): 100,000 instances onto 10,000 simulated agents.

100 services of 1,000 instances each, placed one after the other onto the same
10,000 agents (10 zones, 200 racks, 16 cpus, 64 GiB and 300 host ports each), every
service with constraints (MAX_PER hostname, GROUP_BY zone, UNLIKE rack, LIKE zone,
UNIQUE hostname). Between services the caller's work is included: the agents the
service used get new views with what it reserved. Target: ≤ 0.1 ms per instance.
A second figure runs 1,000 services of 100 instances (more calls, each paying the
per-call filter over all agents).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import replace

from catalog.placement import AgentView, PlacementRequest, place

AGENTS = 10_000
INSTANCES = 100_000
TARGET_MS = 0.1
CONSTRAINTS = (
    (("hostname", "MAX_PER", "5"),),
    (("zone", "GROUP_BY"),),
    (("rack", "UNLIKE", "r1[0-9]"), ("hostname", "MAX_PER", "3")),
    (("zone", "LIKE", "z[0-7]"),),
    (("hostname", "UNIQUE"),),
)


def agents() -> list[AgentView]:
    return [AgentView(id=f"a{i}", attributes={"hostname": f"h{i}", "zone": f"z{i % 10}",
                                              "rack": f"r{i % 200}"},
                      cpus_free=16.0, mem_free=65536,
                      ports_free=tuple(range(20000, 20300)), port_range=(20000, 20299))
            for i in range(AGENTS)]


def apply(views: dict[str, AgentView], placements, request: PlacementRequest) -> None:
    """What the caller does after a placement: new views of the agents used."""
    used: dict[str, list[int]] = defaultdict(list)
    for placement in placements:
        used[placement.agent_id].extend(placement.ports)
    for agent_id, ports in used.items():
        view = views[agent_id]
        count = len(ports) // max(1, request.ports) if request.ports else 1
        free = view.ports_free
        if tuple(sorted(ports)) == free[:len(ports)]:  # the lowest ports, as place assigns
            free = free[len(ports):]
        else:
            taken = set(ports)
            free = tuple(p for p in free if p not in taken)
        views[agent_id] = replace(view, cpus_free=view.cpus_free - request.cpus * count,
                                  mem_free=view.mem_free - request.mem * count,
                                  ports_free=free)


def scenario(services: int) -> tuple[float, int]:
    """Place ``INSTANCES`` over ``services`` services; (seconds, instances placed)."""
    views = {v.id: v for v in agents()}
    per_service = INSTANCES // services
    placed = 0
    started = time.perf_counter()
    for n in range(services):
        request = PlacementRequest(count=per_service, cpus=0.1, mem=128, ports=1,
                                   constraints=CONSTRAINTS[n % len(CONSTRAINTS)])
        result = place(request, list(views.values()))
        apply(views, result, request)
        placed += len(result)
    return time.perf_counter() - started, placed


def run() -> dict[str, object]:
    seconds, placed = scenario(100)
    per_instance = seconds * 1000 / placed
    small_seconds, small_placed = scenario(1000)
    return {"instances": placed, "agents": AGENTS, "services": 100,
            "seconds": round(seconds, 2), "ms per instance": round(per_instance, 4),
            "target ms per instance": TARGET_MS, "met": per_instance <= TARGET_MS,
            "1000 services x 100: ms per instance": round(small_seconds * 1000 / small_placed, 4)}


if __name__ == "__main__":
    print(run())
