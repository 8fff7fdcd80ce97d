"""Moving data: a 1 GiB named volume moved between two engines, against the floor of a raw
tar stream between the same two engines in the same run.

On the bench bed (lane ``BERTH_BENCH_LANE``), a volume on agent-1 is filled with
``BERTH_BENCH_MOVE_MIB`` MiB (default 1024; 16 files of random-looking blocks) and a
``hello`` instance that mounts it is installed there. Then, in
``BERTH_BENCH_MOVE_ROUNDS`` rounds (default 5), each from the agent the instance is on to
the other of agent-1 and agent-2 (there and back):

1. **floor** — the engine's archive of the volume read from a helper container on the
   instance's agent and put, as it streams, into a new volume on the other
   (:func:`bench.volume_bench.floor`: no checksum, no stop, no start);
2. **copy** — :func:`worker.volume_stream.copy_volume` of the same volume, in this
   process: the stream, its checksum computed as it passes, the source agent's listing
   meanwhile, and the listing of what landed on the other agent;
3. **move** — ``berth move`` of the instance to the other agent, run by the bed's real
   worker: stop, copy with its checks, start there, health check; then the left-over
   volume it leaves is pruned as ``berth volumes prune`` does, so the next round can move
   it back.

The worker's resident memory (its process and its pool children, ``VmRSS``) is sampled
every 0.2 s over all the rounds; its growth over the figure before the first is reported.

Targets: the move's throughput ≥ 0.8 × the floor's, as the median of the rounds' ratios
(floor and move measured one right after the other, between the same two engines: on
two cores shared by two engines, the worker and the bench, one pair swings by up to
±15 %; every round is printed, and the lowest too); the worker's RSS grows ≤ 100 MB.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

from bench.cluster_bed import Bed, hello_spec, until
from bench.volume_bench import (
    BLOCK,
    TARGET_RATIO,
    TARGET_RSS_MB,
    TOOLBOX,
    RssSampler,
    fill,
    floor,
    settle,
    size_mib,
    spans,
)
from worker import agents
from worker.errors import AgentError
from worker.records import Instance
from worker.volume_stream import copy_volume
from worker.volumes import get_prune, request_prune

NAME = "bench-move"
VOLUME = f"{NAME}-data"


def install(bed: Bed) -> Instance:
    """Install ``hello`` on the volume on agent-1 (the only agent open to it then);
    agent-2 is opened again after, agent-3 stays drained."""
    package, spec = hello_spec(NAME, 1)
    spec["volumes"] = [{"name": VOLUME, "containerPath": "/data", "readOnly": False}]
    for agent_id in ("agent-2", "agent-3"):   # the instance starts on agent-1, by its volume
        _drain(bed, agent_id, True)
    bed.wait_deployment(bed.ops.install(NAME, spec, package=package,
                                        actor="bench")["deployment"]["id"])
    _drain(bed, "agent-2", False)
    [instance] = bed.store.instances.for_service(NAME)
    assert instance["agent"] == "agent-1", instance["agent"]
    return instance


def move(bed: Bed, instance: Instance, target: str) -> tuple[float, str, dict[str, float]]:
    """Move the instance to ``target`` through the worker; (seconds of the move
    deployment, the copy step, seconds between its steps)."""
    settle()
    started = time.perf_counter()
    deployment = bed.ops.move(NAME, instance["id"], target, actor="bench")
    # read every 50 ms: a hundred reads a second took CPU from the move it measures
    done = bed.wait_deployment(deployment["id"], timeout=3600, every=0.05)
    seconds = time.perf_counter() - started
    assert done["status"] == "succeeded", done["error"]
    [copy] = [s["message"] for s in done["steps"] if s["name"] == "copy"]
    return seconds, copy, spans(done["steps"])


def prune(bed: Bed, agent_id: str) -> None:
    """Remove the move's left-over volume on ``agent_id`` the way ``berth volumes prune``
    does (the next round moves the instance back there)."""
    record = request_prune(bed.store, service=NAME, agent=agent_id, actor="bench")
    bed.send("berth.prune_volumes", [record["id"]])
    done = until(lambda: (lambda r: r if r and r["status"] == "done" else None)(
        get_prune(bed.store, record["id"])), 120, 0.05)
    assert f"{agent_id}/{VOLUME}" in done["removed"], done


def _clean(bed: Bed) -> None:
    """Remove the bench's volumes from every agent (a bench bed's engines keep their data)."""
    for n in range(1, len(bed.bed.agents) + 1):
        for volume in (VOLUME, "bench-floor", "bench-copy"):
            try:
                bed.bed.agent(n).remove_volume(volume)
            except AgentError as error:
                print(f"could not remove {volume}: {error.message}")


def _drain(bed: Bed, agent_id: str, drain: bool) -> None:
    (agents.drain if drain else agents.activate)(bed.store, agent_id, actor="bench")


def run() -> dict[str, Any]:
    mib_asked = size_mib("BERTH_BENCH_MOVE_MIB")
    rounds = max(1, int(os.environ.get("BERTH_BENCH_MOVE_ROUNDS", "5")))
    total = mib_asked * BLOCK
    bed = Bed()
    figures: list[dict[str, Any]] = []
    try:
        agent = {"agent-1": bed.bed.agent(1), "agent-2": bed.bed.agent(2)}
        _clean(bed)
        fill_s = fill(agent["agent-1"], VOLUME, NAME, total)
        instance = install(bed)
        sampler = RssSampler(bed.bed.pids["worker"])
        for n in range(rounds):
            here = instance["agent"]
            there = "agent-2" if here == "agent-1" else "agent-1"
            src, dst = agent[here], agent[there]
            floor_s, streamed = floor(src, VOLUME, dst, "bench-floor")
            dst.remove_volume("bench-floor")
            settle()
            started = time.perf_counter()
            result = copy_volume(src, VOLUME, dst, "bench-copy", image=TOOLBOX)
            copy_s = time.perf_counter() - started
            dst.remove_volume("bench-copy")
            move_s, step, move_spans = move(bed, instance, there)
            [instance] = bed.store.instances.for_service(NAME)
            assert instance["agent"] == there, instance["agent"]
            prune(bed, here)
            figures.append({"round": n + 1, "from": here, "to": there,
                            "floor s": round(floor_s, 2), "copy_volume s": round(copy_s, 2),
                            "move s": round(move_s, 2),
                            "copy_volume / floor": round(floor_s / copy_s, 2),
                            "move / floor": round(floor_s / move_s, 2),
                            "steps": move_spans, "copy step": step,
                            "checksum": result.checksum[:16]})
        rss_mb = sampler.stop()
    finally:
        try:
            bed.wait_deployment(bed.ops.uninstall(NAME, actor="bench")["id"])
        except Exception as error:  # noqa: BLE001 - the bed stops anyway
            print(f"uninstall failed: {error}")
        _clean(bed)
        bed.close()
    mib = streamed / BLOCK
    checksums = {f["checksum"] for f in figures}
    assert len(checksums) == 1, f"the volume changed between rounds: {checksums}"
    ratio = statistics.median(f["move / floor"] for f in figures)
    floor_s = statistics.median(f["floor s"] for f in figures)
    move_s = statistics.median(f["move s"] for f in figures)
    return {"volume MiB": mib_asked, "tar stream MiB": round(mib, 1),
            "fill s": round(fill_s, 1), "rounds": figures,
            "floor: raw tar stream s (median)": round(floor_s, 2),
            "floor MiB/s (median)": round(mib / floor_s, 1),
            "copy_volume / floor throughput (median)": statistics.median(
                f["copy_volume / floor"] for f in figures),
            "move deployment (stop, copy, start, healthy) s (median)": round(move_s, 2),
            "move MiB/s (median)": round(mib / move_s, 1),
            "move / floor throughput (median of the rounds)": ratio,
            "move / floor throughput (lowest round)": min(f["move / floor"] for f in figures),
            "checksum": checksums.pop(),
            "worker RSS growth MB (over every round)": round(rss_mb, 1),
            "target ratio": TARGET_RATIO, "target RSS MB": TARGET_RSS_MB,
            "met": ratio >= TARGET_RATIO and rss_mb <= TARGET_RSS_MB}


if __name__ == "__main__":
    print(run())
