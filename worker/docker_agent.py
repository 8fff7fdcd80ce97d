"""The one funnel for Docker SDK calls: every change on an agent goes through here.

``DockerAgent(url)`` wraps docker-py for one engine (``tcp://127.0.0.2:2375``,
``unix:///run/docker.sock``, ``ssh://…``). It turns ``docker.errors.*``, ``requests``
timeouts and connection errors into :mod:`worker.errors` here and only here, classified
so callers catch types and never read the SDK's exception or the engine's words:

- unavailable: ``AgentUnreachable`` (no answer, refused connection, timeout);
- not found: ``ImageUnavailable`` (an image), ``ContainerNotFound`` (HTTP 404);
- conflict: ``ContainerConflict`` (HTTP 409), ``RemovalInProgress`` (a removal already
  under way elsewhere);
- any other refusal: ``ContainerError`` (the parent of the container classes).

All are ``AgentError``. ``DockerAgent`` is the first implementation of
:class:`worker.backend.Engine`.

What it offers (``docs/architecture.md``, "Docker funnel"):

- ``ping()``, ``is_up()``, ``info()`` — reachability and capacity of the engine;
- ``has_image(ref)``, ``image_labels(ref)``, ``ensure_image(ref, peers=…,
  tarball_dir=…)``, ``pull_image``, ``copy_image_from``, ``import_image``,
  ``save_image``, ``load_image`` — images with or without a registry;
- ``run_instance(name, spec, labels=…, env=…, ports=…, address=…)`` — create and start
  one container from a service spec (see :mod:`worker.containers`), idempotent by
  container name; the spec's named volumes are created first, labelled
  ``berth.service``/``berth.volume``;
- ``find(name_or_id)``, ``list_instances(labels)``, ``remove(name_or_id)`` (with the
  container's anonymous volumes), ``kill``,
  ``events()`` (an :class:`EventStream`: iterate, ``close()`` from another thread),
  ``logs()``, ``exec_check()``;
- ``ensure_volume(name, labels)``, ``list_volumes(labels)`` (sizes from ``df()``),
  ``remove_volume(name)`` — named volumes;
- ``run_toolbox(image, argv, binds=…)`` — run one of Berth's own commands in a
  short-lived, unprivileged container on the agent (host-folder checks, volume
  checksums);
- ``read_volume_archive``, ``write_volume_archive`` — a named volume's files as a tar
  stream, out of and into a volume, through a helper container that is never started
  (:mod:`worker.volume_stream` builds moves and copies on them).

One ``DockerAgent`` may be shared by threads (the connection pool is thread-safe);
event streams and exec checks use connections of their own.

The client connects lazily (API version negotiated on first use), so building a
``DockerAgent`` for an engine that is down never raises; the first call does.

TLS: ``DockerAgent(url, tls=TLSFiles(...))`` talks to an engine started with
``--tlsverify`` (``tcp://host:2376``) with a client certificate, checking the engine's
certificate against the given CA (docker-py's ``TLSConfig``). :func:`agent_tls` finds an
agent's files under ``BERTH_AGENT_TLS_DIR/<agent-id>/{ca,cert,key}.pem``.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.constants
import docker.errors
import docker.tls
import requests.exceptions
import urllib3.exceptions

from worker.backend import BERTH_LABEL, LIFECYCLE
from worker.containers import (
    VOLUME_LABEL,
    ContainerEvent,
    ContainerInfo,
    ExecResult,
    VolumeInfo,
    container_config,
    volume_names,
)
from worker.errors import (
    AgentError,
    AgentUnreachable,
    ContainerConflict,
    ContainerError,
    ContainerNotFound,
    ImageNotFound,
    ImageUnauthorized,
    ImageUnavailable,
    RegistryUnreachable,
    RemovalInProgress,
)
from worker.pulls import PullProgress, PullTracker, image_registry

__all__ = ["DockerAgent", "ContainerInfo", "ContainerEvent", "EventStream", "ExecResult",
           "tarball_name", "split_ref", "BERTH_LABEL", "TLSFiles", "agent_tls"]

_UNREACHABLE = (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)


VOLUME_MOUNT = "/v"            # where helper containers mount the volume they read or write
ARCHIVE_CHUNK = 1 << 20        # bytes per chunk of a volume archive stream


def coalesced(pieces: Iterable[bytes], size: int) -> Iterator[bytes]:
    """``pieces`` joined into chunks of at least ``size`` bytes (the last may be shorter);
    closing it closes ``pieces``.

    An engine sends an archive in HTTP chunks of 32 KiB whatever the size asked for:
    handing each on (to the hashing thread, as a chunk of the upload to the other
    engine) costs a queue round trip and several system calls per 32 KiB, which on a
    busy machine made a checked copy take 1.4 times as long as the raw stream.
    """
    held: list[bytes] = []
    length = 0
    try:
        for piece in pieces:
            held.append(piece)
            length += len(piece)
            if length >= size:
                yield held[0] if len(held) == 1 else b"".join(held)
                held, length = [], 0
        if held:
            yield b"".join(held)
    finally:   # closed early: so is the source (an engine's response, at once)
        close = getattr(pieces, "close", None)
        if close is not None:
            close()


def tarball_name(ref: str) -> str:
    """File name under which an image tarball is kept: ``berth/hello:1.0.0`` →
    ``berth_hello_1.0.0.tar``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", ref).strip("._") + ".tar"


def split_ref(ref: str) -> tuple[str, str]:
    """Split ``repo[:tag]`` into repository and tag (``latest`` when absent)."""
    repo, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, "latest"
    return repo, tag


@dataclass(frozen=True)
class TLSFiles:
    """The PEM files of a TLS agent: the CA that signed its engine, the client pair."""

    ca: str
    cert: str
    key: str

    @classmethod
    def in_folder(cls, folder: str | os.PathLike[str]) -> TLSFiles:
        """``ca.pem``, ``cert.pem`` and ``key.pem`` of ``folder`` (Docker's own names).

        :raises AgentError: naming the files that are missing.
        """
        base = Path(folder)
        files = cls(str(base / "ca.pem"), str(base / "cert.pem"), str(base / "key.pem"))
        missing = [p for p in (files.ca, files.cert, files.key) if not Path(p).is_file()]
        if missing:
            raise AgentError(f"TLS files missing in {base}: {', '.join(missing)}",
                             details=[{"path": p, "message": "no such file"} for p in missing],
                             hint="each TLS agent needs ca.pem, cert.pem and key.pem")
        return files

    def config(self) -> docker.tls.TLSConfig:
        """docker-py's TLS settings: present the client pair, verify the engine by the CA."""
        return docker.tls.TLSConfig(client_cert=(self.cert, self.key), ca_cert=self.ca,
                                    verify=True)


def agent_tls(tls_dir: str | os.PathLike[str] | None, agent_id: str) -> TLSFiles | None:
    """The TLS files of an agent: ``<tls_dir>/<agent_id>/``, or None when there is no
    such folder (the agent is reached without TLS: a unix socket, ssh, or plain tcp).

    :raises AgentError: the folder exists but lacks a file.
    """
    if not tls_dir or not agent_id or "/" in agent_id or agent_id in (".", ".."):
        return None
    folder = Path(tls_dir) / agent_id
    return TLSFiles.in_folder(folder) if folder.is_dir() else None


class EventStream:
    """Iterate Berth container events; ``close()`` (from any thread) ends the loop."""

    def __init__(self, agent: DockerAgent, stream: Any, api: Any) -> None:
        self._agent, self._stream, self._api = agent, stream, api

    def __iter__(self) -> Iterator[ContainerEvent]:
        with self._agent._funnel("read events"):
            for raw in self._stream:
                if raw.get("Type", "container") == "container":
                    yield ContainerEvent.from_api(raw)

    def close(self) -> None:
        """Stop the stream; a loop over it ends."""
        try:
            self._stream.close()
        finally:
            self._api.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DockerAgent:
    """One Docker engine, reached through docker-py; every call funnels errors."""

    def __init__(self, url: str, *, timeout: float = 10, tls: TLSFiles | None = None) -> None:
        self.url = url
        self.timeout = timeout
        self.tls = tls
        self._client: docker.DockerClient | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DockerAgent({self.url!r})"

    # -- plumbing -----------------------------------------------------------------

    @contextmanager
    def _funnel(self, action: str, *, subject: str = "") -> Iterator[None]:
        """Turn docker-py and requests errors raised inside into ``AgentError``s.

        :raises AgentUnreachable: the engine did not answer.
        :raises ImageUnavailable: an image is missing or could not be fetched.
        :raises ContainerNotFound: the engine does not know the container (404).
        :raises ContainerConflict: the container's state conflicts (409), or
            ``RemovalInProgress`` when another caller is removing it already.
        :raises ContainerError: the engine refused or failed the request otherwise.
        """
        try:
            yield
        except AgentError:
            raise
        except docker.errors.ImageNotFound as exc:
            raise self._error(ImageUnavailable, action, _explain(exc), subject) from exc
        except docker.errors.APIError as exc:
            raise self._error(_refusal(exc), action, _explain(exc), subject) from exc
        except _UNREACHABLE as exc:
            raise self._error(AgentUnreachable, action, self._reason(exc), subject) from exc
        except docker.errors.DockerException as exc:
            cls = AgentUnreachable if _is_connection_trouble(exc) else ContainerError
            raise self._error(cls, action, self._reason(exc), subject) from exc

    def _reason(self, exc: BaseException) -> str:
        """A short reason for a failed connection (urllib3's own text is very long)."""
        chain: list[BaseException] = []
        cursor: BaseException | None = exc
        while cursor is not None and len(chain) < 10:
            chain.append(cursor)
            cursor = cursor.__cause__ or cursor.__context__
        if any(isinstance(e, ConnectionRefusedError) for e in chain):
            return "connection refused"
        if any(isinstance(e, (TimeoutError, requests.exceptions.Timeout,
                              urllib3.exceptions.TimeoutError)) for e in chain):
            return f"no answer within {self.timeout:g}s"
        text = str(chain[0])
        return text if len(text) <= 300 else text[:297] + "..."

    def _error(self, cls: type[AgentError], action: str, reason: str,
               subject: str = "") -> AgentError:
        """Build a worker error that names this agent, the action and the reason."""
        what = f"{action} {subject}".strip()
        return cls(f"{self.url}: {what} failed: {reason}",
                   details=[{"path": f"agents/{self.url}", "message": reason}])

    @property
    def client(self) -> docker.DockerClient:
        """The docker-py client, built on first use (negotiates the API version).

        :raises AgentUnreachable: the engine did not answer.
        """
        with self._lock:
            if self._client is None:
                with self._funnel("connect"):
                    self._client = self._connect()
            return self._client

    def _connect(self) -> docker.DockerClient:
        """Build the client and negotiate the API version with the engine.

        A TLS client never takes settings from the environment: requests lets
        ``REQUESTS_CA_BUNDLE`` (set in many images) replace a session's CA, and the
        engine's certificate must be checked against the agent's own CA. docker-py
        asks for the version while building the client, so a TLS client is built
        at the oldest version, cut off from the environment, and then negotiated the
        way docker-py does it.
        """
        if self.tls is None:
            return docker.DockerClient(base_url=self.url, version="auto",
                                       timeout=self.timeout)
        client = docker.DockerClient(base_url=self.url, timeout=self.timeout,
                                     version=docker.constants.MINIMUM_DOCKER_API_VERSION,
                                     tls=self.tls.config())
        client.api.trust_env = False
        client.api._version = client.api.version(api_version=False)["ApiVersion"]
        return client

    @property
    def api(self) -> docker.APIClient:
        """The low-level API client (fewer round trips than the high-level one)."""
        return self.client.api

    def _side_client(self, timeout: float | None) -> docker.APIClient:
        """A separate low-level client with its own timeout (events, exec checks)."""
        side = docker.APIClient(base_url=self.url, version=self.api.api_version,
                                timeout=timeout, tls=self._tls_config())
        side.trust_env = self.tls is None   # see _connect
        return side

    def _tls_config(self) -> docker.tls.TLSConfig | bool:
        """docker-py's ``tls`` argument: the agent's TLS settings, or False."""
        return self.tls.config() if self.tls is not None else False

    def close(self) -> None:
        """Close the connection pool (the agent can be used again afterwards)."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # -- engine ---------------------------------------------------------------------

    def ping(self) -> bool:
        """Return True when the engine answers ``/_ping``.

        :raises AgentUnreachable: it does not.
        """
        with self._funnel("ping"):
            return bool(self.api.ping())

    def is_up(self) -> bool:
        """Return whether the engine answers, never raising."""
        try:
            return self.ping()
        except AgentError:
            return False

    def info(self) -> dict[str, Any]:
        """Return ``{"cpus", "mem" (MiB), "hostname", "version"}`` of the engine.

        :raises AgentUnreachable: the engine did not answer.
        """
        with self._funnel("read engine info"):
            raw = self.api.info()
        return {"cpus": float(raw.get("NCPU", 0)), "mem": int(raw.get("MemTotal", 0)) >> 20,
                "hostname": raw.get("Name", ""), "version": raw.get("ServerVersion", "")}

    # -- images ----------------------------------------------------------------------

    def has_image(self, ref: str) -> bool:
        """Return whether the engine holds the image ``ref``."""
        return self.image_labels(ref) is not None

    def image_labels(self, ref: str) -> dict[str, str] | None:
        """Return the labels of image ``ref`` ({} when it has none), None when absent."""
        try:
            with self._funnel("inspect image", subject=ref):
                raw = self.api.inspect_image(ref)
        except (ImageUnavailable, ContainerNotFound):   # a 404 docker-py did not classify
            return None
        return dict((raw.get("Config") or {}).get("Labels") or {})

    def ensure_image(self, ref: str, *, peers: Iterable[DockerAgent | str] = (),
                     tarball_dir: str | os.PathLike[str] | None = None,
                     auth_config: Mapping[str, str] | None = None,
                     progress: PullProgress | None = None) -> str:
        """Make sure ``ref`` is on this engine; return where it came from.

        Tries, in order: already present (``"present"``), a registry pull (``"pull"``,
        with ``auth_config`` — ``{"username", "password"}`` — when the registry needs
        credentials; ``progress`` is called with coarse progress as it goes), a copy
        from a peer agent that has it (``"peer:<url>"``), the tarball
        ``<tarball_dir>/<tarball_name(ref)>`` (``"tarball"``).

        :raises ImageUnavailable: no source had it (details list every attempt); the
            subclass says why the pull failed when it was the reason
            (``ImageUnauthorized``, ``ImageNotFound``, ``RegistryUnreachable``).
        :raises AgentUnreachable: this engine did not answer.
        """
        if self.has_image(ref):
            return "present"
        tried: list[dict[str, str]] = []
        pull_error: ImageUnavailable | None = None
        sources = self._image_sources(ref, peers, tarball_dir, auth_config, progress)
        for source, attempt in sources:
            try:
                attempt()
                if self.has_image(ref):
                    return source
                tried.append({"path": source, "message": "image still missing afterwards"})
            except AgentUnreachable as exc:
                if source == "pull" or source == "tarball":
                    raise
                tried.append({"path": source, "message": exc.message})
            except AgentError as exc:
                if source == "pull" and isinstance(exc, ImageUnavailable):
                    pull_error = exc
                tried.append({"path": source, "message": exc.message})
        if pull_error is not None and type(pull_error) is not ImageUnavailable:
            raise _pull_refusal(self.url, ref, pull_error, tried)
        raise ImageUnavailable(f"{self.url}: image {ref} is not available from any source",
                               details=tried)

    def _image_sources(self, ref: str, peers: Iterable[DockerAgent | str],
                       tarball_dir: str | os.PathLike[str] | None,
                       auth_config: Mapping[str, str] | None = None,
                       progress: PullProgress | None = None) -> Iterator[tuple[str, Any]]:
        """Yield ``(name, callable)`` for each place the image may come from."""
        yield "pull", lambda: self.pull_image(ref, auth_config=auth_config,
                                              progress=progress)
        for peer in peers:
            other = peer if isinstance(peer, DockerAgent) else DockerAgent(peer)
            if other.url != self.url:
                yield f"peer:{other.url}", lambda other=other: self.copy_image_from(other, ref)
        if tarball_dir is not None:
            path = Path(tarball_dir) / tarball_name(ref)
            if path.is_file():
                yield "tarball", lambda: self.load_image(path)

    def pull_image(self, ref: str, *, auth_config: Mapping[str, str] | None = None,
                   progress: PullProgress | None = None) -> None:
        """Pull ``ref`` from its registry, with ``auth_config`` when given.

        The engine's progress stream is read (``decode=True``) and handed to
        ``progress`` as :class:`PullStatus` values (see :class:`PullTracker`). The
        credentials go to the engine in this request's ``X-Registry-Auth`` header only;
        no error or progress text carries them.

        :raises ImageUnauthorized: the registry refused the credentials (or wants some).
        :raises ImageNotFound: the registry has no such repository or tag.
        :raises RegistryUnreachable: the engine could not reach the registry.
        :raises ImageUnavailable: the pull failed otherwise.
        """
        repo, tag = split_ref(ref)
        tracker = PullTracker(progress)
        with self._funnel("pull image", subject=ref):
            try:
                stream = self.api.pull(repo, tag=tag, stream=True, decode=True,
                                       auth_config=dict(auth_config) if auth_config else None)
                for message in stream:
                    _raise_on_stream_error(message)
                    tracker.feed(message)
            except docker.errors.APIError as exc:
                words = _explain(exc)
                raise self._error(_pull_failure(exc, words), "pull image", words, ref) from exc
        tracker.done()

    def copy_image_from(self, peer: DockerAgent, ref: str) -> None:
        """Stream ``ref`` from ``peer`` (``docker save``) into this engine (``docker load``)."""
        with peer._funnel("save image", subject=ref):
            chunks = peer.api.get_image(ref)
            with self._funnel("load image", subject=ref):
                for message in self.api.load_image(chunks):
                    _raise_on_stream_error(message)

    def import_image(self, rootfs: bytes, ref: str, changes: Sequence[str] = ()) -> None:
        """``docker import`` a root file system tar as ``ref`` with Dockerfile ``changes``.

        :raises ContainerError: the engine refused the import.
        """
        repo, tag = split_ref(ref)
        with self._funnel("import image", subject=ref):
            self.api.import_image(src=rootfs, repository=repo, tag=tag, changes=list(changes))

    def save_image(self, ref: str, path: str | os.PathLike[str]) -> Path:
        """Write ``ref`` as a ``docker save`` tarball to ``path`` (atomically)."""
        target = Path(path)
        partial = target.with_name(target.name + ".part")
        with self._funnel("save image", subject=ref), open(partial, "wb") as out:
            for chunk in self.api.get_image(ref):
                out.write(chunk)
        partial.replace(target)
        return target

    def load_image(self, path: str | os.PathLike[str]) -> list[str]:
        """Load a ``docker save`` tarball into this engine (streamed from the file);
        return the names the engine says it loaded."""
        loaded: list[str] = []
        with self._funnel("load image", subject=str(path)), open(path, "rb") as data:
            for message in self.api.load_image(data):
                _raise_on_stream_error(message)
                text = str(message.get("stream") or "") if isinstance(message, Mapping) else ""
                for word in ("Loaded image: ", "Loaded image ID: "):
                    if text.startswith(word):
                        loaded.append(text[len(word):].strip())
        return loaded

    # -- containers ------------------------------------------------------------------

    def run_instance(self, name: str, spec: Mapping[str, Any], *, labels: Mapping[str, str],
                     env: Mapping[str, str] | None = None,
                     ports: Mapping[str, int] | Sequence[int] = (),
                     address: str = "") -> str:
        """Create and start container ``name`` from a service spec; return its id.

        Idempotent: an existing container of that name is reused (and started when
        it is not running). ``ports`` are the assigned host ports (name → port, or a
        list in spec order); they reach the container as ``PORT0…``/``PORT_<NAME>``
        and ``HOST`` is ``address``. See :func:`worker.containers.container_config`.

        :raises ImageUnavailable: the image is not on this engine.
        :raises ContainerError: the engine refused to create or start it.
        :raises AgentUnreachable: the engine did not answer.
        """
        existing = self.find(name)
        if existing is not None and existing.running:
            return existing.id
        if existing is not None:
            container_id = existing.id
        else:
            self._ensure_volumes(spec, labels)
            config = container_config(name, spec, labels=labels, env=env or {},
                                      ports=ports, address=address)
            container_id = self._create(name, config)
        try:
            with self._funnel("start container", subject=name):
                self.api.start(container_id)
        except ContainerError:
            self.remove(container_id)   # a retry creates it afresh
            raise
        return container_id

    def _create(self, name: str, config: Mapping[str, Any]) -> str:
        """Create the container; on a name conflict (a concurrent run) reuse the winner."""
        host_config = self.api.create_host_config(**config["host_config"])
        try:
            with self._funnel("create container", subject=name):
                created = self.api.create_container(host_config=host_config,
                                                    **config["container"])
        except ContainerError:
            winner = self.find(name)
            if winner is None:
                raise
            return winner.id
        return str(created["Id"])

    def find(self, name_or_id: str) -> ContainerInfo | None:
        """Return the container named (or with id) ``name_or_id``, or None."""
        with self._funnel("list containers"):
            found = self.api.containers(all=True, filters={"name": f"^/{re.escape(name_or_id)}$"})
            if not found and re.fullmatch(r"[0-9a-f]{12,64}", name_or_id):
                found = self.api.containers(all=True, filters={"id": name_or_id})
        return ContainerInfo.from_api(found[0]) if found else None

    def list_instances(self, labels: Mapping[str, str | None] | Iterable[str] = (BERTH_LABEL,)
                       ) -> list[ContainerInfo]:
        """Return every container (running or not) carrying ``labels``.

        ``labels`` is a mapping (``{"berth.service": "web"}``; a None value matches any
        value) or label names; the default lists all Berth containers, none lists every
        container of the engine.
        """
        if isinstance(labels, Mapping):
            wanted = [k if v is None else f"{k}={v}" for k, v in labels.items()]
        else:
            wanted = list(labels)
        with self._funnel("list containers"):
            raw = self.api.containers(all=True, filters={"label": wanted} if wanted else None)
        return [ContainerInfo.from_api(r) for r in raw]

    def remove(self, name_or_id: str, *, stop_timeout: float | None = None) -> bool:
        """Remove a container (killing it, or stopping it first with a grace period).

        Returns False when it did not exist (missing is fine). Its anonymous volumes
        go with it; named volumes stay (:meth:`remove_volume` removes those).
        """
        try:
            with self._funnel("remove container", subject=name_or_id):
                if stop_timeout is not None:
                    self.api.stop(name_or_id, timeout=int(stop_timeout))
                # v=True removes the container's anonymous volumes (those an image
                # declares and the spec does not name); named volumes always stay
                self.api.remove_container(name_or_id, force=True, v=True)
        except ContainerNotFound:
            return False
        except RemovalInProgress:
            # another caller (the reconciler, a second worker) is removing it: the
            # outcome this caller wants is the same, so wait for it
            self._wait_gone(name_or_id)
        return True

    def _wait_gone(self, name_or_id: str) -> None:
        """Block until the engine no longer knows the container.

        :raises ContainerError: when it is still there after the agent's timeout.
        """
        deadline = time.monotonic() + max(self.timeout, 1.0)
        while time.monotonic() < deadline:
            try:
                with self._funnel("inspect container", subject=name_or_id):
                    self.api.inspect_container(name_or_id)
            except ContainerNotFound:
                return
            time.sleep(0.05)
        raise self._error(ContainerError, "remove container",
                          f"still being removed after {max(self.timeout, 1.0):g}s", name_or_id)

    # -- volumes ---------------------------------------------------------------------

    def _ensure_volumes(self, spec: Mapping[str, Any], labels: Mapping[str, str]) -> None:
        """Create the spec's named volumes with Berth's labels before the container.

        Docker would create them from the binds, unlabelled; labelled, they can be
        listed and removed by service. A volume already there is left as it is.
        """
        service = labels.get(BERTH_LABEL, "")
        for volume in volume_names(spec):
            self.ensure_volume(volume, {BERTH_LABEL: service, VOLUME_LABEL: volume})

    def ensure_volume(self, name: str, labels: Mapping[str, str]) -> bool:
        """Create named volume ``name`` with ``labels`` unless it exists; True if created.

        :raises ContainerError: the engine refused.
        :raises AgentUnreachable: the engine did not answer.
        """
        try:
            with self._funnel("inspect volume", subject=name):
                self.api.inspect_volume(name)
            return False
        except ContainerNotFound:
            pass
        with self._funnel("create volume", subject=name):
            self.api.create_volume(name, labels=dict(labels))
        return True

    def list_volumes(self, labels: Mapping[str, str | None] | Iterable[str] = (BERTH_LABEL,)
                     ) -> list[VolumeInfo]:
        """Return the named volumes carrying ``labels``, with size and use where known.

        Sizes come from ``GET /system/df`` (the engine walks each volume); an engine
        whose answer has no usage data gives ``size=None``. In use means a container,
        running or not, mounts it (read from the containers' mounts, which every
        engine reports).
        """
        if isinstance(labels, Mapping):
            wanted = [k if v is None else f"{k}={v}" for k, v in labels.items()]
        else:
            wanted = list(labels)
        with self._funnel("list volumes"):
            raw = self.api.volumes(filters={"label": wanted} if wanted else None)
            usage = _volume_usage(self.api.df())
            mounted = {str(m.get("Name")) for c in self.api.containers(all=True)
                       for m in c.get("Mounts") or [] if m.get("Type") == "volume"}
        return [_volume_info(v, usage.get(str(v.get("Name")), {}), mounted)
                for v in raw.get("Volumes") or []]

    def volume_labels(self, name: str) -> dict[str, str] | None:
        """The labels of named volume ``name``, or None when it is not there.

        :raises AgentUnreachable: the engine did not answer.
        """
        try:
            with self._funnel("inspect volume", subject=name):
                raw = self.api.inspect_volume(name)
        except ContainerNotFound:
            return None
        return dict(raw.get("Labels") or {})

    def remove_volume(self, name: str) -> bool:
        """Remove named volume ``name``; False when it was not there.

        Berth's own toolbox containers that still mount it (left by a worker that died
        while it copied or checked the volume) are removed first when they are all that
        holds it.

        :raises ContainerConflict: a container other than a toolbox one still uses it.
        :raises AgentUnreachable: the engine did not answer.
        """
        try:
            try:
                with self._funnel("remove volume", subject=name):
                    self.api.remove_volume(name)
            except ContainerConflict:
                if not self._remove_toolboxes_on(name):
                    raise
                with self._funnel("remove volume", subject=name):
                    self.api.remove_volume(name)
        except ContainerNotFound:
            return False
        return True

    def _remove_toolboxes_on(self, volume: str) -> bool:
        """Remove the toolbox containers mounting ``volume``; whether any were there."""
        with self._funnel("list toolbox containers", subject=volume):
            found = self.api.containers(all=True, filters={"label": "berth.toolbox=1",
                                                           "volume": volume})
        for container in found:
            self.remove(str(container["Id"]))
        return bool(found)

    def kill(self, name_or_id: str) -> None:
        """Send SIGKILL to a running container (fault tests, benches)."""
        with self._funnel("kill container", subject=name_or_id):
            self.api.kill(name_or_id)

    def events(self, since: float | None = None, until: float | None = None,
               actions: Sequence[str] = LIFECYCLE) -> EventStream:
        """Return a stream of lifecycle events of Berth-labelled containers.

        Iterate it (blocks until the next event); ``close()`` from another thread ends
        the loop; with ``until`` it ends by itself. Uses its own connection. Exec
        events (command health checks) are left out unless asked for in ``actions``.
        """
        api = self._side_client(timeout=None)
        filters = {"type": "container", "label": [BERTH_LABEL], "event": list(actions)}
        with self._funnel("follow events"):
            stream = api.events(since=since, until=until, decode=True, filters=filters)
        return EventStream(self, stream, api)

    def logs(self, name_or_id: str, tail: int | str = 100, follow: bool = False
             ) -> str | Iterator[str]:
        """Return the last ``tail`` lines of stdout+stderr, or follow them as text chunks.

        A followed stream ends quietly when the engine goes idle longer than the
        agent's timeout or the container stops.
        """
        with self._funnel("read logs", subject=name_or_id):
            raw = self.api.logs(name_or_id, stdout=True, stderr=True, tail=tail,
                                follow=follow, stream=follow)
        if not follow:
            return raw.decode("utf-8", "replace")
        return _decoded(raw)

    def exec_check(self, name_or_id: str, cmd: str | Sequence[str], timeout: float = 5
                   ) -> ExecResult:
        """Run ``cmd`` (a string runs with ``/bin/sh -c``) inside a container.

        Returns the exit code and output; a command still running after ``timeout``
        seconds gives ``exit_code=None`` (a failed check).
        """
        argv = ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        with self._funnel("exec", subject=name_or_id):
            exec_id = self.api.exec_create(name_or_id, argv, stdout=True, stderr=True)["Id"]
        with self._funnel("exec", subject=name_or_id):
            output = _run_with_deadline(lambda: self.api.exec_start(exec_id), timeout)
        if output is None:
            return ExecResult(None, f"timed out after {timeout:g}s")
        with self._funnel("inspect exec", subject=name_or_id):
            code = self.api.exec_inspect(exec_id).get("ExitCode")
        return ExecResult(code, output.decode("utf-8", "replace"))

    def run_toolbox(self, image: str, argv: Sequence[str], *,
                    binds: Mapping[str, Mapping[str, str]] | None = None,
                    timeout: float = 30, cap_add: Sequence[str] = ()) -> ExecResult:
        """Run Berth's own command ``argv`` in a short-lived container on this engine.

        For work that must happen on the agent itself (checking or preparing host
        folders): ``binds`` are docker-py binds (``{host: {"bind": path, "mode":
        "ro"|"rw"}}``). The container has no network, no capabilities, no new
        privileges, a read-only root file system and 64 MiB; it is removed afterwards, also
        when it fails. Returns its exit code and output; a command still running after
        ``timeout`` seconds gives ``exit_code=None``. ``cap_add`` gives back single
        capabilities a command needs (``DAC_READ_SEARCH`` to read every file of a
        volume for its checksum, whoever owns it).

        :raises ImageUnavailable: ``image`` is not on this engine.
        :raises ContainerError: the engine refused to create or start it.
        :raises AgentUnreachable: the engine did not answer.
        """
        container_id = self._create_toolbox(image, argv, binds, cap_add)
        try:
            return self._wait_toolbox(container_id, timeout)
        finally:
            self.remove(container_id)

    def start_toolbox(self, image: str, argv: Sequence[str], *,
                      binds: Mapping[str, Mapping[str, str]] | None = None,
                      cap_add: Sequence[str] = ()) -> str:
        """Start a toolbox container (as :meth:`run_toolbox` does) whose command waits
        for ``SIGUSR1`` before it works; its id, for :meth:`finish_toolbox`.

        For work that must follow an event at once (checking a copy the moment its
        last byte is in): the container's start, a quarter of a second here, is paid
        before the event instead of after it.

        :raises ImageUnavailable: ``image`` is not on this engine.
        :raises ContainerError: the engine refused to create or start it.
        :raises AgentUnreachable: the engine did not answer.
        """
        container_id = self._create_toolbox(image, argv, binds, cap_add)
        try:
            with self._funnel("start toolbox container", subject=container_id[:12]):
                self.api.start(container_id)
        except BaseException:
            self.remove(container_id)
            raise
        return container_id

    def finish_toolbox(self, container_id: str, *, timeout: float = 30) -> ExecResult:
        """Signal a container of :meth:`start_toolbox` to work, wait for it to end, and
        remove it (also on failure); its exit code and output, ``exit_code=None`` when
        it still ran after ``timeout`` seconds.

        A signal that comes before the command is ready for it is lost (a container's
        first process ignores what it has no handler for), so it is sent again every
        0.2 s until the container ends.

        :raises AgentUnreachable: the engine did not answer.
        """
        deadline = time.monotonic() + timeout
        try:
            while True:
                with self._funnel("signal toolbox container", subject=container_id[:12]):
                    try:
                        self.api.kill(container_id, signal="SIGUSR1")
                    except docker.errors.APIError as exc:
                        if exc.status_code != 409:   # 409: it has ended already
                            raise
                    try:
                        status = self.api.wait(container_id, timeout=0.2)
                        break
                    except (requests.exceptions.ReadTimeout,
                            requests.exceptions.ConnectionError) as exc:
                        if not _is_read_timeout(exc):
                            raise
                if time.monotonic() > deadline:
                    return ExecResult(None, f"timed out after {timeout:g}s")
            with self._funnel("read toolbox output", subject=container_id[:12]):
                output = self.api.logs(container_id, stdout=True, stderr=True)
            return ExecResult(int(status.get("StatusCode", -1)),
                              output.decode("utf-8", "replace"))
        finally:
            self.remove(container_id)

    def _create_toolbox(self, image: str, argv: Sequence[str],
                        binds: Mapping[str, Mapping[str, str]] | None,
                        cap_add: Sequence[str]) -> str:
        """Create (not start) a toolbox container: no network, no capabilities but
        ``cap_add``, no new privileges, a read-only root file system, 64 MiB."""
        with self._funnel("create toolbox container", subject=image):
            host_config = self.api.create_host_config(
                binds=dict(binds or {}), network_mode="none", cap_drop=["ALL"],
                cap_add=list(cap_add) or None, security_opt=["no-new-privileges"],
                read_only=True, mem_limit="64m")
            created = self.api.create_container(
                image=image, command=list(argv), host_config=host_config,
                labels={"berth.toolbox": "1"})
        return str(created["Id"])

    def read_volume_archive(self, image: str, volume: str, path: str, *,
                            chunk_size: int = ARCHIVE_CHUNK) -> Iterator[bytes]:
        """Stream a tar of ``path`` inside named volume ``volume``, in chunks.

        A helper container of ``image`` (created, never started: no process runs, no
        network) mounts the volume read-only at ``/v``; the engine's archive endpoint
        reads it (``GET /containers/{id}/archive``). Entries are relative (``./…``).
        The helper is removed when the stream ends, fails or is closed.

        :raises ContainerNotFound: ``path`` is not in the volume.
        :raises ImageUnavailable: ``image`` is not on this engine.
        :raises AgentUnreachable: the engine did not answer.
        """
        with self._volume_helper(image, volume, mode="ro") as helper:
            with self._funnel("read volume archive", subject=f"{volume}:{path}"):
                stream, _stat = self.api.get_archive(helper, f"{VOLUME_MOUNT}{path}/.",
                                                     chunk_size=chunk_size)
                yield from coalesced(stream, chunk_size)

    def write_volume_archive(self, image: str, volume: str, path: str,
                             chunks: Iterable[bytes]) -> None:
        """Extract the tar stream ``chunks`` into folder ``path`` of named volume ``volume``.

        The stream goes to the engine as a chunked upload (``PUT /containers/{id}/
        archive``) through a helper container that mounts the volume read-write at
        ``/v``; the folder must exist. The helper is removed afterwards, also on failure.

        :raises ContainerNotFound: ``path`` is not a folder in the volume.
        :raises ContainerError: the engine refused the archive.
        :raises AgentUnreachable: the engine did not answer.
        """
        with self._volume_helper(image, volume, mode="rw") as helper:
            with self._funnel("write volume archive", subject=f"{volume}:{path}"):
                self.api.put_archive(helper, f"{VOLUME_MOUNT}{path}", iter(chunks))

    @contextmanager
    def _volume_helper(self, image: str, volume: str, *, mode: str) -> Iterator[str]:
        """A created (not started) helper container mounting ``volume`` at ``/v``."""
        with self._funnel("create volume helper", subject=volume):
            host_config = self.api.create_host_config(
                binds={volume: {"bind": VOLUME_MOUNT, "mode": mode}}, network_mode="none",
                cap_drop=["ALL"], security_opt=["no-new-privileges"], read_only=True)
            created = self.api.create_container(
                image=image, host_config=host_config,
                network_disabled=True, labels={"berth.toolbox": "1", VOLUME_LABEL: volume})
        helper = str(created["Id"])
        try:
            yield helper
        finally:
            self.remove(helper)

    def _wait_toolbox(self, container_id: str, timeout: float) -> ExecResult:
        """Start the toolbox container and wait for it to end."""
        with self._funnel("start toolbox container", subject=container_id[:12]):
            self.api.start(container_id)
        with self._funnel("wait for toolbox container", subject=container_id[:12]):
            try:
                status = self.api.wait(container_id, timeout=timeout)
            except (requests.exceptions.ReadTimeout,
                    requests.exceptions.ConnectionError) as exc:
                if not _is_read_timeout(exc):
                    raise
                return ExecResult(None, f"timed out after {timeout:g}s")
            output = self.api.logs(container_id, stdout=True, stderr=True)
        return ExecResult(int(status.get("StatusCode", -1)), output.decode("utf-8", "replace"))


def _volume_usage(df: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Volume name → its ``UsageData`` (``Size``, ``RefCount``) from a ``df`` answer."""
    return {str(v.get("Name")): dict(v.get("UsageData") or {})
            for v in df.get("Volumes") or []}


def _volume_info(raw: Mapping[str, Any], usage: Mapping[str, Any],
                 mounted: set[str]) -> VolumeInfo:
    """Build a :class:`VolumeInfo`; the engine says -1 where it does not know a size."""
    name = str(raw.get("Name"))
    size = usage.get("Size")
    return VolumeInfo(name=name, labels=dict(raw.get("Labels") or {}),
                      size=int(size) if isinstance(size, int) and size >= 0 else None,
                      in_use=name in mounted, created=str(raw.get("CreatedAt") or ""))


def _run_with_deadline(call: Any, timeout: float) -> Any:
    """Run ``call`` in a helper thread; None when it is not done within ``timeout``.

    docker-py reads exec output with socket timeouts disabled, so the deadline is
    kept here; a command that hangs keeps its (daemon) reader thread until it ends.
    """
    box: list[Any] = []
    thread = threading.Thread(target=lambda: box.append(_capture(call)), daemon=True)
    thread.start()
    thread.join(timeout)
    if not box:
        return None
    outcome = box[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def _capture(call: Any) -> Any:
    """The result of ``call``, or the exception it raised."""
    try:
        return call()
    except Exception as exc:  # handed back to the caller's thread
        return exc


def _decoded(chunks: Iterable[bytes]) -> Iterator[str]:
    """Decode a followed log stream, ending quietly on idle timeout or disconnect."""
    try:
        for chunk in chunks:
            yield chunk.decode("utf-8", "replace")
    except (*_UNREACHABLE, OSError):
        return


def _raise_on_stream_error(message: Any) -> None:
    """Raise when a progress message of pull/load carries an error."""
    if isinstance(message, Mapping) and (message.get("error") or message.get("errorDetail")):
        detail = message.get("errorDetail") or {}
        raise docker.errors.APIError(str(message.get("error") or detail.get("message")))


def _explain(exc: docker.errors.APIError) -> str:
    """The engine's own words for a refused request."""
    return str(exc.explanation or exc)


def _refusal(exc: docker.errors.APIError) -> type[ContainerError]:
    """The class of an engine's refusal, by its HTTP status (and, for a 409, whether a
    removal is already under way: the engine says so only in words)."""
    if isinstance(exc, docker.errors.NotFound) or exc.status_code == 404:
        return ContainerNotFound
    if exc.status_code == 409:
        if "already in progress" in _explain(exc):
            return RemovalInProgress
        return ContainerConflict
    return ContainerError


_UNAUTHORIZED = ("unauthorized", "authentication required", "no basic auth credentials")
_NOT_FOUND = ("manifest unknown", "not found", "name unknown", "repository does not exist")
_UNREACHABLE_WORDS = ("connection refused", "no such host", "i/o timeout", "dial tcp",
                      "connection reset", "no route to host", "tls handshake timeout",
                      "context deadline exceeded", "server misbehaving")


_PULL_HINTS = {
    "unauthorized": "give Berth the registry's credentials: `berth registries add {host} "
                    "--username USER --password-stdin`",
    "not found": "check the image name and tag the package names, or push the image to "
                 "{host} (a private repository looks missing without credentials)",
    "unreachable": "check that every agent reaches {host} (address, port, firewall)",
}


def _pull_refusal(url: str, ref: str, error: ImageUnavailable,
                  tried: list[dict[str, str]]) -> ImageUnavailable:
    """The error of a failed pull that no other source made good: the reason in a word,
    the engine's own words, every source tried, and what to do."""
    words = (error.details[0]["message"] if error.details else "") or error.message
    host = image_registry(ref)
    return type(error)(f"{url}: pulling {ref} failed: {error.reason} ({words})",
                       details=tried, hint=_PULL_HINTS[error.reason].format(host=host))


def _pull_failure(exc: docker.errors.APIError, words: str) -> type[ImageUnavailable]:
    """Why a pull failed, from the engine's answer (it says so only in words, and a
    missing manifest as a 404)."""
    text = words.lower()
    if any(w in text for w in _UNAUTHORIZED):
        return ImageUnauthorized
    if isinstance(exc, docker.errors.NotFound) or exc.status_code == 404 or any(
            w in text for w in _NOT_FOUND):
        return ImageNotFound   # Docker Hub says "denied" for a missing repository too
    if "denied" in text:
        return ImageUnauthorized
    if any(w in text for w in _UNREACHABLE_WORDS):
        return RegistryUnreachable
    return ImageUnavailable


def _is_read_timeout(exc: BaseException) -> bool:
    """Whether a requests error is a read timeout (docker-py may wrap it)."""
    chain: list[BaseException] = []
    cursor: BaseException | None = exc
    while cursor is not None and len(chain) < 10:
        chain.append(cursor)
        cursor = cursor.__cause__ or cursor.__context__ or (
            cursor.args[0] if cursor.args and isinstance(cursor.args[0], BaseException)
            else None)
    return any(isinstance(e, (requests.exceptions.ReadTimeout,
                              urllib3.exceptions.ReadTimeoutError)) for e in chain)


def _is_connection_trouble(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(word in text for word in ("connection", "timed out", "timeout", "api version"))
