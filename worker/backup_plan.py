"""What a backup is made of, decided before any copying (pure: no agent, no store).

``new_backup`` builds a queued record of one instance (the options masked: a backup
record never holds a secret, clear or sealed); ``pick_instance`` chooses the instance
to copy; ``map_volumes`` says which of a service's volumes a restore writes each
backed-up volume into; ``combined_checksum`` is a backup's one checksum;
``restore_target`` says which agents a restore may place the instances on (where it
writes the data and starts them), or refuses.
"""

from __future__ import annotations

import copy
import hashlib
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from catalog.errors import PlacementError
from catalog.options import MASK, mask_secrets
from catalog.placement import PlacementRequest, place

from .agents import agent_view, release
from .errors import BackupUnavailable
from .instances import alive, counts_healthy
from .records import (
    AGENT_DRAINING,
    AGENT_UNREACHABLE,
    Backup,
    BackupVolume,
    Instance,
    Service,
    agent_state,
)

__all__ = ["backup_volumes", "map_volumes", "pick_instance", "new_backup",
           "combined_checksum", "RestoreTarget", "restore_target", "restore_homes",
           "check_fits"]


def backup_volumes(spec: Mapping[str, Any]) -> list[dict[str, str]]:
    """The spec's named volumes as ``[{"name", "container_path"}]``, in spec order."""
    return [{"name": str(v["name"]), "container_path": str(v["containerPath"])}
            for v in spec.get("volumes") or [] if v.get("name")]


def map_volumes(backup: Backup, spec: Mapping[str, Any]) -> dict[str, str]:
    """Backup volume name → the target spec's volume: the one mounted at the same path,
    else the one at the same place in the spec.

    :raises BackupUnavailable: when a backed-up volume has no counterpart.
    """
    targets = backup_volumes(spec)
    by_path = {t["container_path"]: t["name"] for t in targets}
    mapping: dict[str, str] = {}
    for n, volume in enumerate(backup["volumes"]):
        name = by_path.get(volume["container_path"]) or (
            targets[n]["name"] if n < len(targets) else None)
        if name is None:
            raise BackupUnavailable(
                f"the service has no named volume for {volume['name']} "
                f"(mounted at {volume['container_path']} when backed up)",
                details=[{"path": f"volumes/{n}", "message": "no counterpart"}])
        mapping[volume["name"]] = name
    return mapping


def pick_instance(instances: Iterable[Instance], wanted: str | None = None) -> Instance:
    """The instance to back up: ``wanted``, else the oldest healthy one, else the oldest
    one still alive.

    :raises BackupUnavailable: when there is none (or not ``wanted``).
    """
    living = sorted((i for i in instances if alive(i) or i.get("state") == "placed"),
                    key=lambda i: (float(i.get("created_at") or 0), i["id"]))
    if wanted:
        for instance in living:
            if instance["id"] == wanted:
                return instance
        raise BackupUnavailable(f"no running instance {wanted!r}",
                                details=[{"path": "instance", "message": "not found"}])
    healthy = [i for i in living if counts_healthy(i)]
    if not (healthy or living):
        raise BackupUnavailable("the service has no instance to back up",
                                hint="scale it to 1 or more first")
    return (healthy or living)[0]


def new_backup(service: Service, instance: Instance, *, store: Mapping[str, str],
               actor: str, reason: str = "manual", keep: int | None = None) -> Backup:
    """A fresh, queued backup record of ``instance`` (not yet written).

    :raises BackupUnavailable: the service's spec has no named volume.
    """
    volumes = backup_volumes(service["spec"])
    if not volumes:
        raise BackupUnavailable(f"service {service['name']!r} has no named volume to back up",
                                details=[{"path": "spec/volumes", "message": "none named"}])
    hook = (service["spec"].get("backup") or {}).get("hook")
    paths = list(service.get("secret_paths") or [])
    options = mask_secrets({}, service.get("options") or {}, paths) if "secret_paths" in \
        service else _mask_everything(service.get("options") or {})
    backup = Backup(
        id="b-" + secrets.token_hex(6), service=service["name"],
        package=service["package"], generation=int(instance["generation"]),
        options=_no_sealed(options), instance=instance["id"], agent=instance["agent"],
        volumes=[BackupVolume(name=v["name"], container_path=v["container_path"], size=None,
                              checksum=None) for v in volumes],
        size=None, checksum=None, status="queued", error=None,
        consistency="hook" if hook else "stopped", store=dict(store), reason=reason,
        deployment="", actor=actor, created_at=time.time(), finished_at=None)
    if keep is not None:
        backup["keep"] = int(keep)
    return backup


def _mask_everything(options: Any) -> Any:
    if isinstance(options, Mapping):
        return {k: _mask_everything(v) for k, v in options.items()}
    return MASK if options is not None else None


def _no_sealed(options: Any) -> Any:
    """Sealed values (``{"$sealed": …}``) shown as the mask: a backup holds no secret."""
    if isinstance(options, Mapping):
        if set(options) == {"$sealed"}:
            return MASK
        return {k: _no_sealed(v) for k, v in options.items()}
    if isinstance(options, list):
        return [_no_sealed(v) for v in options]
    return options


def combined_checksum(volumes: Iterable[BackupVolume]) -> str | None:
    """One checksum of every volume's (None when one is unknown)."""
    digest = hashlib.sha256()
    for volume in volumes:
        if not volume["checksum"]:
            return None
        digest.update(f"{volume['name']} {volume['checksum']}\n".encode())
    return digest.hexdigest()


# restore: where the data goes ---------------------------------------------------------

@dataclass(frozen=True)
class RestoreTarget:
    """Where a restore may place the service's instances — and so write the backup's
    data, then start them: on the same agents, always.

    ``only``: the agents placement is kept to (None: any agent that fits); ``prefer``:
    the ones tried first; ``elsewhere``: the data may land away from the agents that
    held it (those keep their old copy, marked left over); ``reason``: why, for the
    deployment's steps.
    """

    only: tuple[str, ...] | None
    prefer: tuple[str, ...]
    elsewhere: bool
    reason: str


_WHY = {AGENT_UNREACHABLE: "is unreachable", AGENT_DRAINING: "is being drained"}


def restore_homes(instances: Iterable[Instance], holders: Iterable[str] = ()) -> list[str]:
    """The agents a service's data is on: its instances' agents (oldest first), else the
    agents that hold its volumes (it has no instance)."""
    ordered = sorted(instances, key=lambda i: (float(i.get("created_at") or 0), i["id"]))
    homes = list(dict.fromkeys(i["agent"] for i in ordered))
    return homes or sorted(set(holders))


def restore_target(service: str, homes: Sequence[str],
                   agents: Mapping[str, Mapping[str, Any]],
                   requested: str | None = None) -> RestoreTarget:
    """Decide where a restore of ``service`` puts its instances (pure).

    - ``requested`` (the admin's ``agent``): only there; refused when that agent is not
      registered, unreachable or drained (placement may still refuse it for room or
      constraints, with its reasons).
    - else, every agent in ``homes`` that is still registered must be able to take
      them: an unreachable or drained one is refused, by name — it holds the data the
      admin expects to see replaced, and restoring elsewhere is the admin's call
      (``agent``); placement is kept to those agents, so one without room refuses too.
    - else (the agents that held the data are gone, or there were none): any agent that
      fits; the data is written wherever the instances are placed.

    :raises BackupUnavailable: the refusals above, naming the agent and why.
    """
    if requested:
        agent = agents.get(requested)
        if agent is None:
            raise BackupUnavailable(
                f"cannot restore {service!r} onto agent {requested}: it is not registered",
                details=[{"path": "agent", "message": "not registered"}])
        state = agent_state(agent)
        if state in _WHY:
            raise BackupUnavailable(
                f"cannot restore {service!r} onto agent {requested}: it {_WHY[state]}",
                details=[{"path": "agent", "message": state}],
                hint="choose an agent that is up and not drained")
        elsewhere = requested not in homes
        return RestoreTarget(only=(requested,), prefer=(requested,), elsewhere=elsewhere,
                             reason=f"onto {requested}, as asked")
    present = [h for h in homes if h in agents]
    for home in present:
        state = agent_state(agents[home])
        if state in _WHY:
            raise BackupUnavailable(
                f"cannot restore {service!r}: agent {home}, which holds its data, "
                f"{_WHY[state]}",
                details=[{"path": "agent", "message": f"{home} {state}"}],
                hint=f"wait for {home}, or restore onto another agent with --agent AGENT "
                     f"(the data on {home} stays, marked left over)")
    if present and len(present) == len(homes):
        return RestoreTarget(only=tuple(present), prefer=tuple(present), elsewhere=False,
                             reason=f"back onto {', '.join(present)}")
    gone = [h for h in homes if h not in agents]
    reason = (f"{', '.join(gone)} {'is' if len(gone) == 1 else 'are'} gone: onto any "
              f"agent that fits" if gone else "onto any agent that fits")
    return RestoreTarget(only=None, prefer=tuple(present), elsewhere=bool(gone),
                         reason=reason)


def check_fits(service: str, spec: Mapping[str, Any], count: int, target: RestoreTarget,
               agents: Mapping[str, Mapping[str, Any]], stopping: Iterable[Instance]) -> None:
    """Refuse, before anything is stopped, a restore whose instances would not fit where
    ``target`` allows once the service's own instances (``stopping``) gave back what
    they reserved (pure: a dry run of placement).

    :raises BackupUnavailable: naming the agents and why each cannot take them.
    """
    freed = {agent_id: copy.deepcopy(dict(agent)) for agent_id, agent in agents.items()}
    for instance in stopping:
        if instance["agent"] in freed:
            release(freed[instance["agent"]], instance)   # type: ignore[arg-type]
    allowed = set(target.only) if target.only is not None else set(freed)
    views = [agent_view(a) for a_id, a in freed.items() if a_id in allowed]
    try:
        place(PlacementRequest.from_spec(spec, count), views)
    except PlacementError as error:
        where = ", ".join(target.only) if target.only else "any agent"
        why = "; ".join(f"{d['path'].removeprefix('agents/')}: {d['message']}"
                        for d in error.details) or error.message
        raise BackupUnavailable(
            f"cannot restore {service!r} onto {where}: {why}",
            details=error.details,
            hint="restore onto another agent with --agent AGENT (the data where it was "
                 "stays, marked left over)" if target.only and not target.elsewhere
            else None) from None
