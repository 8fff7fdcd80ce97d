"""Routes: a container dying → its upstream gone from a real Caddy's route.

``hello`` with 3 instances routed from a host name through a real Caddy (Debian's, on
the bench lane's ports, registered as a proxy); twenty times, the oldest instance's
container is SIGKILLed and two moments are polled every 10 ms: when Berth's record of
it stops counting as healthy (failure detection: Docker ``die`` event → watcher →
``berth.reconcile_service``), and when its address is gone from the upstreams of the
route in Caddy (``GET /id/<handler>/upstreams``; the proxy sync's one ``PATCH``). Between
kills the service settles (3 healthy, all in Caddy). Target: the median of the second
minus the first ≤ 1 s.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from bench.cluster_bed import Bed, hello_spec, lane, until
from worker.docker_agent import DockerAgent
from worker.proxies import add_proxy
from worker.testbed.proxy import CaddyProcess

KILLS = 20
TARGET_S = 1.0
NAME = "routes"
HANDLER = f"berth-upstreams-bench-{NAME}-0"


def healthy_dials(bed: Bed) -> set[str]:
    return {f"{i['address']}:{i['port_list'][0]}" for i in bed.store.instances.for_service(NAME)
            if i["state"] == "running" and i["health"] == "healthy"}


def settled(bed: Bed, caddy: CaddyProcess) -> bool:
    service = bed.store.services.get(NAME)
    dials = healthy_dials(bed)
    return (service["deployment"] is None and len(dials) == 3
            and set(caddy.upstreams(HANDLER) or []) == dials)


def kill_once(bed: Bed, caddy: CaddyProcess) -> tuple[float, float]:
    """Kill the oldest instance; (seconds to failure detection, seconds to the route)."""
    until(lambda: settled(bed, caddy), 90)
    victim = bed.store.instances.for_service(NAME)[0]
    dial = f"{victim['address']}:{victim['port_list'][0]}"
    agent = bed.store.agents.get(victim["agent"])
    started = time.perf_counter()
    DockerAgent(agent["url"]).kill(victim["container"])
    detected = routed = None
    while detected is None or routed is None:
        now = time.perf_counter() - started
        if detected is None:
            record = bed.store.instances.get(victim["id"])
            if record is None or record["state"] != "running" or record["health"] != "healthy":
                detected = now
        if routed is None and dial not in (caddy.upstreams(HANDLER) or []):
            routed = now
        if now > 60:
            raise TimeoutError("the killed instance stayed in the route")
        time.sleep(0.01)
    return detected, routed


def run() -> dict[str, Any]:
    bed = Bed()
    caddy = CaddyProcess(Path(bed.folder) / "caddy", lane()).start()
    try:
        add_proxy(bed.store, "bench", kind="caddy", admin_url=caddy.admin_url,
                  listen=caddy.listen)
        package, spec = hello_spec(NAME, 3, public_host=f"{NAME}.test")
        bed.wait_deployment(bed.ops.install(NAME, spec, package=package,
                                            actor="bench")["deployment"]["id"])
        runs = [kill_once(bed, caddy) for _ in range(KILLS)]
    finally:
        caddy.stop()
        bed.close()
    detect = [d for d, _ in runs]
    route = [r for _, r in runs]
    extra = [max(0.0, r - d) for d, r in runs]
    median_extra = statistics.median(extra)
    return {"kills": KILLS, "median to route s": round(statistics.median(route), 3),
            "median to failure detection s": round(statistics.median(detect), 3),
            "median route after detection s": round(median_extra, 3),
            "max route after detection s": round(max(extra), 3),
            "runs (detect, route) s": [(round(d, 3), round(r, 3)) for d, r in runs],
            "target median after detection s": TARGET_S, "met": median_extra <= TARGET_S}


if __name__ == "__main__":
    print(run())
