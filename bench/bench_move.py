"""Moving data: a 1 GiB named volume moved between two engines, against the floor of a raw
tar stream between the same two engines in the same run.

On the bench bed (lane ``BERTH_BENCH_LANE``), a volume on agent-1 is filled with
``BERTH_BENCH_MOVE_MIB`` MiB (default 1024; 16 files of random-looking blocks). Then:

1. **floor** — the engine's archive of the volume read from a helper container on
   agent-1 and put, as it streams, into a new volume on agent-2
   (:func:`bench.volume_bench.floor`: no checksum, no stop, no start); measured before
   the move and again, back, after it — the faster of the two counts;
2. **copy** — :func:`worker.volume_stream.copy_volume` of the same volume, in this
   process: the stream, its checksum computed as it passes, the source agent's checksum
   meanwhile, and the listing of what landed on agent-2;
3. **move** — ``berth move`` of a ``hello`` instance that mounts the volume, run by the
   bed's real worker: stop, copy with its checks, start on agent-2, health check. The
   worker's resident memory (its process and its pool children, ``VmRSS``) is sampled
   every 0.2 s; its growth over the figure before the move is reported.

Targets: the move's throughput ≥ 0.8 × the floor's; the worker's RSS grows ≤ 100 MB.
"""

from __future__ import annotations

import time
from typing import Any

from bench.cluster_bed import Bed, hello_spec
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
from worker.volume_stream import copy_volume

NAME = "bench-move"
VOLUME = f"{NAME}-data"


def move(bed: Bed, pid: int) -> tuple[float, float, str, dict[str, float]]:
    """Install ``hello`` on the volume on agent-1 and move it to agent-2 through the
    worker; (seconds of the move deployment, worker RSS growth MB, the copy step,
    seconds between its steps)."""
    package, spec = hello_spec(NAME, 1)
    spec["volumes"] = [{"name": VOLUME, "containerPath": "/data", "readOnly": False}]
    for agent_id in ("agent-2", "agent-3"):   # the instance starts on agent-1, by its volume
        _drain(bed, agent_id, True)
    bed.wait_deployment(bed.ops.install(NAME, spec, package=package,
                                        actor="bench")["deployment"]["id"])
    _drain(bed, "agent-2", False)
    [instance] = bed.store.instances.for_service(NAME)
    assert instance["agent"] == "agent-1", instance["agent"]
    sampler = RssSampler(pid)
    settle()
    started = time.perf_counter()
    deployment = bed.ops.move(NAME, instance["id"], "agent-2", actor="bench")
    # read every 50 ms: a hundred reads a second took CPU from the move it measures
    done = bed.wait_deployment(deployment["id"], timeout=3600, every=0.05)
    seconds = time.perf_counter() - started
    growth = sampler.stop()
    assert done["status"] == "succeeded", done["error"]
    [copy] = [s["message"] for s in done["steps"] if s["name"] == "copy"]
    return seconds, growth, copy, spans(done["steps"])


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
    total = mib_asked * BLOCK
    bed = Bed()
    try:
        src, dst = bed.bed.agent(1), bed.bed.agent(2)
        _clean(bed)
        fill_s = fill(src, VOLUME, NAME, total)
        floor_s, streamed = floor(src, VOLUME, dst, "bench-floor")
        dst.remove_volume("bench-floor")
        settle()
        started = time.perf_counter()
        result = copy_volume(src, VOLUME, dst, "bench-copy", image=TOOLBOX)
        copy_s = time.perf_counter() - started
        dst.remove_volume("bench-copy")
        move_s, rss_mb, step, move_spans = move(bed, bed.bed.pids["worker"])
        after_s, _ = floor(dst, VOLUME, src, "bench-floor")   # the same stream, back, after
        src.remove_volume("bench-floor")
        floor_s = min(floor_s, after_s)
    finally:
        try:
            bed.wait_deployment(bed.ops.uninstall(NAME, actor="bench")["id"])
        except Exception as error:  # noqa: BLE001 - the bed stops anyway
            print(f"uninstall failed: {error}")
        _clean(bed)
        bed.close()
    mib = streamed / BLOCK
    ratio = floor_s / move_s
    return {"volume MiB": mib_asked, "tar stream MiB": round(mib, 1),
            "fill s": round(fill_s, 1),
            "floor: raw tar stream s": round(floor_s, 2),
            "floor MiB/s": round(mib / floor_s, 1),
            "copy_volume (stream + checksums) s": round(copy_s, 2),
            "copy_volume / floor throughput": round(floor_s / copy_s, 2),
            "move deployment (stop, copy, start, healthy) s": round(move_s, 2),
            "move MiB/s": round(mib / move_s, 1),
            "move / floor throughput": round(ratio, 2),
            "move steps (s between them)": move_spans,
            "copy step": step, "checksum": result.checksum[:16],
            "worker RSS growth MB": round(rss_mb, 1),
            "target ratio": TARGET_RATIO, "target RSS MB": TARGET_RSS_MB,
            "met": ratio >= TARGET_RATIO and rss_mb <= TARGET_RSS_MB}


if __name__ == "__main__":
    print(run())
