"""What the volume benchmarks (``bench_move``, ``bench_backup``) share: a 1 GiB volume
made of distinct blocks, the floor of a raw tar stream between two engines, and the
worker's resident memory sampled while it works.

The floor is the engine's own archive of the volume, read from a helper container on
one agent and put, as it streams, into a new volume on another (docker-py's
``get_archive`` → ``put_archive`` in the 1 MiB chunks Berth's own stream hands on, read
ahead of the upload as Berth reads them: no checksum, no stop, no start). A benchmark measures
it in the same run as what it compares with it, on the same engines, so the ratio holds
on a busy machine where the absolute figures do not.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from worker.containers import VOLUME_LABEL
from worker.docker_agent import DockerAgent, coalesced
from worker.testbed.processes import tree_pids
from worker.volume_stream import READ_AHEAD, read_ahead, write_volume_archive

FILES = 16
BLOCK = 1 << 20
TARGET_RATIO = 0.8
TARGET_RSS_MB = 100.0
TOOLBOX = "berth/toolbox:1.0.0"


def size_mib(variable: str) -> int:
    """The volume's size in MiB, from the environment ``variable`` (default 1024)."""
    return int(os.environ.get(variable, "1024"))


def tar_stream(total: int) -> Iterator[bytes]:
    """A tar of :data:`FILES` files making ``total`` bytes, generated block by block."""
    per_file = max(1, total // FILES // BLOCK) * BLOCK
    seed = os.urandom(BLOCK)
    for n in range(FILES):
        info = tarfile.TarInfo(f"./file-{n:02d}.bin")
        info.size, info.mode = per_file, 0o644
        yield info.tobuf(format=tarfile.PAX_FORMAT)
        for block in range(per_file // BLOCK):
            # a different 1 MiB per block: nothing below can shortcut repeated data
            yield hashlib.sha256(f"{n}:{block}".encode()).digest() * 2 + seed[64:]
        yield b"\0" * ((-per_file) % 512)
    yield b"\0" * 1024


def fill(agent: DockerAgent, volume: str, service: str, total: int) -> float:
    """Write ``total`` bytes of files into ``volume`` (of ``service``); seconds taken."""
    started = time.perf_counter()
    write_volume_archive(agent, volume, tar_stream(total),
                         labels={"berth.service": service, VOLUME_LABEL: volume})
    return time.perf_counter() - started


def settle() -> None:
    """Write back what earlier steps left in the page cache (``sync``), so that no
    measured step pays for the writes of the one before it: a 1 GiB copy leaves 1 GiB
    to write back, and the step after it ran up to 0.8 s slower for it."""
    os.sync()


def floor(src: DockerAgent, volume: str, dst: DockerAgent, target: str) -> tuple[float, int]:
    """Seconds and bytes of a raw archive stream from ``volume`` on src to ``target``
    on dst (which is created, and left for the caller to remove)."""
    api_src, api_dst = src.api, dst.api
    dst.ensure_volume(target, {"berth.bench": "1"})
    reader = api_src.create_container(TOOLBOX, host_config=api_src.create_host_config(
        binds={volume: {"bind": "/v", "mode": "ro"}}, network_mode="none"))["Id"]
    writer = api_dst.create_container(TOOLBOX, host_config=api_dst.create_host_config(
        binds={target: {"bind": "/v", "mode": "rw"}}, network_mode="none"))["Id"]
    counted = [0]

    def counting(chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            counted[0] += len(chunk)
            yield chunk

    try:
        settle()
        started = time.perf_counter()
        stream, _ = api_src.get_archive(reader, "/v/.", chunk_size=BLOCK)
        api_dst.put_archive(writer, "/v", counting(read_ahead(coalesced(stream, BLOCK),
                                                              READ_AHEAD)))
        return time.perf_counter() - started, counted[0]
    finally:
        api_src.remove_container(reader, force=True)
        api_dst.remove_container(writer, force=True)


def rss_kb(pid: int) -> int:
    """VmRSS of ``pid`` and its descendants, in KiB (0 for a process gone)."""
    total = 0
    for p in tree_pids(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


class RssSampler:
    """Samples a process tree's RSS every 0.2 s in a thread; ``stop()`` gives the growth
    in MB of its peak over the figure when sampling began."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self.baseline = rss_kb(pid)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, rss_kb(self.pid))

    def stop(self) -> float:
        """Stop sampling; the growth in MB over the baseline."""
        self._stop.set()
        self._thread.join()
        return max(0, self.peak - self.baseline) / 1024


def spans(steps: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds between a deployment's consecutive steps, ``"stop→place": 0.4``."""
    return {f"{a['name']}→{b['name']}": round(b["at"] - a["at"], 2)
            for a, b in zip(steps, steps[1:], strict=False)}
