"""Build Berth's small local images (no registry needed) and spread them over agents.

An image folder ``universe/images/<name>/<tag>/`` holds ``image.json`` and an optional
``rootfs/`` overlay::

    {"repository": "berth/hello", "tag": "1.0.0",
     "applets": ["sh", "httpd", "echo"],          # busybox applets to link in /bin
     "cmd": ["/bin/start"], "env": ["PATH=/bin"],  # optional: "entrypoint", "workdir",
     "labels": {"k": "v"},                         #           "labels", "binaries"
     "binaries": ["/usr/bin/redis-server"]}

The root file system is Debian's static busybox (``/bin/busybox``, package
``busybox-static``) plus the applet links, plus each host program named in
``binaries`` (kept at its own path, symbolic links resolved) with the shared libraries
``ldd`` names and the dynamic loader, with ``rootfs/`` copied over it. It is tarred
in memory with fixed owners and times and ``docker import``-ed through the SDK with
``CMD``/``ENV``/… changes. A digest of every input is stored as the image label
``berth.image.digest``, so an unchanged image is never rebuilt or reloaded, and a
changed one is. The built image is saved to ``<tarball_dir>/<tarball_name(ref)>`` and
loaded on the other agents (same image id everywhere).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from worker.docker_agent import DockerAgent, tarball_name
from worker.errors import InvalidRequest

__all__ = ["ImageSource", "load_image_source", "find_image_sources", "build_rootfs",
           "build_image", "spread_image", "build_images", "shared_libraries", "BUSYBOX",
           "DIGEST_LABEL"]

BUSYBOX = Path("/bin/busybox")
DIGEST_LABEL = "berth.image.digest"
_BASE_DIRS = {"bin": 0o755, "etc": 0o755, "tmp": 0o1777, "proc": 0o755, "sys": 0o755,
              "dev": 0o755, "var": 0o755}


@dataclass(frozen=True)
class ImageSource:
    """One image folder, parsed."""

    path: Path
    repository: str
    tag: str
    applets: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    workdir: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    binaries: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}"

    def changes(self, digest: str) -> list[str]:
        """Dockerfile instructions applied by ``docker import``."""
        out = [f"ENV {item}" for item in self.env]
        if self.cmd:
            out.append(f"CMD {json.dumps(list(self.cmd))}")
        if self.entrypoint:
            out.append(f"ENTRYPOINT {json.dumps(list(self.entrypoint))}")
        if self.workdir:
            out.append(f"WORKDIR {self.workdir}")
        labels = {**self.labels, DIGEST_LABEL: digest}
        out.append("LABEL " + " ".join(f"{k}={json.dumps(v)}" for k, v in labels.items()))
        return out


def _strings(raw: Any, where: str, problems: list[dict[str, str]]) -> tuple[str, ...]:
    """A list of strings, or a problem recorded at ``where``."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        problems.append({"path": where, "message": "must be a list of strings"})
        return ()
    return tuple(raw)


def load_image_source(path: str | Path) -> ImageSource:
    """Parse ``<path>/image.json``.

    :raises InvalidRequest: with every problem (file and JSON path) at once.
    """
    folder = Path(path)
    file = folder / "image.json"
    try:
        raw = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidRequest(f"{file}: cannot read image definition",
                             details=[{"path": str(file), "message": str(exc)}]) from exc
    if not isinstance(raw, dict):
        raise InvalidRequest(f"{file}: image definition must be an object",
                             details=[{"path": f"{file}#", "message": "not an object"}])
    problems: list[dict[str, str]] = []
    for key in ("repository", "tag"):
        if not isinstance(raw.get(key), str) or not raw.get(key):
            problems.append({"path": f"{file}#/{key}", "message": "required string"})
    lists = {k: _strings(raw.get(k), f"{file}#/{k}", problems)
             for k in ("applets", "cmd", "entrypoint", "env", "binaries")}
    for binary in lists["binaries"]:
        if not binary.startswith("/") or ".." in binary.split("/"):
            problems.append({"path": f"{file}#/binaries",
                             "message": f"not an absolute path: {binary!r}"})
    for applet in lists["applets"]:
        if "/" in applet or applet in ("", ".", ".."):
            problems.append({"path": f"{file}#/applets", "message": f"bad applet {applet!r}"})
    labels = raw.get("labels") or {}
    if not isinstance(labels, dict):
        problems.append({"path": f"{file}#/labels", "message": "must be an object"})
    if problems:
        raise InvalidRequest(f"{file}: invalid image definition", details=problems)
    return ImageSource(path=folder, repository=raw["repository"], tag=raw["tag"],
                       workdir=str(raw.get("workdir") or ""),
                       labels={str(k): str(v) for k, v in labels.items()}, **lists)


def find_image_sources(root: str | Path) -> list[ImageSource]:
    """Every ``<root>/<name>/<tag>/image.json`` folder, parsed, in a stable order."""
    return [load_image_source(p.parent) for p in sorted(Path(root).glob("*/*/image.json"))]


Entry = tuple[bytes, int, bytes | None, str]   # (tar type, mode, data, link target)


def _base_entries(source: ImageSource, busybox: Path) -> dict[str, Entry]:
    """Base folders, busybox and its applet links."""
    entries: dict[str, Entry] = {
        name: (tarfile.DIRTYPE, mode, None, "") for name, mode in _BASE_DIRS.items()}
    entries["bin/busybox"] = (tarfile.REGTYPE, 0o755, busybox.read_bytes(), "")
    for applet in source.applets:
        entries[f"bin/{applet}"] = (tarfile.SYMTYPE, 0o777, None, "busybox")
    return entries


_LDD_LINE = re.compile(r"\s*(?:\S+\s+=>\s+)?(/\S+)\s+\(0x[0-9a-f]+\)\s*")


def shared_libraries(binary: str) -> list[str]:
    """The absolute paths ``ldd`` names for ``binary`` (the loader included).

    :raises InvalidRequest: the program is missing, or a library is not found.
    """
    if not Path(binary).is_file():
        raise InvalidRequest(f"{binary}: program not found on this host",
                             details=[{"path": binary, "message": "install the Debian "
                                       "package that ships it (see the Makefile)"}])
    result = subprocess.run(["ldd", binary], capture_output=True, text=True,  # noqa: S607
                            timeout=30, check=False, env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"})
    missing = [line.strip() for line in result.stdout.splitlines() if "not found" in line]
    if missing:
        raise InvalidRequest(f"{binary}: shared libraries not found",
                             details=[{"path": binary, "message": m} for m in missing])
    if result.returncode != 0:   # a static program: "not a dynamic executable"
        return []
    return [m.group(1) for line in result.stdout.splitlines()
            if (m := _LDD_LINE.fullmatch(line))]


def _parents(name: str) -> list[str]:
    """``a/b/c`` -> ``["a", "a/b"]``."""
    parts = name.split("/")[:-1]
    return ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _binary_entries(binaries: Sequence[str]) -> dict[str, Entry]:
    """Host programs at their own paths, their libraries and loader, and their folders.

    Contents are read through symbolic links, so an image gets regular files (Debian's
    ``redis-server`` is a link to ``redis-check-rdb``, and Redis picks its mode from the
    name it is started as: the file keeps the name ``redis-server``).
    """
    entries: dict[str, Entry] = {}
    for binary in binaries:
        for path in [binary, *shared_libraries(binary)]:
            name = path.lstrip("/")
            for parent in _parents(name):
                entries.setdefault(parent, (tarfile.DIRTYPE, 0o755, None, ""))
            # 0755 for all: the kernel executes the loader itself
            entries[name] = (tarfile.REGTYPE, 0o755, Path(path).resolve().read_bytes(), "")
    return entries


def _overlay_entries(rootfs: Path) -> dict[str, Entry]:
    """Files, folders and links of the overlay, by relative name.

    Links are copied as links (never followed), so the overlay cannot pull in files
    from outside its folder.
    """
    entries: dict[str, Entry] = {}
    for folder, dirs, files in os.walk(rootfs):  # never follows links
        for entry in dirs + files:
            path = Path(folder) / entry
            name = path.relative_to(rootfs).as_posix()
            if path.is_symlink():
                entries[name] = (tarfile.SYMTYPE, 0o777, None, str(path.readlink()))
            elif path.is_dir():
                entries[name] = (tarfile.DIRTYPE, 0o755, None, "")
            elif path.is_file():
                mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
                entries[name] = (tarfile.REGTYPE, mode, path.read_bytes(), "")
    return entries


def build_rootfs(source: ImageSource, busybox: Path = BUSYBOX) -> bytes:
    """The image's root file system as an uncompressed tar (busybox + applets + host
    programs with their libraries + overlay).

    Owners and times are fixed, so the same inputs give the same bytes.
    """
    entries = _base_entries(source, busybox)
    for name, entry in _binary_entries(source.binaries).items():
        if not (entry[0] == tarfile.DIRTYPE and name in entries):
            entries[name] = entry
    for name, entry in _overlay_entries(source.path / "rootfs").items():
        if not (entry[0] == tarfile.DIRTYPE and name in entries):
            entries[name] = entry
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(entries):   # parents sort before their children
            kind, mode, data, link = entries[name]
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime, info.linkname = kind, mode, 0, link
            info.size = len(data) if data is not None else 0
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def digest_of(source: ImageSource, rootfs: bytes) -> str:
    """A digest of everything that makes the image (file system and config)."""
    config = json.dumps(source.changes(""), sort_keys=True).encode()
    return hashlib.sha256(rootfs + b"\0" + config).hexdigest()[:32]


def build_image(agent: DockerAgent, source: ImageSource, *, busybox: Path = BUSYBOX) -> str:
    """Import the image onto ``agent`` unless an identical one is there; return its digest.

    :raises ContainerError: the engine refused the import.
    :raises AgentUnreachable: the engine did not answer.
    """
    rootfs = build_rootfs(source, busybox)
    digest = digest_of(source, rootfs)
    if (agent.image_labels(source.ref) or {}).get(DIGEST_LABEL) == digest:
        return digest
    agent.import_image(rootfs, source.ref, source.changes(digest))
    return digest


def spread_image(ref: str, digest: str, origin: DockerAgent, agents: Sequence[DockerAgent],
                 tarball_dir: str | Path) -> Path:
    """Save ``ref`` from ``origin`` to the tarball dir and load it where it is stale or missing."""
    folder = Path(tarball_dir)
    folder.mkdir(parents=True, exist_ok=True)
    tarball = folder / tarball_name(ref)
    stamp = tarball.with_name(tarball.name + ".digest")
    if not tarball.is_file() or not stamp.is_file() or stamp.read_text() != digest:
        origin.save_image(ref, tarball)
        stamp.write_text(digest)
    for agent in agents:
        if agent is not origin and (agent.image_labels(ref) or {}).get(DIGEST_LABEL) != digest:
            agent.load_image(tarball)
    return tarball


def build_images(agents: Sequence[DockerAgent], root: str | Path, tarball_dir: str | Path,
                 *, busybox: Path = BUSYBOX) -> list[str]:
    """Build every image under ``root`` on the first agent and spread it to the others.

    Returns the image references. Unchanged images cost one inspect per agent.
    """
    refs = []
    for source in find_image_sources(root):
        digest = build_image(agents[0], source, busybox=busybox)
        spread_image(source.ref, digest, agents[0], agents, tarball_dir)
        refs.append(source.ref)
    return refs
