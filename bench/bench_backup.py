"""Backups: a 1 GiB named volume backed up to the backup agent, against the floor of a raw
tar stream between the same two engines in the same run.

On the bench bed (lane ``BERTH_BENCH_LANE``; its backup agent is agent-3), a volume on
agent-1 is filled with ``BERTH_BENCH_BACKUP_MIB`` MiB (default 1024; 16 files of
distinct 1 MiB blocks). Then:

1. **floor** — the engine's archive of the volume, read from a helper container on
   agent-1 and put, as it streams, into a new volume on agent-3
   (:func:`bench.volume_bench.floor`: no checksum, no stop, no start);
2. **backup with a hook** — a backup of a ``hello`` instance that mounts the volume and
   declares a (no-op) backup hook, run by the bed's real worker as a deployment: the
   hook, then the stream into ``berth-backups`` on agent-3 with the files' checksum
   computed from the stream as it passes (``worker.volume_checksum``);
3. **backup stopped for the copy** — the same without a hook: stop the instance, the
   stream, start it again and wait until it is healthy.

The worker's resident memory (its process tree, ``VmRSS``) is sampled every 0.2 s
during each backup; the larger growth over the figure before it is reported.

Targets: the backup's throughput ≥ 0.8 × the floor's; the worker's RSS grows ≤ 100 MB.
"""

from __future__ import annotations

import time
from typing import Any

from bench.cluster_bed import Bed, hello_spec
from bench.volume_bench import (
    BLOCK,
    TARGET_RATIO,
    TARGET_RSS_MB,
    RssSampler,
    fill,
    floor,
    settle,
    size_mib,
    spans,
)
from worker.backup_plan import new_backup, pick_instance

NAME = "bench-backup"
VOLUME = f"{NAME}-data"
STORE = {"kind": "volume", "agent": "agent-3", "volume": "berth-backups"}


def backup(bed: Bed, pid: int, name: str, *, hook: bool
           ) -> tuple[float, float, dict[str, Any], dict[str, float]]:
    """Install ``hello`` on the volume on agent-1 (with a no-op backup hook, or none) and
    back it up through the worker; (seconds, worker RSS growth MB, the backup record,
    seconds between its steps)."""
    package, spec = hello_spec(name, 1)
    spec["volumes"] = [{"name": VOLUME, "containerPath": "/data", "readOnly": False}]
    spec["constraints"] = [["hostname", "LIKE", "agent-1"]]
    if hook:
        spec["backup"] = {"hook": ["sh", "-c", "sync"]}
    installed = bed.ops.install(name, spec, package=package, actor="bench")["deployment"]
    assert bed.wait_deployment(installed["id"])["status"] == "succeeded"
    service = bed.store.services.get(name)
    record = new_backup(service, pick_instance(bed.store.instances.for_service(name)),
                        store=STORE, actor="bench")
    sampler = RssSampler(pid)
    settle()
    started = time.perf_counter()
    deployment = bed.ops.backup(name, record, actor="bench")
    # read every 50 ms: a hundred reads a second took CPU from the backup it measures
    done = bed.wait_deployment(deployment["id"], timeout=3600, every=0.05)
    seconds = time.perf_counter() - started
    growth = sampler.stop()
    assert done["status"] == "succeeded", done["error"]
    return seconds, growth, bed.store.backups.get(record["id"]), spans(done["steps"])


def run() -> dict[str, Any]:
    mib_asked = size_mib("BERTH_BENCH_BACKUP_MIB")
    total = mib_asked * BLOCK
    bed = Bed()
    try:
        src, dst = bed.bed.agent(1), bed.bed.agent(3)
        fill_s = fill(src, VOLUME, NAME, total)
        floor_s, streamed = floor(src, VOLUME, dst, "bench-floor")
        dst.remove_volume("bench-floor")
        worker = bed.bed.pids["worker"]
        hook_s, hook_rss, hooked, hook_spans = backup(bed, worker, NAME + "-hook", hook=True)
        bed.wait_deployment(bed.ops.uninstall(NAME + "-hook", actor="bench")["id"])
        stop_s, stop_rss, stopped, stop_spans = backup(bed, worker, NAME, hook=False)
    finally:
        bed.close()
    mib = streamed / BLOCK
    assert hooked["checksum"] and hooked["checksum"] == stopped["checksum"]
    hook_ratio, stop_ratio = floor_s / hook_s, floor_s / stop_s
    rss_mb = max(hook_rss, stop_rss)
    return {"volume MiB": mib_asked, "tar stream MiB": round(mib, 1),
            "fill s": round(fill_s, 1),
            "floor: raw tar stream agent-1 → agent-3 s": round(floor_s, 2),
            "floor MiB/s": round(mib / floor_s, 1),
            "backup with a hook (hook, stream + checksum) s": round(hook_s, 2),
            "hook backup / floor throughput": round(hook_ratio, 2),
            "hook backup steps (s between them)": hook_spans,
            "backup stopped for the copy (stop, stream + checksum, start, healthy) s":
                round(stop_s, 2),
            "stopped backup / floor throughput": round(stop_ratio, 2),
            "stopped backup steps (s between them)": stop_spans,
            "backup size bytes": stopped["size"],
            "checksum": (stopped["checksum"] or "")[:16],
            "worker RSS growth MB": round(rss_mb, 1),
            "target ratio": TARGET_RATIO, "target RSS MB": TARGET_RSS_MB,
            "met (hook)": hook_ratio >= TARGET_RATIO and hook_rss <= TARGET_RSS_MB,
            "met (stopped)": stop_ratio >= TARGET_RATIO and stop_rss <= TARGET_RSS_MB}


if __name__ == "__main__":
    print(run())
