"""Backups: a 1 GiB named volume backed up to the backup agent, against the floor of a raw
tar stream between the same two engines in the same run.

On the bench bed (lane ``BERTH_BENCH_LANE``; its backup agent is agent-3), a volume on
agent-1 is filled with ``BERTH_BENCH_BACKUP_MIB`` MiB (default 1024; 16 files of
distinct 1 MiB blocks). Then, for each of the two kinds of backup below, in
``BERTH_BENCH_BACKUP_ROUNDS`` rounds (default 5), each a pair measured one right after the
other:

1. **floor** — the engine's archive of the volume, read from a helper container on
   agent-1 and put, as it streams, into a new volume on agent-3
   (:func:`bench.volume_bench.floor`: no checksum, no stop, no start);
2. the backup, then deleted as ``berth backup delete`` does, so one is kept at a time.

The two kinds:

- **backup with a hook** — a backup of a ``hello`` instance that mounts the volume and
   declares a (no-op) backup hook, run by the bed's real worker as a deployment: the
   hook, then the stream into ``berth-backups`` on agent-3 with the files' checksum
   computed from the stream as it passes (``worker.volume_checksum``);
- **backup stopped for the copy** — the same without a hook: stop the instance, the
   stream, start it again and wait until it is healthy.

The worker's resident memory (its process tree, ``VmRSS``) is sampled every 0.2 s over
all the rounds; its growth over the figure before the first is reported.

Targets: the backup's throughput ≥ 0.8 × the floor's (the median of the rounds' ratios:
on two cores shared by two engines, the worker and the bench, one pair swings by up to
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


def install(bed: Bed, name: str, *, hook: bool) -> None:
    """Install ``hello`` on the volume on agent-1, with a no-op backup hook or none."""
    package, spec = hello_spec(name, 1)
    spec["volumes"] = [{"name": VOLUME, "containerPath": "/data", "readOnly": False}]
    spec["constraints"] = [["hostname", "LIKE", "agent-1"]]
    if hook:
        spec["backup"] = {"hook": ["sh", "-c", "sync"]}
    installed = bed.ops.install(name, spec, package=package, actor="bench")["deployment"]
    assert bed.wait_deployment(installed["id"])["status"] == "succeeded"


def backup(bed: Bed, name: str) -> tuple[float, dict[str, Any], dict[str, float]]:
    """Back ``name`` up through the worker; (seconds, the backup record, seconds between
    its steps)."""
    service = bed.store.services.get(name)
    record = new_backup(service, pick_instance(bed.store.instances.for_service(name)),
                        store=STORE, actor="bench")
    settle()
    started = time.perf_counter()
    deployment = bed.ops.backup(name, record, actor="bench")
    # read every 50 ms: a hundred reads a second took CPU from the backup it measures
    done = bed.wait_deployment(deployment["id"], timeout=3600, every=0.05)
    seconds = time.perf_counter() - started
    assert done["status"] == "succeeded", done["error"]
    return seconds, bed.store.backups.get(record["id"]), spans(done["steps"])


def delete(bed: Bed, backup_id: str) -> None:
    """Delete a backup the way ``berth backup delete`` does (the next round takes another:
    the bench keeps one at a time on agent-3)."""
    bed.store.backups.update(backup_id, lambda doc: {**doc, "status": "deleting"},
                             event="backup.deleting", actor="bench")
    bed.send("berth.delete_backup", [backup_id])
    until(lambda: bed.store.backups.get(backup_id) is None, 120, 0.05)


def rounds_of(bed: Bed, name: str, *, hook: bool, rounds: int) -> list[dict[str, Any]]:
    """Install ``name``, then per round the floor agent-1 → agent-3 and a backup; each
    round's figures."""
    src, dst = bed.bed.agent(1), bed.bed.agent(3)
    install(bed, name, hook=hook)
    figures = []
    for n in range(rounds):
        floor_s, streamed = floor(src, VOLUME, dst, "bench-floor")
        dst.remove_volume("bench-floor")
        seconds, record, steps = backup(bed, name)
        delete(bed, record["id"])
        figures.append({"round": n + 1, "floor s": round(floor_s, 2),
                        "backup s": round(seconds, 2),
                        "backup / floor": round(floor_s / seconds, 2), "steps": steps,
                        "bytes streamed": streamed, "size": record["size"],
                        "checksum": record["checksum"]})
    bed.wait_deployment(bed.ops.uninstall(name, actor="bench")["id"])
    return figures


def summary(figures: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of the rounds' figures and the lowest round's ratio."""
    return {"floor s (median)": statistics.median(f["floor s"] for f in figures),
            "backup s (median)": statistics.median(f["backup s"] for f in figures),
            "backup / floor throughput (median of the rounds)":
                statistics.median(f["backup / floor"] for f in figures),
            "backup / floor throughput (lowest round)":
                min(f["backup / floor"] for f in figures)}


def run() -> dict[str, Any]:
    mib_asked = size_mib("BERTH_BENCH_BACKUP_MIB")
    rounds = max(1, int(os.environ.get("BERTH_BENCH_BACKUP_ROUNDS", "5")))
    total = mib_asked * BLOCK
    bed = Bed()
    try:
        fill_s = fill(bed.bed.agent(1), VOLUME, NAME, total)
        sampler = RssSampler(bed.bed.pids["worker"])
        hooked = rounds_of(bed, NAME + "-hook", hook=True, rounds=rounds)
        stopped = rounds_of(bed, NAME, hook=False, rounds=rounds)
        rss_mb = sampler.stop()
    finally:
        bed.close()
    checksums = {f["checksum"] for f in hooked + stopped}
    assert len(checksums) == 1 and None not in checksums, checksums
    hook, stop = summary(hooked), summary(stopped)
    hook_ratio = hook["backup / floor throughput (median of the rounds)"]
    stop_ratio = stop["backup / floor throughput (median of the rounds)"]
    flat = rss_mb <= TARGET_RSS_MB
    return {"volume MiB": mib_asked,
            "tar stream MiB": round(hooked[0]["bytes streamed"] / BLOCK, 1),
            "fill s": round(fill_s, 1),
            "backup with a hook (hook, stream + checksum): rounds": hooked,
            "backup with a hook": hook,
            "backup stopped for the copy (stop, stream + checksum, start, healthy): rounds":
                stopped,
            "backup stopped for the copy": stop,
            "backup size bytes": stopped[0]["size"],
            "checksum": (checksums.pop() or "")[:16],
            "worker RSS growth MB (over every round)": round(rss_mb, 1),
            "target ratio": TARGET_RATIO, "target RSS MB": TARGET_RSS_MB,
            "met (hook)": hook_ratio >= TARGET_RATIO and flat,
            "met (stopped)": stop_ratio >= TARGET_RATIO and flat}


if __name__ == "__main__":
    print(run())
