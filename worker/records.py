"""The cluster's record types: one shape per record, and how it is read and written.

Services, generations, instances, deployments and agents are JSON documents in Redis
(``worker/store/cluster.py`` keeps them). Their shapes are declared here once, as
``TypedDict``s, so every module that reads or builds one is checked by mypy against
the same fields. Each type has a ``*_from_json`` (a stored document → the record; a
document from an older Berth is brought up to date there, and only there) and a
``*_to_json`` (the record → the document as stored).

Who changes which record:

- services and generations: ``worker/service_ops.py`` (desired state) — the deployer
  settles a service's status when a deployment ends, through ``worker/deployments.py``;
- deployments: ``worker/deployments.py`` alone creates, advances, finishes and cancels;
- instances: ``worker/instances.py`` (place, start, observe, stop);
- agents: ``worker/agents.py`` (register, drain, heartbeat, remove).

Draining is stored once, as the agent's ``drain`` flag; the stored ``state`` says only
whether the engine answers (``up`` or ``unreachable``). The record as read shows
``state: draining`` for a reachable agent being drained, as the API always has.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict, cast

#: Any JSON value, and a JSON object as stored at one key: the shape below the records.
JSON = None | bool | int | float | str | list["JSON"] | dict[str, "JSON"]
Document = dict[str, JSON]

__all__ = [
    "PackageRef", "Service", "Generation", "Instance", "InstanceVolume", "Step", "Progress",
    "Deployment", "MoveRequest", "Allocation", "Capacity", "Agent",
    "ACTIVE_DEPLOYMENT", "FINISHED_DEPLOYMENT", "DEPLOYMENT_KINDS",
    "AGENT_UP", "AGENT_UNREACHABLE", "AGENT_DRAINING",
    "service_from_json", "service_to_json", "generation_from_json", "generation_to_json",
    "instance_from_json", "instance_to_json", "deployment_from_json", "deployment_to_json",
    "agent_from_json", "agent_to_json", "agent_state", "RecordInvalid", "JSON", "Document",
    "Backup", "BackupVolume", "BACKUP_STATES", "backup_from_json", "backup_to_json",
    "counts_healthy",
]

ACTIVE_DEPLOYMENT = ("queued", "running")
FINISHED_DEPLOYMENT = ("succeeded", "failed", "cancelled")
DEPLOYMENT_KINDS = ("install", "scale", "upgrade", "rollback", "restart", "uninstall",
                    "recover", "move", "backup", "restore")
AGENT_UP, AGENT_UNREACHABLE, AGENT_DRAINING = "up", "unreachable", "draining"


class RecordInvalid(ValueError):
    """A stored document lacks a field every record of its kind has."""


class PackageRef(TypedDict):
    """Which package a service runs."""

    name: str
    version: str
    repository: str


class Service(TypedDict):
    """A service's desired state (``service:<name>``).

    ``status``: deploying | running | degraded | failed | deleting. ``deployment``: the
    id of the deployment in progress, or None.
    """

    name: str
    package: PackageRef
    options: dict[str, Any]
    secret_paths: NotRequired[list[str]]   # absent in records from before it was kept
    generated_secrets: NotRequired[dict[str, Any]]  # path -> sealed value Berth made
    spec: dict[str, Any]
    instances: int
    generation: int
    status: str
    status_reason: NotRequired[str | None]  # why degraded, e.g. waiting for an agent
    cluster: NotRequired[str]               # absent: Berth's own agents (``default``)
    deployment: str | None
    created_at: float
    updated_at: float
    created_by: str
    updated_by: str
    rev: NotRequired[int]


class Generation(TypedDict):
    """One entry of a service's generation history (``service:<name>:generations``)."""

    generation: int
    kind: str
    package: PackageRef
    options: dict[str, Any]
    secret_paths: NotRequired[list[str]]
    spec: dict[str, Any]
    instances: int
    created_at: float
    actor: str


class InstanceVolume(TypedDict):
    """A named volume an instance is bound to, and the agent that holds it."""

    name: str
    agent: str


class Instance(TypedDict):
    """One container of a service on one agent (``instance:<id>``).

    ``state``: placed | starting | running | unhealthy | stopping | stopped | failed |
    lost. ``health``: unknown | healthy | unhealthy | none. ``resident``: the spec
    mounts named volumes that are not ``replaceable``, so the instance is bound to the
    agent in ``volumes``: when that agent stops answering it waits for it (``lost``,
    never replaced elsewhere with empty volumes) and runs there again when it answers.
    """

    id: str
    service: str
    generation: int
    agent: str
    container: str
    container_id: str | None
    ports: dict[str, int]
    port_list: list[int]
    address: str
    state: str
    health: str
    created_at: float
    started_at: float | None
    healthy_at: NotRequired[float | None]
    failures: int
    error: NotRequired[str | None]
    deployment: NotRequired[str]
    cpus: NotRequired[float]
    mem: NotRequired[int]
    resident: NotRequired[bool]       # absent in records from before it was kept
    volumes: NotRequired[list[InstanceVolume]]
    links: NotRequired[dict[str, dict[str, Any]]]   # option → endpoint used at create
    rev: NotRequired[int]


class Step(TypedDict):
    """One step of a deployment's log."""

    name: str
    status: str
    message: str
    at: float


class Progress(TypedDict):
    """How far a deployment got."""

    total: int
    placed: int
    started: int
    healthy: int
    failed: NotRequired[int]


class MoveRequest(TypedDict):
    """What a ``move`` deployment moves (``instance`` from agent ``source`` to ``target``)
    and how far it got: ``phase`` (requested | stopped | copied | started | done),
    ``created`` (the volumes it made on the target: only those go on a roll back),
    ``new_instance`` (the instance that runs on the target)."""

    instance: str
    source: str
    target: str
    accept_empty: bool
    phase: NotRequired[str]
    created: NotRequired[list[str]]
    new_instance: NotRequired[str]


class Deployment(TypedDict):
    """One change being rolled out (``deployment:<id>``).

    ``kind``: one of :data:`DEPLOYMENT_KINDS`; ``status``: queued | running |
    succeeded | failed | cancelled.
    """

    id: str
    service: str
    kind: str
    status: str
    generation: int
    instances: int
    steps: list[Step]
    progress: Progress
    error: str | None
    error_details: NotRequired[list[dict[str, str]]]
    actor: str
    created_at: float
    updated_at: float
    finished_at: float | None
    reason: NotRequired[str]          # recover: why
    rollback_to: NotRequired[int]     # rollback: the generation returned to
    delete_data: NotRequired[bool]    # uninstall: remove the service's named volumes too
    move: NotRequired[MoveRequest]    # move: which instance goes where, and how far it got
    backup: NotRequired[str]          # backup, or an upgrade that takes one first: its id
    restore: NotRequired[str]         # restore, or a rollback with its data: the backup
    restore_agent: NotRequired[str]   # a restore onto this agent (the admin's ``agent``)
    rev: NotRequired[int]


class Allocation(TypedDict):
    """What the instances on an agent reserve."""

    cpus: float
    mem: int
    ports: list[int]


class Capacity(TypedDict):
    """What an agent offers: cpus and memory in MiB."""

    cpus: float
    mem: int


class Agent(TypedDict):
    """A Docker engine that runs instances (``agent:<id>``).

    ``state`` as read: up | unreachable | draining; as stored: up | unreachable
    (draining is the ``drain`` flag). ``instances`` is only in what the API answers.
    """

    id: str
    url: str
    address: str
    attributes: dict[str, str]
    capacity: Capacity
    port_range: list[int]
    allocated: Allocation
    drain: bool
    state: str
    last_seen: float
    engine: NotRequired[dict[str, str]]
    registered_at: NotRequired[float]
    registered_by: NotRequired[str]
    instances: NotRequired[list[str]]
    rev: NotRequired[int]


def _checked(doc: Mapping[str, object], kind: str, required: frozenset[str]) -> dict[str, Any]:
    """A copy of ``doc`` once its identity fields are there.

    :raises RecordInvalid: naming the kind and the missing fields.
    """
    missing = sorted(key for key in required if key not in doc)
    if missing:
        raise RecordInvalid(f"a stored {kind} record lacks {', '.join(missing)}")
    return dict(doc)


def service_from_json(doc: Mapping[str, object]) -> Service:
    """A service record from its stored document."""
    return cast(Service, _checked(doc, "service", frozenset({"name", "spec"})))


def service_to_json(service: Service) -> Document:
    """A service as stored."""
    return cast(Document, dict(service))


def generation_from_json(doc: Mapping[str, object]) -> Generation:
    """A generation entry from its stored document."""
    return cast(Generation, _checked(doc, "generation", frozenset({"generation", "spec"})))


def generation_to_json(entry: Generation) -> Document:
    """A generation entry as stored."""
    return cast(Document, dict(entry))


def instance_from_json(doc: Mapping[str, object]) -> Instance:
    """An instance record from its stored document."""
    return cast(Instance, _checked(doc, "instance", frozenset({"id", "service", "agent"})))


def instance_to_json(instance: Instance) -> Document:
    """An instance as stored."""
    return cast(Document, dict(instance))


def deployment_from_json(doc: Mapping[str, object]) -> Deployment:
    """A deployment record from its stored document."""
    return cast(Deployment, _checked(doc, "deployment", frozenset({"id", "service", "status"})))


def deployment_to_json(deployment: Deployment) -> Document:
    """A deployment as stored."""
    return cast(Document, dict(deployment))


def agent_state(agent: Mapping[str, object]) -> str:
    """The state an agent shows: ``unreachable``, else ``draining`` when drained, else ``up``."""
    if agent.get("state") == AGENT_UNREACHABLE:
        return AGENT_UNREACHABLE
    return AGENT_DRAINING if agent.get("drain") else AGENT_UP


def agent_from_json(doc: Mapping[str, object]) -> Agent:
    """An agent record from its stored document, with its shown ``state``.

    A document from before draining was stored once (``state: draining``) reads as
    drained.
    """
    agent = _checked(doc, "agent", frozenset({"id", "url"}))
    agent["drain"] = bool(agent.get("drain")) or agent.get("state") == AGENT_DRAINING
    agent["state"] = agent_state(agent)
    return cast(Agent, agent)


def agent_to_json(agent: Agent) -> Document:
    """An agent as stored: draining only as the ``drain`` flag, never as a state."""
    doc = cast(Document, dict(agent))
    doc.pop("instances", None)
    doc["drain"] = bool(agent.get("drain")) or agent.get("state") == AGENT_DRAINING
    doc["state"] = AGENT_UNREACHABLE if agent.get("state") == AGENT_UNREACHABLE else AGENT_UP
    return doc


# backups --------------------------------------------------------------------------------
BACKUP_STATES = ("queued", "running", "succeeded", "failed", "deleting")


class BackupVolume(TypedDict):
    """One named volume in a backup: where the spec mounted it, how big, its checksum."""

    name: str
    container_path: str
    size: int | None          # bytes of its tar stream
    checksum: str | None      # of the files, as the agent computes it (``volume_checksum``)


class Backup(TypedDict):
    """A copy of a service's named volumes in the backup store (``backup:<id>``).

    ``status``: queued | running | succeeded | failed | deleting. ``options`` are the
    service's at the time, secret values masked (a backup record never holds a secret,
    sealed or not). ``consistency``: ``stopped`` (the instance was stopped for the copy)
    or ``hook`` (the package's backup hook ran in the running container first).
    ``store``: ``{"kind": "volume", "agent", "volume"}`` or ``{"kind": "directory",
    "path"}``. Backups outlive their service: uninstall keeps them.
    """

    id: str
    service: str
    package: PackageRef
    generation: int
    options: dict[str, Any]
    instance: str | None
    agent: str | None
    volumes: list[BackupVolume]
    size: int | None
    checksum: str | None
    status: str
    error: str | None
    consistency: str
    store: dict[str, str]
    reason: str               # manual | upgrade
    deployment: str
    actor: str
    created_at: float
    finished_at: float | None
    keep: NotRequired[int]    # retention: the service's newest this many are kept
    rev: NotRequired[int]


def backup_from_json(doc: Mapping[str, object]) -> Backup:
    """A backup record from its stored document."""
    return cast(Backup, _checked(doc, "backup", frozenset({"id", "service", "status"})))


def backup_to_json(backup: Backup) -> Document:
    """A backup as stored."""
    return cast(Document, dict(backup))


def counts_healthy(instance: Mapping[str, Any]) -> bool:
    """Running and healthy (or without a health check): it serves. (Here, by the
    record, so that the endpoints and the link resolution need not import the
    instance runner; ``worker.instances`` re-exports it.)"""
    return instance.get("state") == "running" and instance.get("health") in ("healthy", "none")
