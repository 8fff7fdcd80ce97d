"""Backups and restores of a service's named volumes, run as steps of its deployments.

A backup is a deployment of kind ``backup`` (or the first step of an ``upgrade`` that
asks for one); a restore is a deployment of kind ``restore`` (or the first step of a
``rollback`` with its data). Being deployments, they hold the service's lock, and the
reconciler leaves the service alone while they run: nothing replaces an instance that
is stopped for a copy.

Taking a backup of one instance (:meth:`DataSteps.take`):

1. with the package's backup hook (``spec.backup.hook``), the hook runs inside the
   running container (a dump into a volume) and must exit 0; the instance stays up;
   without one, the container is stopped (removed; its volumes stay) for the copy;
2. every named volume of the spec streams from the instance's agent into the backup
   store (:mod:`worker.backup_store`), tar chunks through the worker, never through
   the server; its size is counted on the way;
3. the copy's checksum is computed where it is kept; for a stopped instance it must
   equal the source's (computed on the agent);
4. a stopped instance is started again on its agent, on its own volumes, and waited for
   until healthy — also when the copy failed.

Restoring (:meth:`DataSteps.restore`): where the instances will run is decided first
(:func:`worker.backup_plan.restore_target`, and a dry run of placement), refusing by
name an agent that cannot take them before anything is stopped; then the service's
instances are stopped and removed, the new ones placed, and each volume of the backup
is written into the service's volume of the same mount path on every agent they are
placed on (the volume is removed and created again first, so nothing of the old data
stays there), its checksum checked against the backup's; the deployment then starts
those placed instances, on those agents. Data and instance are always on the same
agent; an old copy on an agent the restore did not go back to is kept, marked left
over.

Records are in ``worker/store/backups.py``; ``worker/backup_plan.py`` builds one and
makes the choices (which instance, which volume goes where) before any copying.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, cast

from catalog.errors import PlacementError

from .backend import BERTH_LABEL
from .backup_plan import (
    RestoreTarget,
    check_fits,
    combined_checksum,
    map_volumes,
    pick_instance,
    restore_homes,
    restore_target,
)
from .backup_store import BackupStore, store_of
from .containers import VOLUME_LABEL
from .errors import AgentError, BackupFailed, BackupUnavailable
from .instances import alive
from .records import Backup, BackupVolume, Instance, Service
from .volume_checksum import StreamChecksum
from .volume_stream import open_volume_archive, volume_checksum, write_volume_archive
from .volumes import mark_left_over

if TYPE_CHECKING:
    from .backend import ClusterBackend, Engine
    from .instances import InstanceRunner
    from .settings import WorkerSettings
    from .store import Store

__all__ = ["DataSteps", "BackupFailed", "DATA_KINDS", "delete_backup", "delete_by_id"]

log = logging.getLogger(__name__)

DATA_KINDS = ("backup", "restore")
HOOK_TIMEOUT = 300.0


class Run(Protocol):
    """What the steps need of the deployer's run of one deployment (``worker.deploy``)."""

    store: Store
    settings: WorkerSettings
    ops: InstanceRunner
    id: str
    name: str
    kind: str
    vacated: list[str]

    @property
    def pool(self) -> ClusterBackend: ...

    def _update(self, *, step: tuple[str, str] | None = ..., status: str | None = ...,
                progress: Any = ...) -> Any: ...

    def _finish(self, status: str, error: str | None = ..., *,
                details: list[dict[str, str]] | None = ...) -> None: ...


class DataSteps:
    """The backup and restore steps of one deployment run."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.store = run.store
        self.settings = run.settings
        deployment = self.store.deployments.require(run.id)
        self.backup_id = deployment.get("backup")
        self.restore_id = deployment.get("restore")

    def execute(self) -> bool:
        """Run this deployment's data steps; True when the deployment is done with them
        (a backup), False when it goes on to converge (an upgrade, a restore)."""
        try:
            if self.backup_id:
                self.take(self.backup_id)
            if self.restore_id:
                self.restore(self.restore_id)
        except (BackupFailed, BackupUnavailable, AgentError) as error:
            what = "backup" if self.backup_id else "restore"
            message = f"{what} failed: {error.message}"
            if error.hint:   # a deployment records one message: what to do goes in it
                message += f" — {error.hint}"
            if self.run.kind == "upgrade":
                message += "; nothing was upgraded (roll back, or upgrade again)"
            self.run._finish("failed", message, details=error.details)
            return True
        if self.run.kind == "backup":
            self.run._finish("succeeded")
            return True
        return False

    # backup ---------------------------------------------------------------------------
    def backup_store(self, backup: Backup) -> BackupStore:
        """Where ``backup`` is kept (the store recorded when it was queued)."""
        return store_of(backup["store"], self.store.agents.list(), self.run.pool,
                        image=self.settings.toolbox_image)

    def take(self, backup_id: str) -> Backup:
        """Copy the volumes of the backup's instance into the store; the finished record.

        :raises BackupFailed, BackupUnavailable, AgentError:
        """
        backup = self.store.backups.require(backup_id)
        if backup["status"] == "succeeded":
            return backup
        service = self.store.services.require(self.run.name)
        instance = self._instance(backup)
        self._set(backup_id, status="running", instance=instance["id"],
                  agent=instance["agent"], error=None)
        spec = self._spec_of(service, instance)
        store = self.backup_store(backup)
        if backup["status"] == "running":   # a run that stopped half-way: start afresh
            store.delete(backup_id)
        try:
            volumes = self._copy(backup, service, instance, spec, store)
        except (BackupFailed, BackupUnavailable, AgentError) as error:
            self._set(backup_id, status="failed", error=error.message,
                      finished_at=time.time())
            raise
        except BaseException:   # the deployment was cancelled or superseded mid-copy
            self._set(backup_id, status="failed", error="stopped before the end (its "
                      "deployment was cancelled or superseded)", finished_at=time.time())
            raise
        size = sum(v["size"] or 0 for v in volumes)
        done = self._set(backup_id, status="succeeded", volumes=volumes, size=size,
                         checksum=combined_checksum(volumes), finished_at=time.time())
        self.store.state.publish_event("backup.created", backup_id, backup["actor"],
                                       {"service": backup["service"], "size": size})
        self.run._update(step=("backup", f"backup {backup_id}: {len(volumes)} volumes, "
                                         f"{size} bytes"))
        if backup.get("keep"):
            self.prune(backup["service"], int(backup["keep"]))
        return done or backup

    def _instance(self, backup: Backup) -> Instance:
        """The backup's instance, or (when it went in the meantime) another of the service."""
        instances = self.store.instances.for_service(self.run.name)
        wanted = backup.get("instance")
        if wanted and any(i["id"] == wanted for i in instances):
            return pick_instance(instances, wanted)
        return pick_instance(instances)

    def _spec_of(self, service: Service, instance: Instance) -> dict[str, Any]:
        """The spec the instance runs (its generation's, which an upgrade moved on from)."""
        entry = self.store.services.generation(service["name"], int(instance["generation"]))
        return dict(entry["spec"]) if entry else dict(service["spec"])

    def _copy(self, backup: Backup, service: Service, instance: Instance,
              spec: dict[str, Any], store: BackupStore) -> list[BackupVolume]:
        """Hook (and after) or stop and start again, around the stream."""
        engine = self._engine(instance["agent"])
        if (spec.get("backup") or {}).get("hook"):
            self._run_hook(engine, instance, spec, "hook")
            try:
                return self._stream(backup, engine, store)
            finally:
                self._after(engine, instance, spec)
        self.run._update(step=("stop", f"stopping {instance['id']} for the copy"))
        engine.remove(instance.get("container_id") or instance["container"],
                      stop_timeout=self.settings.stop_timeout)
        self._update_instance(instance["id"], state="placed", health="unknown",
                              container_id=None)
        try:
            return self._stream(backup, engine, store)
        finally:
            self._restart({**service, "spec": spec}, instance["id"])

    def _run_hook(self, engine: Engine, instance: Instance, spec: Mapping[str, Any],
                  which: str) -> None:
        """Run ``spec.backup.<which>`` (``hook`` or ``after``) inside the instance.

        :raises BackupFailed: it did not exit 0 in time.
        """
        settings = spec.get("backup") or {}
        argv = [str(a) for a in settings[which]]
        timeout = float(settings.get("timeoutSeconds") or HOOK_TIMEOUT)
        self._note(which, f"running the backup {which} command in {instance['id']}")
        result = engine.exec_check(instance.get("container_id") or instance["container"],
                                   argv, timeout=timeout)
        if not result.ok:
            tail = result.output.strip()[-300:]
            raise BackupFailed(f"the backup {which} command in {instance['id']} exited "
                               f"{result.exit_code}: {tail}",
                               details=[{"path": f"spec/backup/{which}", "message": tail}])

    def _after(self, engine: Engine, instance: Instance, spec: Mapping[str, Any]) -> None:
        """The package's command after a hook backup (its failure is logged and recorded
        as a step: the copy itself is good)."""
        if not (spec.get("backup") or {}).get("after"):
            return
        try:
            self._run_hook(engine, instance, spec, "after")
        except (BackupFailed, AgentError) as error:
            log.warning("backup after-command failed: %s", error.message)
            self._note("after", f"warning: {error.message}")

    def _stream(self, backup: Backup, engine: Engine, store: BackupStore
                ) -> list[BackupVolume]:
        """Stream each volume into the store, counting its bytes and computing the
        checksum of its files on the way (``worker.volume_checksum``: the same figure
        the agents' checksum command gives, so a restore can be checked against it); a
        stream that checksum cannot read is checksummed where it is kept instead."""
        done: list[BackupVolume] = []
        for volume in backup["volumes"]:
            summed = StreamChecksum(open_volume_archive(engine, volume["name"],
                                                        image=self.settings.toolbox_image))
            store.write(backup["id"], volume["name"], summed)
            checksum = summed.hexdigest() or store.checksum(backup["id"], volume["name"])
            done.append(BackupVolume(name=volume["name"],
                                     container_path=volume["container_path"],
                                     size=summed.count, checksum=checksum))
            self.run._update(step=("copy", f"{volume['name']}: {summed.count} bytes, "
                                           f"checksum {(checksum or '?')[:12]}"))
        return done

    def prune(self, service: str, keep: int) -> list[str]:
        """Delete the service's succeeded backups beyond the newest ``keep``."""
        finished = [b for b in self.store.backups.list(service, limit=10_000)
                    if b["status"] == "succeeded"]
        removed = []
        for old in finished[keep:]:
            delete_backup(self.store, self.backup_store(old), old)
            removed.append(old["id"])
        if removed:
            self.run._update(step=("retention", f"kept {keep}; deleted {', '.join(removed)}"))
        return removed

    # restart --------------------------------------------------------------------------
    def _restart(self, service: Service, instance_id: str) -> None:
        """Start a stopped instance again on its agent and wait until it is healthy.

        :raises BackupFailed: it did not come back.
        """
        self._note("start", f"starting {instance_id} again")
        instance = self._update_instance(instance_id, state="placed", health="unknown",
                                         failures=0, error=None, container_id=None)
        if instance is None:
            raise BackupFailed(f"instance {instance_id} went away during the copy")
        errors = self.run.ops.start(service, [instance])
        if errors:
            raise BackupFailed(f"{instance_id} did not start again: {errors[-1]}")
        failed = self.run.ops.wait_healthy(service, instance_id, waiting=lambda i: alive(i)
                                           or i.get("state") == "placed")
        if failed:
            raise BackupFailed(f"{instance_id} did not come back: {failed}")

    # restore --------------------------------------------------------------------------
    def restore(self, backup_id: str) -> None:
        """Place the service's instances, write the backup into their volumes on the
        agents they are placed on, and leave them ``placed``: the deployment then starts
        them there — where the data is, never on an empty volume elsewhere.

        Where they go is :func:`worker.backup_plan.restore_target`'s choice: the agent
        the admin asked for (the deployment's ``restore_agent``); else back onto the
        agents that held the data, refused (by name, with why) when one of them cannot
        take them; else — those agents are gone — any agent that fits. Refusals come
        before anything is stopped. Data the restore leaves behind on another agent is
        never deleted: it is marked left over, pointing to where the data went.

        :raises BackupFailed, BackupUnavailable, AgentError:
        """
        backup = self.store.backups.require(backup_id)
        if backup["status"] != "succeeded":
            raise BackupUnavailable(f"backup {backup_id} is {backup['status']}")
        service = self.store.services.require(self.run.name)
        mapping = map_volumes(backup, service["spec"])
        count = int(service["instances"])
        if count < 1:
            raise BackupUnavailable(f"{self.run.name!r} is scaled to 0: nothing would run "
                                    f"on the restored data",
                                    hint="scale the service to 1 or more, then restore")
        instances = self.store.instances.for_service(self.run.name)
        homes = restore_homes(instances, () if instances else self._holders(mapping.values()))
        agents = {a["id"]: a for a in self.store.agents.list()}
        target = restore_target(self.run.name, homes, agents, self.requested_agent)
        check_fits(self.run.name, service["spec"], count, target, agents, instances)
        self.run._update(step=("stop", f"stopping {len(instances)} instances to restore "
                                       f"{backup_id} {target.reason}"))
        self.run.ops.stop(instances)
        placed = self._place(service, count, target)
        where = sorted({i["agent"] for i in placed})
        try:
            self.run.ops.ensure_images(service, placed)
            store = self.backup_store(backup)
            for agent_id in where:
                self._restore_on(agent_id, backup, mapping, store)
        except BaseException:
            self.run.ops.forget(placed)   # nothing may start on a half-written volume
            raise
        self._leave_behind(homes, where, mapping.values())
        self.run.vacated += where
        self.store.state.publish_event("backup.restored", backup_id, backup["actor"],
                                       {"service": self.run.name, "agents": where,
                                        "from": homes})

    @property
    def requested_agent(self) -> str | None:
        """The agent the admin asked the restore to go to (``--agent``), if any."""
        deployment = self.store.deployments.require(self.run.id)
        return deployment.get("restore_agent") or None

    def _place(self, service: Service, count: int, target: RestoreTarget) -> list[Instance]:
        """Place (and reserve) the restored instances where ``target`` allows.

        :raises BackupUnavailable: they no longer fit (something took the room meanwhile).
        """
        try:
            placed = self.run.ops.place(service, [], count, self.run.id,
                                        prefer=target.prefer, only=target.only)
        except PlacementError as error:
            raise BackupUnavailable(f"cannot place {self.run.name!r} to restore it: "
                                    f"{error.message}", details=error.details) from None
        self.run._update(step=("place", f"{len(placed)} instances on "
                                        f"{', '.join(sorted({i['agent'] for i in placed}))}"))
        return placed

    def _leave_behind(self, homes: Iterable[str], where: list[str],
                      volumes: Iterable[str]) -> None:
        """Mark the old copies on agents the data did not go back to as left over (kept
        until ``berth volumes prune``), recording where the data went."""
        names = sorted(set(volumes))
        for home in homes:
            if home in where:
                continue
            for volume in names:
                mark_left_over(self.store, home, volume, service=self.run.name,
                               moved_to=where[0], deployment=self.run.id)
            self.run._update(step=("left over", f"the old data on {home} stays, marked "
                                                f"left over (restored onto "
                                                f"{', '.join(where)})"))

    def _holders(self, volumes: Iterable[str]) -> list[str]:
        """Agents where one of the service's named volumes is (its instances are gone)."""
        wanted = set(volumes)
        found = []
        for agent in self.store.agents.list():
            try:
                listed = self.run.pool.get(agent).list_volumes({BERTH_LABEL: self.run.name})
            except AgentError:
                continue
            if any(v.name in wanted for v in listed):
                found.append(agent["id"])
        return found

    def _restore_on(self, agent_id: str, backup: Backup, mapping: Mapping[str, str],
                    store: BackupStore) -> None:
        engine = self._engine(agent_id)
        for volume in backup["volumes"]:
            target = mapping[volume["name"]]
            engine.remove_volume(target)
            write_volume_archive(engine, target, store.read(backup["id"], volume["name"]),
                                 labels={BERTH_LABEL: self.run.name, VOLUME_LABEL: target},
                                 image=self.settings.toolbox_image)
            restored = volume_checksum(engine, target, image=self.settings.toolbox_image)
            if volume["checksum"] and restored != volume["checksum"]:
                raise BackupFailed(f"{target} on {agent_id} does not match the backup "
                                   f"(checksum {restored[:12]}… vs {volume['checksum'][:12]}…)")
            self.run._update(step=("restore", f"{volume['name']} → {target} on {agent_id}"))

    # helpers --------------------------------------------------------------------------
    def _note(self, name: str, message: str) -> None:
        """Record a step that must not stop what follows: starting a stopped instance
        again and lifting a hook's freeze happen even when the deployment was cancelled
        meanwhile (recording raises then)."""
        try:
            self.run._update(step=(name, message))
        except Exception:  # noqa: BLE001 - the step is a note; the work goes on
            log.info("step %s of %s not recorded: the deployment ended", name, self.run.id)

    def _engine(self, agent_id: str) -> Engine:
        agent = self.store.agents.get(agent_id)
        if agent is None:
            raise BackupUnavailable(f"agent {agent_id} is not registered")
        return self.run.pool.get(agent)

    def _set(self, backup_id: str, **changes: Any) -> Backup | None:
        return self.store.backups.update(
            backup_id, lambda doc: cast(Backup, {**doc, **changes}),
            event="backup.updated", actor="worker")

    def _update_instance(self, instance_id: str, **changes: Any) -> Instance | None:
        return self.store.instances.update(
            instance_id, lambda doc: cast(Instance, {**doc, **changes}))


def delete_backup(store: Store, backup_store: BackupStore, backup: Backup) -> None:
    """Remove a backup's files from the store, then its record."""
    backup_store.delete(backup["id"])
    store.backups.remove(backup)


def delete_by_id(store: Store, backend: ClusterBackend, settings: WorkerSettings,
                 backup_id: str) -> bool:
    """The ``berth.delete_backup`` task's work: remove a backup marked ``deleting``;
    False when there is no such record (deleted already)."""
    backup = store.backups.get(backup_id)
    if backup is None:
        return False
    delete_backup(store, store_of(backup["store"], store.agents.list(), backend,
                                  image=settings.toolbox_image), backup)
    return True
