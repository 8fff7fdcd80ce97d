"""Moving a stateful instance to another agent with its data: ``Mover.move``.

One sequence, used by ``berth move`` (a ``move`` deployment), by drains (a draining
agent's resident instances, one at a time) and by upgrades of stateful services (the
new generation's instance takes the old one's place, with its data):

1. stop the instance cleanly (SIGTERM, then the stop timeout) and give back what it
   reserved; its volumes stay where they are;
2. place its successor — on the chosen agent, or (drain, upgrade) where placement puts
   it, the old agent first when it may stay there;
3. when that is another agent: copy every bound named volume old → new agent
   (:func:`worker.volume_stream.copy_volume`: streamed engine to engine, checked by
   checksums of the files, the volume read once: the contents by the checksum the worker
   computes from the stream as it passes, every entry by the listings of both agents,
   which must equal the stream's);
4. start the successor there and wait until it is healthy;
5. only then mark the old volumes *left over* (:func:`worker.volumes.mark_left_over`):
   they stay on the old agent, listed by ``berth volumes``, until ``berth volumes
   prune`` removes them.

If any step fails, the successor is removed, the copies this move made on the new agent
are removed (they are copies; the data is still on the old agent), and the instance
runs again on its old agent, on its old volumes. Nothing of the data is deleted.

An instance whose agent does not answer cannot be stopped nor copied: it is moved only
with ``accept_empty`` — its successor starts with empty volumes (the old ones stay on the
unreachable agent, marked left over).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

from catalog.errors import PlacementError
from catalog.placement import exclusive_volumes

from .errors import AgentError, MoveFailed, MoveRefused, VolumeCopyFailed, WorkerError
from .instances import InstanceRunner, alive, bound_volumes, counts_healthy
from .records import Agent, Instance, Service
from .settings import WorkerSettings
from .store import Store
from .volume_stream import copy_volume
from .volumes import mark_left_over

__all__ = ["Mover", "MoveFailed", "crowding", "may_take_down", "refusal"]

log = logging.getLogger(__name__)

Report = Callable[[str, str], object]   # (step name, message); its answer is unused


def refusal(instance: Instance, source: Agent | None, *, accept_empty: bool) -> str | None:
    """Why a move of ``instance`` must be refused, or None.

    An instance whose agent does not answer can only start empty elsewhere: that is
    refused unless the admin accepts it, and the reason names what is lost.
    """
    if source is not None and source.get("state") != "unreachable":
        return None
    if accept_empty:
        return None
    names = [v["name"] for v in instance.get("volumes") or []]
    what = (f"the data of volume{'s' if len(names) > 1 else ''} {', '.join(names)}"
            if names else "nothing (it has no named volumes)")
    where = source["id"] if source else instance["agent"]
    return (f"agent {where} does not answer: instance {instance['id']} would start "
            f"elsewhere without {what}")


def crowding(instance: Instance, target: str, instances: Iterable[Instance],
             spec: Mapping[str, Any]) -> str | None:
    """Why moving ``instance`` to agent ``target`` must be refused because another
    instance of its service runs there and both would mount the same named volumes
    (see :func:`catalog.placement.exclusive_volumes`); or None."""
    volumes = exclusive_volumes(spec)
    if not volumes:
        return None
    there = sorted(i["id"] for i in instances
                   if i["agent"] == target and i["id"] != instance["id"])
    if not there:
        return None
    noun = "volume" if len(volumes) == 1 else "volumes"
    return (f"agent {target} already runs instance {there[0]} of {instance['service']}: "
            f"each instance mounts {noun} {', '.join(volumes)}, so only one may run on "
            f"an agent")


def may_take_down(instance: Instance, instances: Iterable[Instance], total: int,
                  strategy: dict[str, Any]) -> bool:
    """Whether ``instance`` may go down for a move now, by ``minimumHealthCapacity``.

    It may when the healthy instances left are enough; when they are not but every
    other live instance is healthy already, waiting changes nothing, so one instance
    goes (a single stateful instance must be able to move at all).
    """
    others = [i for i in instances if i["id"] != instance["id"]]
    healthy_left = sum(1 for i in others if counts_healthy(i))
    minimum = math.ceil(total * float(strategy.get("minimumHealthCapacity", 1.0)))
    if healthy_left >= minimum:
        return True
    return all(counts_healthy(i) for i in others if alive(i))


class Mover:
    """Moves one instance at a time (the caller holds the service's lock)."""

    def __init__(self, store: Store, ops: InstanceRunner, settings: WorkerSettings,
                 report: Report) -> None:
        self.store = store
        self.ops = ops
        self.pool = ops.pool
        self.settings = settings
        self.report = report

    def move(self, service: Service, instance: Instance, deployment_id: str, *,
             target: str | None = None, accept_empty: bool = False,
             old_service: Service | None = None) -> Instance:
        """Move ``instance`` (of ``old_service``'s spec, default ``service``'s) to
        ``target`` (None: where placement puts it, its own agent first) as an instance
        of ``service``; returns the successor, healthy.

        :raises MoveRefused: its agent does not answer and ``accept_empty`` is not given,
            or ``target`` runs another instance that mounts the same volumes
            (:func:`crowding`); nothing was stopped.
        :raises MoveFailed: a step failed; the instance runs on its old agent again.
        """
        agents = {a["id"]: a for a in self.store.agents.list()}
        source = agents.get(instance["agent"])
        reason = refusal(instance, source, accept_empty=accept_empty)
        if reason:
            raise MoveRefused(reason, hint="pass --accept-empty to start it without that "
                                           "data", instance=instance["id"])
        crowded = crowding(instance, target, self.store.instances.for_service(
            service["name"]), service["spec"]) if target else None
        if crowded:
            raise MoveRefused(crowded, instance=instance["id"], agent=target)
        reachable = source is not None and source.get("state") != "unreachable"
        old = old_service or service
        volumes = bound_volumes(old["spec"])
        self._stop(instance, reachable)
        # what an earlier move of this deployment (a drain moves several) noted goes
        self._record(deployment_id, instance=instance["id"], source=instance["agent"],
                     phase="stopped", reachable=reachable, created=[], new_instance=None)
        try:
            successor = self._place(service, instance, deployment_id, target)
            moved = successor["agent"] != instance["agent"]
            if moved and reachable and volumes:
                self._copy(instance["agent"], successor, volumes, deployment_id)
            self._start(service, successor)
        except (WorkerError, PlacementError) as error:
            self._roll_back(old, instance, deployment_id, reachable)
            raise MoveFailed(f"moving {instance['id']} failed: {_message(error)}; "
                             + (f"it runs on {instance['agent']} again" if reachable
                                else f"it stays lost on {instance['agent']}"),
                             instance=instance["id"]) from error
        if moved:
            self._leave_behind(instance, successor, volumes, deployment_id)
        return successor

    # steps ----------------------------------------------------------------------------
    def _stop(self, instance: Instance, reachable: bool) -> None:
        """Stop the container cleanly and forget the instance (its volumes stay)."""
        if reachable:
            self.report("stop", f"stopping {instance['id']} on {instance['agent']}")
        else:
            self.report("stop", f"{instance['agent']} does not answer: leaving "
                                f"{instance['id']} there (its data stays on it)")
        self.ops.stop([cast(Instance, {**instance, "state": "running"})])

    def _place(self, service: Service, instance: Instance, deployment_id: str,
               target: str | None) -> Instance:
        """Place and reserve the successor (on ``target``, or its own agent first)."""
        others = [i for i in self.store.instances.for_service(service["name"])
                  if i["id"] != instance["id"]]
        if target:
            placed = self.ops.place(service, others, 1, deployment_id, only=[target])
        else:
            placed = self.ops.place(service, others, 1, deployment_id,
                                    prefer=[instance["agent"]])
        successor = placed[0]
        self._record(deployment_id, new_instance=successor["id"], phase="placed")
        self.report("place", f"{successor['id']} on {successor['agent']}")
        return successor

    def _copy(self, source_id: str, successor: Instance, volumes: list[str],
              deployment_id: str) -> None:
        """Copy every bound volume to the successor's agent, checked by checksums
        (:func:`worker.volume_stream.copy_volume`)."""
        agents = {a["id"]: a for a in self.store.agents.list()}
        src = self.pool.get(agents[source_id])
        dst = self.pool.get(agents[successor["agent"]])
        image = self.settings.toolbox_image
        for engine, peer in ((src, dst), (dst, src)):
            engine.ensure_image(image, peers=[peer], tarball_dir=self.settings.image_dir or None)
        created: list[str] = []
        for volume in volumes:
            if dst.volume_labels(volume) is not None:
                raise VolumeCopyFailed(
                    f"agent {successor['agent']} already holds a volume {volume} (left over "
                    f"from an earlier move?); remove it first with berth volumes prune",
                    volume=volume)
            created.append(volume)
            self._record(deployment_id, created=list(created), phase="copying")
            started = time.monotonic()
            result = copy_volume(src, volume, dst, volume, image=image)
            seconds = max(time.monotonic() - started, 1e-6)
            self.report("copy", f"{volume}: {result.bytes} bytes from {source_id} to "
                                f"{successor['agent']} in {seconds:.1f} s, checksum "
                                f"{result.checksum[:16]}, listings equal on both")
        self._record(deployment_id, phase="copied")

    def _start(self, service: Service, successor: Instance) -> None:
        """Start the successor and wait until it is healthy.

        :raises MoveFailed: it failed to start, stopped, or did not become healthy in time.
        """
        errors = self.ops.start(service, [successor])
        if errors:
            raise MoveFailed(errors[-1])
        failed = self.ops.wait_healthy(service, successor["id"])
        if failed:
            raise MoveFailed(failed)
        self.report("healthy", f"{successor['id']} is healthy on {successor['agent']}")

    def _leave_behind(self, instance: Instance, successor: Instance, volumes: list[str],
                      deployment_id: str) -> None:
        """Mark the old volumes left over (kept until pruned) and say where they went."""
        for volume in volumes:
            mark_left_over(self.store, instance["agent"], volume, service=instance["service"],
                           moved_to=successor["agent"], deployment=deployment_id)
        if volumes:
            self.report("left over", f"{', '.join(volumes)} kept on {instance['agent']} "
                                     f"as left over (berth volumes prune removes them)")
        self._record(deployment_id, phase="done")
        self.store.state.publish_event("instance.moved", successor["id"], "worker", {
            "service": instance["service"], "from": instance["agent"],
            "to": successor["agent"], "replaces": instance["id"]})

    def resume(self, service: Service, deployment_id: str) -> str | None:
        """After a worker died mid-move: undo what the move did, or say it was done.

        Returns None when the deployment's move never began or is finished (``done``,
        ``rolled back``); otherwise rolls back and returns what happened, so the
        caller can end the deployment or go on.
        """
        deployment = self.store.deployments.get(deployment_id)
        move: dict[str, Any] = dict(deployment.get("move") or {}) if deployment else {}
        if move.get("phase") in (None, "requested", "done", "rolled back"):
            return None
        gone = cast(Instance, {"id": move.get("instance", "?"), "service": service["name"],
                               "agent": move.get("source", "")})
        successor = self.store.instances.get(move.get("new_instance") or "")
        if successor is not None and counts_healthy(successor):
            # it got as far as serving: finish the move rather than lose what it took in
            moved = successor["agent"] != gone["agent"]
            volumes = [v["name"] for v in successor.get("volumes") or []] if moved else []
            self._leave_behind(gone, successor, volumes, deployment_id)
            return None
        self._roll_back(service, gone, deployment_id, bool(move.get("reachable", True)))
        return (f"the move of {gone['id']} was interrupted at {move['phase']}; it runs on "
                f"{gone['agent']} again")

    # failure --------------------------------------------------------------------------
    def _roll_back(self, old: Service, instance: Instance, deployment_id: str,
                   reachable: bool) -> None:
        """Remove the successor and this move's copies; run the instance on its old
        agent again (best effort: a failure here is logged, the reconciler goes on)."""
        deployment = self.store.deployments.get(deployment_id)
        move: dict[str, Any] = dict(deployment.get("move") or {}) if deployment else {}
        new_id = move.get("new_instance")
        successor = self.store.instances.get(new_id) if new_id else None
        if successor is not None:
            self.ops.stop([successor])
            self._drop_copies(successor["agent"], list(move.get("created") or []))
        self._record(deployment_id, phase="rolled back", created=[])
        if not reachable:
            return
        try:
            placed = self.ops.place(old, self.store.instances.for_service(old["name"]), 1,
                                    deployment_id, only=[instance["agent"]])
            self.ops.start(old, placed)
            self.report("roll back", f"{placed[0]['id']} runs on {instance['agent']} "
                                     f"again, on its own volumes")
        except (WorkerError, PlacementError) as error:
            log.warning("could not restart %s on %s: %s", instance["id"], instance["agent"],
                        _message(error))
            self.report("roll back", f"could not restart on {instance['agent']}: "
                                     f"{_message(error)} (the reconciler tries again)")

    def _drop_copies(self, agent_id: str, volumes: list[str]) -> None:
        """Remove the (partial) copies a failed move made on the new agent."""
        agent = self.store.agents.get(agent_id)
        if agent is None or not volumes:
            return
        engine = self.pool.get(agent)
        for volume in volumes:
            try:
                engine.remove_volume(volume)
            except AgentError as error:
                log.warning("could not remove the copy %s on %s: %s", volume, agent_id,
                            error.message)

    def _record(self, deployment_id: str, **changes: Any) -> None:
        """Note how far the move got in its deployment (``move`` field), if it has one."""
        def apply(doc: Any) -> Any:
            if "move" not in doc:
                doc["move"] = {}
            doc["move"] = {**doc["move"], **changes}
            return doc

        self.store.deployments.update(deployment_id, apply)


def _message(error: BaseException) -> str:
    return str(getattr(error, "message", "") or error)
