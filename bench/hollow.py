"""Hollow agents: many fake Docker engines in one process, for scale benchmarks only.

Like Kubernetes' kubemark, ``python -m bench.hollow`` answers the part of the Docker
Engine API (v1.41, the engine the test bed runs) that Berth's one Docker funnel
(:mod:`worker.docker_agent`) calls: ``/_ping``, ``/version``, ``/info``; containers
``create``, ``start``, ``stop``, ``kill``, ``json`` (list, with the ``name``, ``id``
and ``label`` filters), ``{id}/json`` (inspect), ``DELETE``, ``logs``; ``exec``
create/start/inspect (command health checks: they exit 0); ``/events`` (streamed,
with ``since``/``until`` and the ``type``/``label``/``event``/``container``
filters); images ``{ref}/json``, ``json``, ``load``, ``{ref}/get``. Containers are
records: nothing runs. The functional tests never use it: they run real engines;
``tests/integration/test_hollow_agent.py`` compares it with one, call by call.

Layout: hollow agent ``i`` (0-based) listens on its own loopback address
``127.<A>.<B>.<C>`` (``--net``, default ``127.109``; the whole of 127/8 is local on
Linux), port 2375, so Berth sees distinct hosts and an instance's ``HOST:PORT`` is
unique. Health endpoints answer lazily: when a container starts, one listener is
bound per host port it was given (``PORT0…`` in its environment with host
networking, ``HostConfig.PortBindings`` with bridge) on its agent's address; any
request there gets ``200 ok``; the listener is closed when the container dies or is
removed. So the process holds one socket per running instance and one per agent,
never one thread: a single asyncio loop serves everything.

A control port (``--control``, on 127.0.0.1) serves the benchmark: ``GET /stats``,
``POST /images/spread`` (every agent gets the images of the first one, shared, not
copied), ``POST /agents/<address>/stop`` (the agent stops answering: listeners closed,
connections dropped, its health endpoints gone, as when a machine goes away) and
``POST /agents/<address>/start``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import io
import ipaddress
import json
import re
import resource
import secrets
import shlex
import signal
import sys
import tarfile
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["HollowHost", "HollowAgent", "Image", "agent_address", "main"]

API_VERSION = "1.41"
ENGINE_VERSION = "20.10.24-hollow"
EVENT_LOG = 1000              # events kept per agent for ``since`` replays
NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
HEALTH_ANSWER = (b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
                 b"Connection: close\r\n\r\nok\n")


class ApiError(Exception):
    """An engine refusal: HTTP status and the engine's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Image:
    """An image an agent holds: references, id, labels, and ``docker save`` bytes."""

    id: str
    tags: list[str]
    labels: dict[str, str]
    tarball: bytes = b""
    created: float = field(default_factory=time.time)
    env: list[str] = field(default_factory=list)

    def inspect(self) -> dict[str, Any]:
        """What ``GET /images/{ref}/json`` answers (the fields Berth and docker-py read)."""
        return {"Id": self.id, "RepoTags": list(self.tags), "RepoDigests": [],
                "Created": _iso(self.created), "Size": len(self.tarball),
                "Config": {"Labels": dict(self.labels) or None, "Env": list(self.env)},
                "Architecture": "amd64", "Os": "linux"}

    def listing(self) -> dict[str, Any]:
        """One entry of ``GET /images/json``."""
        return {"Id": self.id, "RepoTags": list(self.tags), "RepoDigests": [],
                "Created": int(self.created), "Size": len(self.tarball),
                "Labels": dict(self.labels) or None, "Containers": -1, "ParentId": ""}


def images_from_tarball(data: bytes) -> list[Image]:
    """The images of a ``docker save`` tarball (``manifest.json`` and each config).

    :raises ApiError: 400 when it is not a ``docker save`` tarball.
    """
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            manifest = json.loads(_member(tar, "manifest.json"))
            found = []
            for entry in manifest:
                config = json.loads(_member(tar, entry["Config"]))
                settings = config.get("config") or {}
                digest = "sha256:" + hashlib.sha256(_member(tar, entry["Config"])).hexdigest()
                found.append(Image(digest, list(entry.get("RepoTags") or []),
                                   dict(settings.get("Labels") or {}), data,
                                   env=list(settings.get("Env") or [])))
            return found
    except (tarfile.TarError, KeyError, ValueError, TypeError) as exc:
        raise ApiError(400, f"invalid docker save tarball: {exc}") from exc


def image_config(changes: Iterable[str]) -> dict[str, Any]:
    """The image ``config`` that Dockerfile ``changes`` of ``docker import`` describe.

    :raises ApiError: 400 for an instruction ``docker import`` does not take.
    """
    config: dict[str, Any] = {"Env": [], "Labels": {}}
    for change in changes:
        word, _, rest = change.strip().partition(" ")
        word = word.upper()
        try:
            if word == "ENV":
                key, sep, value = rest.strip().partition("=")
                config["Env"].append(f"{key}={value}" if sep else
                                     "=".join(rest.split(None, 1)))
            elif word in ("CMD", "ENTRYPOINT"):
                argv: Any = json.loads(rest) if rest.strip().startswith("[") \
                    else ["/bin/sh", "-c", rest.strip()]
                config["Cmd" if word == "CMD" else "Entrypoint"] = argv
            elif word == "WORKDIR":
                config["WorkingDir"] = rest.strip()
            elif word == "LABEL":
                for item in shlex.split(rest):
                    key, _, value = item.partition("=")
                    config["Labels"][key] = value
            elif word:
                raise ApiError(400, f"{word} is not a valid change command")
        except ValueError as exc:
            raise ApiError(400, f"invalid change {change!r}: {exc}") from exc
    return config


def image_from_rootfs(rootfs: bytes, ref: str, config: dict[str, Any]) -> Image:
    """A one-layer image holding ``rootfs``, with its ``docker save`` tarball."""
    layer_id = hashlib.sha256(rootfs).hexdigest()
    document = json.dumps({"architecture": "amd64", "os": "linux", "config": config,
                           "created": _iso(time.time()),
                           "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_id}"]}
                           }).encode()
    config_id = hashlib.sha256(document).hexdigest()
    manifest = json.dumps([{"Config": f"{config_id}.json", "RepoTags": [ref] if ref else [],
                            "Layers": [f"{layer_id}/layer.tar"]}]).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in ((f"{layer_id}/layer.tar", rootfs), (f"{config_id}.json", document),
                           ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
    return Image(f"sha256:{config_id}", [ref] if ref else [], dict(config["Labels"]),
                 buffer.getvalue(), env=list(config["Env"]))


def _member(tar: tarfile.TarFile, name: str) -> bytes:
    handle = tar.extractfile(name)
    if handle is None:
        raise KeyError(name)
    return handle.read()


def _iso(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _ago(seconds: float) -> str:
    """Docker's human durations: ``Less than a second``, ``5 seconds``, ``About a minute``."""
    if seconds < 1:
        return "Less than a second"
    if seconds < 60:
        return f"{int(seconds)} seconds"
    if seconds < 120:
        return "About a minute"
    if seconds < 3600:
        return f"{int(seconds // 60)} minutes"
    return f"{int(seconds // 3600)} hours"


@dataclass
class Container:
    """A container record: what it was created with and its (pretend) state."""

    id: str
    name: str
    image: Image
    image_ref: str
    body: dict[str, Any]
    created: float = field(default_factory=time.time)
    status: str = "created"                  # created, running, exited
    exit_code: int = 0
    started: float = 0.0
    finished: float = 0.0
    pid: int = 0
    listeners: list[asyncio.Server] = field(default_factory=list)
    log: list[bytes] = field(default_factory=list)

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.body.get("Labels") or {})

    @property
    def host_config(self) -> dict[str, Any]:
        return dict(self.body.get("HostConfig") or {})

    @property
    def env(self) -> dict[str, str]:
        pairs = (str(e).partition("=") for e in self.body.get("Env") or [])
        return {k: v for k, _, v in pairs}

    @property
    def running(self) -> bool:
        return self.status == "running"

    def command(self) -> list[str]:
        return [*(self.body.get("Entrypoint") or []), *(self.body.get("Cmd") or ["/bin/start"])]

    def host_ports(self) -> list[int]:
        """The host ports its service listens on: bindings, else ``PORT0…`` (host network)."""
        bindings = self.host_config.get("PortBindings") or {}
        ports = [int(b["HostPort"]) for spec in bindings.values() for b in spec or []
                 if str(b.get("HostPort") or "").isdigit()]
        if ports or self.host_config.get("NetworkMode") != "host":
            return ports
        env = self.env
        named = sorted((int(k[4:]), v) for k, v in env.items() if re.fullmatch(r"PORT\d+", k))
        return [int(v) for _, v in named if v.isdigit()]

    def human_status(self, now: float) -> str:
        if self.status == "running":
            return f"Up {_ago(now - self.started)}"
        if self.status == "exited":
            return f"Exited ({self.exit_code}) {_ago(now - self.finished)} ago"
        return "Created"

    def listing(self, now: float) -> dict[str, Any]:
        """One entry of ``GET /containers/json``."""
        network = self.host_config.get("NetworkMode") or "default"
        return {"Id": self.id, "Names": [f"/{self.name}"], "Image": self.image_ref,
                "ImageID": self.image.id, "Command": " ".join(self.command()),
                "Created": int(self.created), "Ports": [], "Labels": self.labels,
                "State": self.status, "Status": self.human_status(now),
                "HostConfig": {"NetworkMode": network},
                "NetworkSettings": {"Networks": {network: {"NetworkID": "", "IPAddress": ""}}},
                "Mounts": []}

    def inspect(self) -> dict[str, Any]:
        """What ``GET /containers/{id}/json`` answers (the fields Berth and docker-py read)."""
        command = self.command()
        return {
            "Id": self.id, "Created": _iso(self.created), "Path": command[0],
            "Args": command[1:], "Image": self.image.id, "Name": f"/{self.name}",
            "RestartCount": 0, "Driver": "hollow", "Platform": "linux",
            "State": {"Status": self.status, "Running": self.running, "Paused": False,
                      "Restarting": False, "OOMKilled": False, "Dead": False,
                      "Pid": self.pid if self.running else 0, "ExitCode": self.exit_code,
                      "Error": "", "StartedAt": _iso(self.started) if self.started
                      else "0001-01-01T00:00:00Z",
                      "FinishedAt": _iso(self.finished) if self.finished
                      else "0001-01-01T00:00:00Z"},
            "HostConfig": self.host_config,
            "Config": {"Hostname": self.id[:12], "Image": self.image_ref, "Tty": False,
                       "AttachStdout": False, "AttachStderr": False, "OpenStdin": False,
                       "Env": list(self.body.get("Env") or []), "Cmd": self.body.get("Cmd"),
                       "Entrypoint": self.body.get("Entrypoint"), "Labels": self.labels,
                       "User": self.body.get("User") or "",
                       "ExposedPorts": self.body.get("ExposedPorts")},
            "NetworkSettings": {"Ports": {}, "Networks": {}},
            "Mounts": [],
        }


class HollowAgent:
    """One fake Docker engine: containers, images and events, kept in memory."""

    def __init__(self, host: HollowHost, address: str, port: int = 2375) -> None:
        self.host, self.address, self.port = host, address, port
        self.containers: dict[str, Container] = {}
        self.names: dict[str, str] = {}
        self.images: dict[str, Image] = {}
        self.execs: dict[str, dict[str, Any]] = {}
        self.events: collections.deque[dict[str, Any]] = collections.deque(maxlen=EVENT_LOG)
        self.followers: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.answering = False
        self.requests = 0

    @property
    def url(self) -> str:
        return f"tcp://{self.address}:{self.port}"

    # -- lifecycle ------------------------------------------------------------------

    async def listen(self) -> None:
        """Start answering the Docker API (again, after :meth:`go_away`)."""
        if self.server is None:
            self.server = await asyncio.start_server(self._connection, self.address, self.port,
                                                     backlog=256)
        self.answering = True
        for container in self.containers.values():
            if container.running:
                await self._open_health(container)

    async def go_away(self) -> None:
        """Stop answering, like a machine that went off the network: the API listener,
        open connections, event streams and health endpoints all go."""
        self.answering = False
        if self.server is not None:
            self.server.close()
            self.server = None
        for writer in list(self.writers):
            writer.transport.abort()
        for queue in list(self.followers):
            queue.put_nowait(None)
        for container in self.containers.values():
            self._close_health(container)

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            await serve_http(reader, writer, self.handle)
        except asyncio.CancelledError:
            pass                     # the process is stopping
        finally:
            self.writers.discard(writer)

    # -- requests -------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        """Route one Docker API request."""
        self.requests += 1
        path = re.sub(r"^/v\d+\.\d+(?=/)", "", request.path)
        method = request.method
        for pattern, methods, action in ROUTES:
            match = pattern.fullmatch(path)
            if match and method in methods:
                try:
                    return await action(self, request, *(unquote(g) for g in match.groups()))
                except ApiError as error:
                    return Response.json({"message": error.message}, error.status)
                except Exception as error:  # noqa: BLE001 - a hollow-agent bug: say so
                    traceback.print_exc()
                    return Response.json({"message": f"hollow agent: {error!r}"}, 500)
        return Response.json({"message": "page not found"}, 404)

    # engine
    async def ping(self, request: Request) -> Response:
        body = b"" if request.method == "HEAD" else b"OK"
        return Response(200, body, {"Content-Type": "text/plain; charset=utf-8",
                                    "Cache-Control": "no-cache, no-store, must-revalidate"})

    async def version(self, request: Request) -> Response:
        return Response.json({"Version": ENGINE_VERSION, "ApiVersion": API_VERSION,
                              "MinAPIVersion": "1.12", "Os": "linux", "Arch": "amd64",
                              "KernelVersion": "hollow", "GoVersion": "none",
                              "Components": [{"Name": "Engine", "Version": ENGINE_VERSION}]})

    async def info(self, request: Request) -> Response:
        running = sum(c.running for c in self.containers.values())
        return Response.json({
            "ID": self.address, "Name": f"hollow-{self.address}", "ServerVersion": ENGINE_VERSION,
            "NCPU": self.host.cpus, "MemTotal": self.host.mem_mib << 20,
            "Containers": len(self.containers), "ContainersRunning": running,
            "ContainersPaused": 0, "ContainersStopped": len(self.containers) - running,
            "Images": len(self.images), "Driver": "hollow", "OSType": "linux",
            "Architecture": "x86_64", "OperatingSystem": "Berth hollow agent"})

    # images
    def image(self, ref: str) -> Image:
        """The image named ``ref`` (``repo``, ``repo:tag`` or an id).

        :raises ApiError: 404 when this agent does not hold it.
        """
        wanted = ref if ":" in ref.rpartition("/")[2] or ref.startswith("sha256:") \
            else f"{ref}:latest"
        found = self.images.get(wanted)
        if found is None:
            found = next((i for i in self.images.values() if i.id == ref
                          or i.id.removeprefix("sha256:").startswith(ref)), None)
        if found is None:
            raise ApiError(404, f"No such image: {ref}")
        return found

    def add_image(self, image: Image) -> None:
        for tag in image.tags:
            self.images[tag] = image

    async def inspect_image(self, request: Request, ref: str) -> Response:
        return Response.json(self.image(ref).inspect())

    async def list_images(self, request: Request) -> Response:
        unique = {i.id: i for i in self.images.values()}
        return Response.json([i.listing() for i in unique.values()])

    async def load_images(self, request: Request) -> Response:
        loaded = images_from_tarball(request.body)
        for image in loaded:
            self.add_image(image)
        lines = [{"stream": f"Loaded image: {tag}\n"} for i in loaded for tag in i.tags]
        return Response(200, b"".join(json.dumps(x).encode() + b"\n" for x in lines),
                        {"Content-Type": "application/json"})

    async def save_image(self, request: Request, ref: str) -> Response:
        image = self.image(ref)
        if not image.tarball:
            raise ApiError(500, f"hollow agent: image {ref} has no tarball to save")
        return Response(200, image.tarball, {"Content-Type": "application/x-tar"})

    async def pull_image(self, request: Request) -> Response:
        if (request.query.get("fromSrc") or [""])[0] == "-":
            return await self.import_image(request)
        ref = (request.query.get("fromImage") or [""])[0]
        tag = (request.query.get("tag") or [""])[0]
        full = f"{ref}:{tag}" if tag else ref
        raise ApiError(404, f"pull access denied for {ref}, repository does not exist or "
                            f"may require 'docker login': hollow agents reach no registry "
                            f"({full})")

    async def import_image(self, request: Request) -> Response:
        """``docker import``: the root file system tar becomes a one-layer image with the
        ``changes`` (``ENV``, ``CMD``, ``ENTRYPOINT``, ``WORKDIR``, ``LABEL``) applied."""
        repo = (request.query.get("repo") or [""])[0]
        tag = (request.query.get("tag") or ["latest"])[0] or "latest"
        config = image_config(request.query.get("changes") or [])
        image = image_from_rootfs(request.body, f"{repo}:{tag}" if repo else "", config)
        self.add_image(image)
        return Response.json({"status": image.id})

    # containers
    def container(self, name_or_id: str) -> Container:
        """A container by id, name or unique id prefix.

        :raises ApiError: 404 when there is none.
        """
        key = name_or_id.lstrip("/")
        if key in self.containers:
            return self.containers[key]
        if key in self.names:
            return self.containers[self.names[key]]
        matches = [c for cid, c in self.containers.items() if cid.startswith(key)]
        if len(matches) == 1 and key:
            return matches[0]
        raise ApiError(404, f"No such container: {name_or_id}")

    async def create(self, request: Request) -> Response:
        body = request.json() or {}
        name = (request.query.get("name") or [""])[0]
        if name and not NAME.match(name):
            raise ApiError(400, f"Invalid container name ({name}), only "
                                f"[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        ref = str(body.get("Image") or "")
        image = self.image(ref)
        container_id = secrets.token_hex(32)
        name = name.lstrip("/") or f"hollow_{container_id[:8]}"
        if name in self.names:
            raise ApiError(409, f'Conflict. The container name "/{name}" is already in use by '
                                f'container "{self.names[name]}". You have to remove (or '
                                f'rename) that container to be able to reuse that name.')
        # as the engine does: the image's labels and environment under the container's own
        image_env = [e for e in image.env if e.partition("=")[0] not in
                     {str(x).partition("=")[0] for x in body.get("Env") or []}]
        body = {**body, "Labels": {**image.labels, **(body.get("Labels") or {})},
                "Env": [*image_env, *(body.get("Env") or [])]}
        container = Container(container_id, name, image, ref, body)
        self.containers[container_id] = container
        self.names[name] = container_id
        self.event(container, "create")
        return Response.json({"Id": container_id, "Warnings": []}, 201)

    async def start(self, request: Request, name_or_id: str) -> Response:
        container = self.container(name_or_id)
        if container.running:
            return Response(304, b"")
        container.status, container.exit_code = "running", 0
        container.started, container.finished = time.time(), 0.0
        container.pid = 1000 + secrets.randbelow(60000)
        command = " ".join(container.command())
        container.log.append(f"hollow agent {self.address}: {command} started "
                             f"(nothing runs)\n".encode())
        await self._open_health(container)
        self.event(container, "start")
        return Response(204, b"")

    def _end(self, container: Container, exit_code: int, signal_number: int | None) -> None:
        """The container's (pretend) process ends: events, listeners closed."""
        if signal_number is not None:
            self.event(container, "kill", signal=str(signal_number))
        container.status, container.exit_code = "exited", exit_code
        container.finished = time.time()
        self._close_health(container)
        self.event(container, "die", exitCode=str(exit_code))

    async def kill(self, request: Request, name_or_id: str) -> Response:
        container = self.container(name_or_id)
        if not container.running:
            raise ApiError(409, f"Cannot kill container: {name_or_id}: Container "
                                f"{container.id} is not running")
        signame = (request.query.get("signal") or ["SIGKILL"])[0]
        number = getattr(signal, signame if signame.startswith("SIG") else f"SIG{signame}",
                         None) if not signame.isdigit() else int(signame)
        number = int(number or signal.SIGKILL)
        self._end(container, 128 + number, number)
        return Response(204, b"")

    async def stop(self, request: Request, name_or_id: str) -> Response:
        container = self.container(name_or_id)
        if not container.running:
            return Response(304, b"")
        self._end(container, 128 + signal.SIGTERM, signal.SIGTERM)
        self.event(container, "stop")
        return Response(204, b"")

    async def remove(self, request: Request, name_or_id: str) -> Response:
        container = self.container(name_or_id)
        force = (request.query.get("force") or ["0"])[0] in ("1", "true", "True")
        if container.running and not force:
            raise ApiError(409, f"You cannot remove a running container {container.id}. "
                                f"Stop the container before attempting removal or force "
                                f"remove")
        if container.running:
            self._end(container, 128 + signal.SIGKILL, signal.SIGKILL)
        del self.containers[container.id]
        self.names.pop(container.name, None)
        self.event(container, "destroy")
        return Response(204, b"")

    async def list_containers(self, request: Request) -> Response:
        every = (request.query.get("all") or ["0"])[0] in ("1", "true", "True")
        filters = _filters(request)
        now = time.time()
        found = [c.listing(now) for c in self.containers.values()
                 if (every or c.running) and _container_matches(c, filters)]
        found.sort(key=lambda c: -c["Created"])
        return Response.json(found)

    async def inspect(self, request: Request, name_or_id: str) -> Response:
        return Response.json(self.container(name_or_id).inspect())

    async def logs(self, request: Request, name_or_id: str) -> Response:
        container = self.container(name_or_id)
        tail = (request.query.get("tail") or ["all"])[0]
        lines = container.log if tail == "all" else container.log[-int(tail):] if int(tail) \
            else []
        frames = b"".join(_frame(1, line) for line in lines)
        headers = {"Content-Type": "application/vnd.docker.multiplexed-stream"}
        if (request.query.get("follow") or ["0"])[0] not in ("1", "true", "True"):
            return Response(200, frames, headers)

        async def follow() -> Any:
            yield frames
            while container.running and self.containers.get(container.id) is container:
                await asyncio.sleep(0.5)

        return Response(200, b"", headers, stream=follow())

    # exec (command health checks): the command "runs" and exits 0
    async def exec_create(self, request: Request, name_or_id: str) -> Response:
        container = self.container(name_or_id)
        if not container.running:
            raise ApiError(409, f"Container {container.id} is not running")
        exec_id = secrets.token_hex(32)
        self.execs[exec_id] = {"ID": exec_id, "ContainerID": container.id, "Running": False,
                               "ExitCode": None, "Pid": 0,
                               "ProcessConfig": {"entrypoint": (request.json() or {})
                                                 .get("Cmd", [""])[0]}}
        return Response.json({"Id": exec_id}, 201)

    async def exec_start(self, request: Request, exec_id: str) -> Response:
        record = self.execs.get(exec_id)
        if record is None:
            raise ApiError(404, f"No such exec instance: {exec_id}")
        record["ExitCode"] = 0
        if (request.json() or {}).get("Detach"):
            return Response(200, b"")
        return Response(101, b"", {"Content-Type": "application/vnd.docker.raw-stream",
                                   "Connection": "Upgrade", "Upgrade": "tcp"}, hijack=b"")

    async def exec_inspect(self, request: Request, exec_id: str) -> Response:
        record = self.execs.get(exec_id)
        if record is None:
            raise ApiError(404, f"No such exec instance: {exec_id}")
        if len(self.execs) > 1000:      # forget old ones, as the engine does
            for old in list(self.execs)[:500]:
                self.execs.pop(old, None)
        return Response.json(record)

    # events
    def event(self, container: Container, action: str, **extra: str) -> None:
        """Record and fan out one container event, shaped as the engine sends it."""
        now = time.time_ns()
        attributes = {**container.labels, "image": container.image_ref,
                      "name": container.name, **extra}
        event = {"status": action, "id": container.id, "from": container.image_ref,
                 "Type": "container", "Action": action,
                 "Actor": {"ID": container.id, "Attributes": attributes},
                 "scope": "local", "time": now // 1_000_000_000, "timeNano": now}
        self.events.append(event)
        for queue in self.followers:
            queue.put_nowait(event)

    async def follow_events(self, request: Request) -> Response:
        filters = _filters(request)
        since = _stamp(request.query.get("since"))
        until = _stamp(request.query.get("until"))
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        now = time.time()
        backlog = [e for e in self.events if since is not None and e["timeNano"] / 1e9 >= since
                   and (until is None or e["timeNano"] / 1e9 <= until)]
        if until is None or until > now:
            self.followers.add(queue)

        async def stream() -> Any:
            try:
                for event in backlog:
                    if _event_matches(event, filters):
                        yield json.dumps(event).encode() + b"\n"
                if until is not None and until <= now:
                    return
                while True:
                    wait = None if until is None else max(0.0, until - time.time())
                    try:
                        live = await asyncio.wait_for(queue.get(), wait)
                    except TimeoutError:
                        return
                    if live is None:
                        return
                    if _event_matches(live, filters):
                        yield json.dumps(live).encode() + b"\n"
            finally:
                self.followers.discard(queue)

        return Response(200, b"", {"Content-Type": "application/json"}, stream=stream())

    # health endpoints
    async def _open_health(self, container: Container) -> None:
        """Bind one listener per host port of a started container (its "service")."""
        if not self.answering:
            return
        for port in container.host_ports():
            try:
                server = await asyncio.start_server(_answer_health, self.address, port,
                                                    backlog=64)
            except OSError as exc:
                container.log.append(f"hollow agent: cannot listen on {self.address}:{port}: "
                                     f"{exc.strerror}\n".encode())
                continue
            container.listeners.append(server)
            self.host.listening += 1

    def _close_health(self, container: Container) -> None:
        for server in container.listeners:
            server.close()
            self.host.listening -= 1
        container.listeners.clear()


async def _answer_health(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Any request to a hollow instance's port: ``200 ok`` (a TCP connect also works)."""
    try:
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        writer.write(HEALTH_ANSWER)
        await writer.drain()
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
        pass
    finally:
        writer.close()


def _frame(stream: int, data: bytes) -> bytes:
    """One multiplexed-stream frame (stdout 1, stderr 2), as non-TTY logs are sent."""
    return bytes([stream, 0, 0, 0]) + len(data).to_bytes(4, "big") + data


def _stamp(values: list[str] | None) -> float | None:
    if not values or not values[0]:
        return None
    try:
        return float(values[0])
    except ValueError as exc:
        raise ApiError(400, f"invalid timestamp {values[0]!r}") from exc


def _filters(request: Request) -> dict[str, list[str]]:
    """The ``filters`` query parameter: ``{"k": ["v", …]}`` or ``{"k": {"v": true}}``.

    :raises ApiError: 400 when it is not JSON.
    """
    raw = (request.query.get("filters") or [""])[0]
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, f"invalid filter: {exc}") from exc
    return {k: list(v) if isinstance(v, (list, dict)) else [str(v)] for k, v in parsed.items()}


def _labels_match(labels: dict[str, str], wanted: Iterable[str]) -> bool:
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


def _container_matches(container: Container, filters: dict[str, list[str]]) -> bool:
    """The engine's list filters: ``name`` and ``id`` are regular expressions searched
    in ``/name`` and the id; ``label`` entries (``key`` or ``key=value``) must all hold;
    ``status`` is one of the states."""
    name = f"/{container.name}"
    if "name" in filters and not any(re.search(p, name) for p in filters["name"]):
        return False
    if "id" in filters and not any(re.search(p, container.id) for p in filters["id"]):
        return False
    if "status" in filters and container.status not in filters["status"]:
        return False
    return _labels_match(container.labels, filters.get("label", []))


def _event_matches(event: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    if "type" in filters and event["Type"] not in filters["type"]:
        return False
    if "event" in filters and event["Action"] not in filters["event"]:
        return False
    attributes = event["Actor"]["Attributes"]
    if "container" in filters and not any(
            v in (event["id"], attributes.get("name")) or event["id"].startswith(v)
            for v in filters["container"]):
        return False
    return _labels_match(attributes, filters.get("label", []))


# -- a small HTTP/1.1 server (keep-alive, chunked bodies, streamed answers) --------------

@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON (None when empty).

        :raises ApiError: 400 when it is not JSON.
        """
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise ApiError(400, f"invalid JSON body: {exc}") from exc


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    stream: Any = None               # an async iterator of chunks (chunked encoding)
    hijack: bytes | None = None      # raw bytes after the head, then the connection closes

    @classmethod
    def json(cls, value: Any, status: int = 200) -> Response:
        return cls(status, json.dumps(value).encode() + b"\n",
                   {"Content-Type": "application/json"})


REASONS = {101: "UPGRADED", 200: "OK", 201: "Created", 204: "No Content",
           304: "Not Modified", 400: "Bad Request", 404: "Not Found", 409: "Conflict",
           500: "Internal Server Error"}
COMMON_HEADERS = {"Api-Version": API_VERSION, "Docker-Experimental": "false",
                  "Ostype": "linux", "Server": f"Docker/{ENGINE_VERSION} (linux)"}


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    """One request from a keep-alive connection; None at its end."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(parts)
    else:
        body = await reader.readexactly(int(headers.get("content-length") or 0))
    split = urlsplit(target)
    return Request(method, split.path, parse_qs(split.query, keep_blank_values=True),
                   headers, body)


def _head(response: Response, extra: dict[str, str]) -> bytes:
    headers = {**COMMON_HEADERS, "Date": time.strftime("%a, %d %b %Y %H:%M:%S GMT",
                                                       time.gmtime()),
               **response.headers, **extra}
    lines = [f"HTTP/1.1 {response.status} {REASONS.get(response.status, 'OK')}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def serve_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     handle: Callable[[Request], Awaitable[Response]]) -> None:
    """Serve requests on one connection until the client closes it."""
    try:
        while True:
            try:
                request = await _read_request(reader)
            except (ValueError, asyncio.LimitOverrunError, asyncio.IncompleteReadError):
                writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                             b"Connection: close\r\n\r\n")
                return
            if request is None:
                return
            response = await handle(request)
            if response.hijack is not None:
                writer.write(_head(response, {}))
                await writer.drain()
                await asyncio.sleep(0.01)   # the client reads the head before the stream
                writer.write(response.hijack)
                await writer.drain()
                return
            if response.stream is not None:
                writer.write(_head(response, {"Transfer-Encoding": "chunked"}))
                await writer.drain()
                async for chunk in response.stream:
                    if chunk:
                        writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        await writer.drain()
                writer.write(b"0\r\n\r\n")
                await writer.drain()
                continue
            length = {} if response.status in (204, 304) else {
                "Content-Length": str(len(response.body))}
            writer.write(_head(response, length) + response.body)
            await writer.drain()
    except (ConnectionError, OSError):
        return
    finally:
        writer.close()


Route = tuple[re.Pattern[str], tuple[str, ...], Callable[..., Awaitable[Response]]]
_ID = r"([^/]+)"
_REF = r"(.+)"
ROUTES: list[Route] = [(re.compile(p), m, a) for p, m, a in [  # type: ignore[misc]
    (r"/_ping", ("GET", "HEAD"), HollowAgent.ping),
    (r"/version", ("GET",), HollowAgent.version),
    (r"/info", ("GET",), HollowAgent.info),
    (r"/events", ("GET",), HollowAgent.follow_events),
    (r"/images/json", ("GET",), HollowAgent.list_images),
    (r"/images/load", ("POST",), HollowAgent.load_images),
    (r"/images/create", ("POST",), HollowAgent.pull_image),
    (rf"/images/{_REF}/json", ("GET",), HollowAgent.inspect_image),
    (rf"/images/{_REF}/get", ("GET",), HollowAgent.save_image),
    (r"/containers/json", ("GET",), HollowAgent.list_containers),
    (r"/containers/create", ("POST",), HollowAgent.create),
    (rf"/containers/{_ID}/json", ("GET",), HollowAgent.inspect),
    (rf"/containers/{_ID}/start", ("POST",), HollowAgent.start),
    (rf"/containers/{_ID}/stop", ("POST",), HollowAgent.stop),
    (rf"/containers/{_ID}/kill", ("POST",), HollowAgent.kill),
    (rf"/containers/{_ID}/logs", ("GET",), HollowAgent.logs),
    (rf"/containers/{_ID}/exec", ("POST",), HollowAgent.exec_create),
    (rf"/containers/{_ID}", ("DELETE",), HollowAgent.remove),
    (rf"/exec/{_ID}/start", ("POST",), HollowAgent.exec_start),
    (rf"/exec/{_ID}/json", ("GET",), HollowAgent.exec_inspect),
]]


# -- many agents in one process ------------------------------------------------------------

def agent_address(net: str, index: int) -> str:
    """The loopback address of hollow agent ``index``: ``<net>.<B>.<C>``, C in 1..250."""
    base = ipaddress.IPv4Address(f"{net}.0.0")
    if not base.is_loopback:
        raise ValueError(f"{net} is not a loopback network (127.x)")
    return str(base + (index // 250) * 256 + index % 250 + 1)


class HollowHost:
    """The process: many :class:`HollowAgent`s and the control port."""

    def __init__(self, *, cpus: int = 8, mem_mib: int = 32768) -> None:
        self.cpus, self.mem_mib = cpus, mem_mib
        self.agents: dict[str, HollowAgent] = {}
        self.listening = 0
        self.images: list[Image] = []

    async def add(self, address: str, port: int = 2375) -> HollowAgent:
        agent = HollowAgent(self, address, port)
        for image in self.images:
            agent.add_image(image)
        await agent.listen()
        self.agents[address] = agent
        return agent

    def stats(self) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        containers = sum(len(a.containers) for a in self.agents.values())
        return {"agents": len(self.agents),
                "answering": sum(a.answering for a in self.agents.values()),
                "containers": containers,
                "running": sum(c.running for a in self.agents.values()
                               for c in a.containers.values()),
                "health_listeners": self.listening,
                "requests": sum(a.requests for a in self.agents.values()),
                "event_streams": sum(len(a.followers) for a in self.agents.values()),
                "max_rss_mib": usage.ru_maxrss // 1024,
                "cpu_s": round(usage.ru_utime + usage.ru_stime, 2)}

    async def control(self, request: Request) -> Response:
        """The benchmark's control port: stats, an agent going away or coming back."""
        if request.path == "/stats":
            return Response.json(self.stats())
        if request.path == "/images/spread" and request.method == "POST":
            source = next(iter(self.agents.values()))
            for agent in self.agents.values():
                for image in source.images.values():
                    agent.add_image(image)    # shared records: no copy per agent
            return Response.json({"images": sorted(source.images)})
        match = re.fullmatch(r"/agents/([0-9.]+)/(stop|start)", request.path)
        if match and request.method == "POST" and match.group(1) in self.agents:
            agent = self.agents[match.group(1)]
            await (agent.go_away() if match.group(2) == "stop" else agent.listen())
            return Response.json({"address": agent.address, "answering": agent.answering})
        return Response.json({"message": "not found"}, 404)


async def run_host(args: argparse.Namespace) -> None:
    """Start the agents and the control port; run until SIGTERM/SIGINT."""
    host = HollowHost(cpus=args.cpus, mem_mib=args.mem)
    for path in args.image_tar:
        with open(path, "rb") as data:
            host.images.extend(images_from_tarball(data.read()))
    for index in range(args.agents):
        await host.add(agent_address(args.net, index), args.port)
    control = await asyncio.start_server(
        lambda r, w: serve_http(r, w, host.control), "127.0.0.1", args.control)
    print(f"hollow: {args.agents} agents on {agent_address(args.net, 0)}…"
          f"{agent_address(args.net, args.agents - 1)}:{args.port}, control "
          f"127.0.0.1:{args.control} ready.", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    control.close()
    for agent in host.agents.values():
        await agent.go_away()


def raise_fd_limit(wanted: int = 65536) -> int:
    """Raise the open-files limit (one socket per instance, agent and connection): to
    ``wanted`` when allowed (root), else to the hard limit. Returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limit in ((max(wanted, hard), max(wanted, hard)), (hard, hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, limit)
            return limit[0]
        except (ValueError, OSError):
            continue
    return soft


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hollow", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=10, help="how many hollow agents")
    parser.add_argument("--net", default="127.109", help="loopback /16 of the agents")
    parser.add_argument("--port", type=int, default=2375, help="Docker API port of each")
    parser.add_argument("--control", type=int, default=2374, help="control port on 127.0.0.1")
    parser.add_argument("--image-tar", action="append", default=[],
                        help="a `docker save` tarball every agent holds from the start")
    parser.add_argument("--cpus", type=int, default=8, help="NCPU each agent reports")
    parser.add_argument("--mem", type=int, default=32768, help="MiB each agent reports")
    args = parser.parse_args(argv)
    if not 1 <= args.agents <= 250 * 256:
        parser.error("--agents must be between 1 and 64000")
    try:
        agent_address(args.net, 0)
    except ValueError as exc:
        parser.error(f"--net: {exc}")
    raise_fd_limit()
    try:
        asyncio.run(run_host(args))
    except OSError as exc:
        print(f"hollow: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
