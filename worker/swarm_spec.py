"""How a Berth service spec becomes a Docker Swarm service (pure, no I/O).

:func:`service_kwargs` maps a validated spec (``catalog/schemas/service.schema.json``)
plus what the Swarm backend decided (generation, replicas, port blocks) to the keyword
arguments of docker-py's ``client.services.create`` / ``Service.update``.
:func:`refusals` lists what a Swarm cannot run as Berth means it, so an install is
refused with the reasons before anything is created (a constraint is never dropped).

Mapping (``docs/cluster.md``, "Swarm"):

- ``instances`` → replicated mode; ``cpus``/``mem`` → limits and equal reservations
  (so Swarm's scheduler counts them, as Berth's placement does);
- ``env``, ``command`` (``/bin/sh -c``, replacing the entrypoint) or ``args``;
- labels: the spec's, then Berth's own (``berth.service``, ``berth.generation``,
  ``berth.cluster``) on the service, and on every task's container the same with
  ``berth.swarm.service`` for ``berth.service`` (see :func:`container_labels`);
- named volumes → volume mounts labelled like Berth's own (``berth.service``,
  ``berth.volume``); host folders are refused (Berth checks those on its own agents);
- ports with ``network: host``: one block of :data:`BLOCK` ports per port and
  generation parity, ``PORTn`` = block base + the task's slot (a Swarm template), so
  tasks on one node never collide and an old and a new task of the same slot (a
  start-first update) neither; with ``network: bridge``, published ports in ingress mode
  when the Swarm has an ingress network, else in host mode;
- constraints: ``CLUSTER`` → ``node.hostname==v`` / ``node.labels.<a>==v``; ``UNIQUE``
  and ``MAX_PER n`` on ``hostname`` → ``MaxReplicas`` 1 / n; ``GROUP_BY`` → a spread
  preference; anything else is refused; named volumes not marked ``shared`` (as on
  Berth's own agents, :func:`catalog.placement.exclusive_volumes`) → ``MaxReplicas`` 1,
  so two tasks on one node never write one volume;
- ``healthCheck`` → the container's health check (command as given; http and tcp
  become ``wget`` / ``nc`` commands the image runs, as busybox images can);
- ``upgradeStrategy`` → ``UpdateConfig`` (and the same ``RollbackConfig``);
- links to other services (``links``, ``@@berth-link:…@@`` placeholders) are refused:
  only the Docker-engine backend fills them, when it creates a container, from the
  linked service's current endpoints; a Swarm task would get the placeholder itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from docker.types import (
    EndpointSpec,
    Healthcheck,
    Mount,
    Resources,
    RestartPolicy,
    RollbackConfig,
    ServiceMode,
    UpdateConfig,
)

from catalog.links import PLACEHOLDER_RE
from catalog.placement import exclusive_volumes

from .containers import VOLUME_LABEL

__all__ = ["BLOCK", "SwarmPlan", "refusals", "service_kwargs", "port_blocks_needed",
           "max_per_node",
           "task_ports", "update_config", "placement", "healthcheck", "swarm_name"]

BLOCK = 100          # ports per block: slots 1..99 (``PORTn`` = base + slot)
MAX_REPLICAS = BLOCK - 1
NANO = 1_000_000_000


@dataclass(frozen=True)
class SwarmPlan:
    """What the backend decided for one generation of a service."""

    service: str
    generation: int
    replicas: int
    cluster: str = ""
    blocks: tuple[tuple[int, int], ...] = ()   # per spec port: (even base, odd base)
    ingress: bool = False                      # the Swarm has an ingress network
    room: int | None = None                    # tasks the nodes take beyond ``replicas``
                                               # (None: no per-node limit applies)


def swarm_name(service: str) -> str:
    """The Swarm service name of a Berth service (``berth-<name>``)."""
    return f"berth-{service}"


def _host_network(spec: Mapping[str, Any]) -> bool:
    return spec.get("network", "host") != "bridge"


def port_blocks_needed(spec: Mapping[str, Any]) -> int:
    """How many port blocks a service takes: two (generation parity) per assigned port
    on the host network; none for fixed ports or bridge networking."""
    if not _host_network(spec):
        return 0
    return 2 * sum(1 for p in spec.get("ports") or [] if not int(p.get("hostPort") or 0))


# refusals ------------------------------------------------------------------------------
def refusals(spec: Mapping[str, Any]) -> list[dict[str, str]]:
    """Every part of ``spec`` a Swarm cannot run as Berth means it, as problems."""
    problems = _constraint_problems(spec.get("constraints") or [])
    problems += _link_problems(spec)
    for index, volume in enumerate(spec.get("volumes") or []):
        if volume.get("hostPath"):
            problems.append({"path": f"volumes/{index}/hostPath", "message": (
                "host folders are not mounted on a Swarm: Berth checks them on its own "
                "agents only; use a named volume")})
    if int(spec.get("instances", 1)) > MAX_REPLICAS and port_blocks_needed(spec):
        problems.append({"path": "instances", "message": (
            f"at most {MAX_REPLICAS} instances with assigned host-network ports on a Swarm")})
    if _fixed_host_ports(spec) and _max_replicas(spec.get("constraints") or []) not in (None, 1):
        problems.append({"path": "ports", "message": (
            "a fixed host port on the host network allows one task per node: MAX_PER "
            "above 1 would collide")})
    return problems


LINKS_REFUSED = "links to other services are not supported on a Swarm cluster yet"


def _link_problems(spec: Mapping[str, Any]) -> list[dict[str, str]]:
    """The spec's links, and any link placeholder left in it: a Swarm task would get
    the placeholder itself, never the linked service's address."""
    problems = [{"path": f"links/{n}", "message": (
        f"{LINKS_REFUSED}: option {link.get('option')!r} links to service "
        f"{link.get('service')!r}, whose address Berth fills only on its own agents")}
        for n, link in enumerate(spec.get("links") or [])]
    if problems:
        return problems
    return [{"path": path, "message": f"{LINKS_REFUSED}: {path} holds a link placeholder"}
            for path in _placeholder_paths(spec, "")][:10]


def _placeholder_paths(value: Any, path: str) -> list[str]:
    """Where in ``value`` a ``@@berth-link:…@@`` placeholder is (spec paths)."""
    if isinstance(value, str):
        return [path.lstrip("/")] if PLACEHOLDER_RE.search(value) else []
    if isinstance(value, Mapping):
        return [p for k, v in value.items() for p in _placeholder_paths(v, f"{path}/{k}")]
    if isinstance(value, list | tuple):
        return [p for n, v in enumerate(value) for p in _placeholder_paths(v, f"{path}/{n}")]
    return []


def _fixed_host_ports(spec: Mapping[str, Any]) -> list[int]:
    if not _host_network(spec):
        return []
    return [int(p["hostPort"]) for p in spec.get("ports") or [] if int(p.get("hostPort") or 0)]


def _constraint_problems(constraints: Sequence[Sequence[str]]) -> list[dict[str, str]]:
    problems = []
    for index, constraint in enumerate(constraints):
        reason = _constraint_refusal(list(constraint))
        if reason:
            problems.append({"path": f"constraints/{index}", "message": reason})
    return problems


def _constraint_refusal(constraint: list[str]) -> str | None:
    """Why a Swarm cannot express a constraint, or None when it can."""
    if len(constraint) < 2:
        return "a constraint needs an attribute and an operator"
    attribute, operator = constraint[0], constraint[1].upper()
    value = constraint[2] if len(constraint) > 2 else None
    if operator == "CLUSTER":
        return None if value is not None else "CLUSTER needs a value"
    if operator in ("UNIQUE", "MAX_PER"):
        if attribute != "hostname":
            return (f"{operator} on {attribute!r}: a Swarm limits tasks per node only "
                    f"(use it on hostname)")
        if operator == "MAX_PER" and not (value or "").isdigit():
            return "MAX_PER needs a whole number"
        return None
    if operator == "GROUP_BY":
        return None
    if operator in ("LIKE", "UNLIKE"):
        return (f"{operator} (a regular expression on {attribute!r}) has no Swarm placement "
                f"constraint: Swarm matches node attributes by == and != only")
    return f"unknown operator {constraint[1]!r}"


# placement -----------------------------------------------------------------------------
def _node_field(attribute: str) -> str:
    return "node.hostname" if attribute == "hostname" else f"node.labels.{attribute}"


def _max_replicas(constraints: Sequence[Sequence[str]]) -> int | None:
    limits = []
    for constraint in constraints:
        if len(constraint) >= 2 and constraint[0] == "hostname":
            operator = constraint[1].upper()
            if operator == "UNIQUE":
                limits.append(1)
            elif operator == "MAX_PER" and len(constraint) > 2:
                limits.append(int(constraint[2]))
    return min(limits) if limits else None


def max_per_node(spec: Mapping[str, Any]) -> int | None:
    """The per-node task limit the spec puts on a Swarm (``MaxReplicas``), or None."""
    return placement(spec).get("maxreplicas")


def placement(spec: Mapping[str, Any]) -> dict[str, Any]:
    """``constraints``, ``preferences`` and ``maxreplicas`` for ``services.create``."""
    constraints = spec.get("constraints") or []
    rules = [f"{_node_field(c[0])}=={c[2]}" for c in constraints
             if len(c) > 2 and c[1].upper() == "CLUSTER"]
    spread = [("spread", _node_field(c[0])) for c in constraints
              if len(c) >= 2 and c[1].upper() == "GROUP_BY" and c[0] != "hostname"]
    limit = _max_replicas(constraints)
    if _fixed_host_ports(spec) or exclusive_volumes(spec):
        limit = 1   # a fixed port, or a named volume two tasks on a node would share
    out: dict[str, Any] = {}
    if rules:
        out["constraints"] = rules
    if spread:
        out["preferences"] = spread
    if limit is not None:
        out["maxreplicas"] = limit
    return out


# ports ---------------------------------------------------------------------------------
def _slot_template(base: int) -> str:
    """``base + slot`` as a Swarm template (no arithmetic there: the block's prefix and
    the slot in two digits; the slot is a string in the template's context)."""
    return (f"{base // BLOCK}{{{{if lt (len .Task.Slot) 2}}}}0{{{{end}}}}"
            f"{{{{.Task.Slot}}}}")


def task_ports(spec: Mapping[str, Any], plan: SwarmPlan) -> list[str]:
    """Each spec port's host port for the tasks of this generation: a fixed number, or
    a template expanding to the block base plus the task's slot."""
    out: list[str] = []
    blocks = iter(plan.blocks)
    for port in spec.get("ports") or []:
        fixed = int(port.get("hostPort") or 0)
        if fixed or not _host_network(spec):
            out.append(str(fixed or port.get("containerPort") or 0))
            continue
        even, odd = next(blocks)
        out.append(_slot_template(odd if plan.generation % 2 else even))
    return out


def slot_port(base: int, slot: int) -> int:
    """The port a task of slot ``slot`` listens on in a block (the template's value)."""
    return base + slot


def _port_env(spec: Mapping[str, Any], values: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for index, value in enumerate(values):
        env[f"PORT{index}"] = value
    for port, value in zip(spec.get("ports") or [], values, strict=False):
        if port.get("name"):
            name = "".join(c if c.isalnum() else "_" for c in str(port["name"]).upper())
            env[f"PORT_{name}"] = value
    if values:
        env["PORT"] = values[0]
        env["PORTS"] = ",".join(values)
    return env


def _endpoint(spec: Mapping[str, Any], ingress: bool) -> EndpointSpec | None:
    """Published ports of a bridge-networked spec (ingress when the Swarm has it)."""
    if _host_network(spec) or not spec.get("ports"):
        return None
    mode = "ingress" if ingress else "host"
    ports: dict[int, tuple[int, str, str]] = {}
    for port in spec["ports"]:
        target = int(port.get("containerPort") or port.get("hostPort") or 0)
        published = int(port.get("hostPort") or 0) or target
        ports[published] = (target, str(port.get("protocol") or "tcp").split(",")[0], mode)
    return EndpointSpec(mode="vip" if ingress else "dnsrr", ports=ports)


# health and updates --------------------------------------------------------------------
def _port_ref(spec: Mapping[str, Any], health: Mapping[str, Any]) -> str:
    """The shell expression of the port a health check probes (inside the task)."""
    ports = spec.get("ports") or []
    index = int(health.get("portIndex") or 0)
    if health.get("portName"):
        index = next((i for i, p in enumerate(ports) if p.get("name") == health["portName"]),
                     index)
    if not ports:
        return "80"
    port = ports[min(index, len(ports) - 1)]
    if not _host_network(spec):
        return str(int(port.get("containerPort") or port.get("hostPort") or 80))
    return f"${{PORT{min(index, len(ports) - 1)}}}"


def healthcheck(spec: Mapping[str, Any]) -> Healthcheck | None:
    """The container health check of a spec's ``healthCheck`` (None without one)."""
    health = spec.get("healthCheck")
    if not health:
        return None
    protocol = str(health.get("protocol") or "http").lower()
    if health.get("command") or protocol in ("command", "cmd"):
        test = ["CMD-SHELL", str(health.get("command") or "true")]
    elif protocol == "tcp":
        test = ["CMD-SHELL", f"nc -z 127.0.0.1 {_port_ref(spec, health)} || exit 1"]
    else:
        path = str(health.get("path") or "/")
        test = ["CMD-SHELL", f"wget -q -O /dev/null "
                             f"http://127.0.0.1:{_port_ref(spec, health)}{path} || exit 1"]
    return Healthcheck(test=test, interval=int(float(health.get("intervalSeconds", 10)) * NANO),
                       timeout=int(float(health.get("timeoutSeconds", 5)) * NANO),
                       retries=int(health.get("maxConsecutiveFailures", 3)),
                       start_period=int(float(health.get("gracePeriodSeconds", 30)) * NANO))


def update_config(spec: Mapping[str, Any], replicas: int, *, rollback: bool = False,
                  room: int | None = None) -> UpdateConfig:
    """``upgradeStrategy`` as an ``UpdateConfig`` (or ``RollbackConfig``).

    Over-capacity allowed → ``start-first`` with as many at once as it allows; none →
    ``stop-first`` with as many at once as the minimum health capacity spares (one over
    capacity when it spares none, as Berth's own deployer does). A failed update rolls
    back; Swarm watches each new task for the health check's grace and failures.

    ``room`` is how many tasks the eligible nodes take beyond ``replicas`` under a
    per-node limit (``MaxReplicas`` × nodes − replicas): start-first never starts more
    at once than that, and with no room at all it must stop first, one at a time (a
    new task has nowhere to go while the old ones hold every place).
    """
    strategy = spec.get("upgradeStrategy") or {}
    total = max(replicas, 1)
    min_healthy = math.ceil(total * float(strategy.get("minimumHealthCapacity", 1.0)))
    over = math.floor(total * float(strategy.get("maximumOverCapacity", 1.0)))
    if over >= 1:
        order, parallelism = "start-first", min(over, total)
    elif total - min_healthy >= 1:
        order, parallelism = "stop-first", total - min_healthy
    else:
        order, parallelism = "start-first", 1
    if room is not None and order == "start-first":
        if room >= 1:
            parallelism = min(parallelism, room)
        else:
            order, parallelism = "stop-first", 1
    health = spec.get("healthCheck") or {}
    monitor = (float(health.get("intervalSeconds", 10))
               * int(health.get("maxConsecutiveFailures", 3))) if health else 5.0
    kind = RollbackConfig if rollback else UpdateConfig
    return kind(parallelism=parallelism, delay=0, order=order, monitor=int(monitor * NANO),
                failure_action="pause" if rollback else "rollback", max_failure_ratio=0)


# the whole service ---------------------------------------------------------------------
SWARM_SERVICE_LABEL = "berth.swarm.service"


def labels(spec: Mapping[str, Any], plan: SwarmPlan) -> dict[str, str]:
    """The Swarm service's labels: the spec's, then Berth's own (which win)."""
    return {**{str(k): str(v) for k, v in (spec.get("labels") or {}).items()},
            "berth.service": plan.service, "berth.generation": str(plan.generation),
            "berth.cluster": plan.cluster}


def container_labels(spec: Mapping[str, Any], plan: SwarmPlan) -> dict[str, str]:
    """The labels of each task's container.

    Not ``berth.service``: on an engine that is also one of Berth's own agents, that
    label marks containers Berth's reconciler owns (and removes when no instance
    record wants them); a Swarm task's container is the Swarm's.
    """
    own = labels(spec, plan)
    own[SWARM_SERVICE_LABEL] = own.pop("berth.service")
    return own


def _mounts(spec: Mapping[str, Any], service: str) -> list[Mount]:
    return [Mount(target=str(v["containerPath"]), source=str(v["name"]), type="volume",
                  read_only=bool(v.get("readOnly")),
                  labels={"berth.service": service, VOLUME_LABEL: str(v["name"])})
            for v in spec.get("volumes") or [] if v.get("name")]


def _command(spec: Mapping[str, Any]) -> dict[str, Any]:
    if spec.get("command"):
        return {"command": ["/bin/sh", "-c"], "args": [str(spec["command"])]}
    if spec.get("args"):
        return {"args": [str(a) for a in spec["args"]]}
    return {}


def _resources(spec: Mapping[str, Any]) -> Resources | None:
    cpus = int(float(spec["cpus"]) * NANO) if spec.get("cpus") else None
    mem = int(spec["mem"]) * 1024 * 1024 if spec.get("mem") else None
    if cpus is None and mem is None:
        return None
    return Resources(cpu_limit=cpus, mem_limit=mem, cpu_reservation=cpus,
                     mem_reservation=mem)


def service_kwargs(spec: Mapping[str, Any], plan: SwarmPlan) -> dict[str, Any]:
    """Keyword arguments of ``client.services.create(**kwargs)`` for one generation.

    The spec must have passed :func:`refusals` (nothing refused) and its sealed
    values must be opened.
    """
    all_labels = labels(spec, plan)
    env = {**{str(k): str(v) for k, v in (spec.get("env") or {}).items()},
           **_port_env(spec, task_ports(spec, plan))}
    kwargs: dict[str, Any] = {
        "image": str(spec["image"]), "name": swarm_name(plan.service),
        "labels": all_labels, "container_labels": container_labels(spec, plan),
        "mode": ServiceMode("replicated", replicas=plan.replicas),
        "env": [f"{k}={v}" for k, v in env.items()],
        "mounts": _mounts(spec, plan.service),
        "restart_policy": RestartPolicy(condition="any", delay=NANO, max_attempts=0),
        "update_config": update_config(spec, plan.replicas, room=plan.room),
        "rollback_config": update_config(spec, plan.replicas, rollback=True, room=plan.room),
        "init": True, "stop_grace_period": 10 * NANO,
        **_command(spec), **placement(spec)}
    if _host_network(spec):
        kwargs["networks"] = ["host"]
    endpoint = _endpoint(spec, plan.ingress)
    if endpoint is not None:
        kwargs["endpoint_spec"] = endpoint
    resources = _resources(spec)
    if resources is not None:
        kwargs["resources"] = resources
    check = healthcheck(spec)
    if check is not None:
        kwargs["healthcheck"] = check
    if spec.get("user"):
        kwargs["user"] = str(spec["user"])
    return kwargs
