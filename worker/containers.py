"""How one instance of a service spec becomes a Docker container (pure, no I/O).

Also the plain records the Docker funnel hands back: :class:`ContainerInfo`,
:class:`ContainerEvent`, :class:`ExecResult`.

:func:`container_config` maps a validated service spec (``catalog/schemas/
service.schema.json``) plus what the deployer decided (labels, assigned ports, the
agent's address) to the arguments of docker-py's ``create_container`` and
``create_host_config``; :func:`instance_env` computes the environment Marathon users
expect: ``PORT0…``, ``PORT_<NAME>``, ``PORT``, ``PORTS`` and ``HOST``, plus
``BERTH_HOST`` (the same address under a name no application reads by accident:
Node.js servers, for one, listen on ``$HOST``).

Decisions: ``command`` (shell form) runs as ``/bin/sh -c <command>`` replacing the
image entrypoint, like Marathon's ``cmd``; ``args`` replace the image ``CMD`` and go to
its entrypoint. Restart policy is ``no``: Berth's reconciler replaces dead instances,
not Docker. ``init`` is on (Docker's tini as PID 1): signals reach the service, so
stopping a container is quick even when its program ignores SIGTERM as PID 1.
``privileged`` is never passed (the catalog refuses such specs first).
Berth's own labels win over the spec's labels of the same name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ContainerInfo", "ContainerEvent", "ExecResult", "container_config", "instance_env",
           "port_values"]


@dataclass(frozen=True)
class ContainerInfo:
    """One container as the engine lists it."""

    id: str
    name: str
    state: str                      # created, running, exited, dead, …
    status: str                     # human text: "Up 3 seconds", "Exited (137) …"
    image: str
    labels: Mapping[str, str] = field(default_factory=dict)
    created: float = 0.0

    @property
    def running(self) -> bool:
        return self.state == "running"

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> ContainerInfo:
        """Build from one entry of ``GET /containers/json``."""
        names = raw.get("Names") or [""]
        return cls(id=raw["Id"], name=names[0].lstrip("/"), state=raw.get("State", ""),
                   status=raw.get("Status", ""), image=raw.get("Image", ""),
                   labels=dict(raw.get("Labels") or {}), created=float(raw.get("Created", 0)))


@dataclass(frozen=True)
class ContainerEvent:
    """One engine event about a Berth-labelled container."""

    action: str                     # create, start, die, kill, stop, destroy, oom, …
    container_id: str
    name: str
    attributes: Mapping[str, str]   # labels plus name, image, exitCode
    time: float

    @property
    def service(self) -> str | None:
        return self.attributes.get("berth.service")

    @property
    def instance(self) -> str | None:
        return self.attributes.get("berth.instance")

    @property
    def exit_code(self) -> int | None:
        code = self.attributes.get("exitCode")
        return int(code) if code not in (None, "") else None

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> ContainerEvent:
        """Build from one decoded ``GET /events`` message."""
        actor = raw.get("Actor") or {}
        attributes = dict(actor.get("Attributes") or {})
        when = raw.get("timeNano")
        return cls(action=str(raw.get("Action") or raw.get("status") or ""),
                   container_id=str(actor.get("ID") or raw.get("id") or ""),
                   name=attributes.get("name", ""), attributes=attributes,
                   time=when / 1e9 if when else float(raw.get("time", 0)))


@dataclass(frozen=True)
class ExecResult:
    """Outcome of a command run in a container; ``exit_code`` None means timed out."""

    exit_code: int | None
    output: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def port_values(spec: Mapping[str, Any], ports: Mapping[str, int] | Sequence[int]) -> list[int]:
    """Assigned host ports in spec order, from a name → port mapping or a list."""
    if not isinstance(ports, Mapping):
        return [int(p) for p in ports]
    names = [p.get("name") for p in spec.get("ports") or []]
    if names and all(n in ports for n in names):
        return [int(ports[n]) for n in names]  # type: ignore[index]
    return [int(p) for p in ports.values()]


def _env_name(name: str) -> str:
    """``PORT_<NAME>`` suffix: upper-case, anything but letters and digits becomes ``_``."""
    return re.sub(r"[^A-Z0-9]", "_", name.upper())


def instance_env(spec: Mapping[str, Any], ports: Mapping[str, int] | Sequence[int],
                 address: str) -> dict[str, str]:
    """The environment Berth adds: ``PORT0…``, ``PORT_<NAME>``, ``PORT``, ``PORTS``,
    ``BERTH_HOST`` and ``HOST`` (kept for Marathon packages)."""
    values = port_values(spec, ports)
    env: dict[str, str] = {}
    for index, value in enumerate(values):
        env[f"PORT{index}"] = str(value)
    for port, value in zip(spec.get("ports") or [], values, strict=False):
        if port.get("name"):
            env[f"PORT_{_env_name(port['name'])}"] = str(value)
    if values:
        env["PORT"] = str(values[0])
        env["PORTS"] = ",".join(str(v) for v in values)
    if address:
        env["BERTH_HOST"] = address
        env["HOST"] = address
    return env


def _command(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Entrypoint and command from the spec's ``command`` (shell form) or ``args``."""
    if spec.get("command"):
        return {"entrypoint": ["/bin/sh", "-c"], "command": [str(spec["command"])]}
    if spec.get("args"):
        return {"command": [str(a) for a in spec["args"]]}
    return {}


def _binds(spec: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Named volumes and host paths as docker-py ``binds``."""
    binds: dict[str, dict[str, str]] = {}
    for volume in spec.get("volumes") or []:
        source = volume.get("name") or volume.get("hostPath")
        if source:
            mode = "ro" if volume.get("readOnly") else "rw"
            binds[str(source)] = {"bind": str(volume["containerPath"]), "mode": mode}
    return binds


def _bridge_ports(spec: Mapping[str, Any], values: list[int], address: str
                  ) -> tuple[list[Any], dict[str, Any]]:
    """Exposed container ports and their host bindings on ``address`` (bridge mode)."""
    exposed: list[Any] = []
    bindings: dict[str, Any] = {}
    for port, host_port in zip(spec.get("ports") or [], values, strict=False):
        container_port = int(port.get("containerPort") or host_port)
        for protocol in str(port.get("protocol") or "tcp").split(","):  # "tcp,udp": both
            exposed.append((container_port, protocol))
            bindings[f"{container_port}/{protocol}"] = ((address, host_port) if address
                                                        else host_port)
    return exposed, bindings


def _limits(spec: Mapping[str, Any]) -> dict[str, Any]:
    """``mem`` (MiB) and ``cpus`` as Docker limits."""
    limits: dict[str, Any] = {}
    if spec.get("mem"):
        limits["mem_limit"] = f"{int(spec['mem'])}m"
    if spec.get("cpus"):
        limits["nano_cpus"] = int(float(spec["cpus"]) * 1e9)
    return limits


def container_config(name: str, spec: Mapping[str, Any], *, labels: Mapping[str, str],
                     env: Mapping[str, str], ports: Mapping[str, int] | Sequence[int],
                     address: str) -> dict[str, dict[str, Any]]:
    """``{"container": create_container kwargs, "host_config": create_host_config kwargs}``."""
    values = port_values(spec, ports)
    environment = {**{k: str(v) for k, v in (spec.get("env") or {}).items()},
                   **{k: str(v) for k, v in env.items()},
                   **instance_env(spec, ports, address)}
    host_config: dict[str, Any] = {"restart_policy": {"Name": "no"}, "binds": _binds(spec),
                                   "init": True, **_limits(spec)}
    container: dict[str, Any] = {"image": spec["image"], "name": name,
                                 "environment": environment,
                                 "labels": {**(spec.get("labels") or {}), **labels},
                                 **_command(spec)}
    if spec.get("user"):
        container["user"] = str(spec["user"])
    if spec.get("network", "host") == "bridge":
        exposed, bindings = _bridge_ports(spec, values, address)
        host_config.update(network_mode="bridge", port_bindings=bindings)
        container["ports"] = exposed
    else:
        host_config["network_mode"] = "host"
    return {"container": container, "host_config": host_config}


VOLUME_LABEL = "berth.volume"


@dataclass(frozen=True)
class VolumeInfo:
    """One named volume as the engine lists it (``size`` None: the engine did not say)."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    size: int | None = None         # bytes, from ``GET /system/df`` UsageData
    in_use: bool = False            # a container (running or not) mounts it
    created: str = ""

    @property
    def service(self) -> str:
        return str(self.labels.get("berth.service", ""))


def volume_names(spec: Mapping[str, Any]) -> list[str]:
    """The named volumes of a spec (host paths are not volumes), in spec order."""
    return [str(v["name"]) for v in spec.get("volumes") or [] if v.get("name")]
