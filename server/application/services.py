"""Services: install, change and inspect services and their deployments.

This module resolves packages and versions through the catalog, validates options,
renders the spec, and hands desired state to ``DesiredState`` (the one write path). It
never changes anything on an agent; it reads an instance's logs and Berth's volumes.

Every method returns plain JSON-ready dicts (records as the store keeps them, with
secret option values masked).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from catalog.errors import CatalogError, OptionsInvalid, SpecRefused
from catalog.generated_secrets import resolve_generated
from catalog.links import link_marks, mark_packages
from catalog.names import require_service_name
from catalog.options import (
    deep_merge,
    mask_secrets,
    package_secret_paths,
    upgrade_options,
)
from catalog.render import render_service
from catalog.spec import mask_spec
from worker import links
from worker.agents import AgentPool
from worker.clusters import DEFAULT as DEFAULT_CLUSTER
from worker.clusters import cluster_of
from worker.containers import volume_names
from worker.docker_agent import DockerAgent, agent_tls
from worker.endpoints import check_routes
from worker.records import Service
from worker.store.crypto import has_sealed, require_keys
from worker.swarm import SwarmBackend
from worker.swarm_spec import LINKS_REFUSED
from worker.swarm_spec import refusals as swarm_refusals
from worker.volumes import get_prune, inventory, left_over_marks, request_prune

from ..errors import ApiError, Invalid
from ..masking import mask_all, masked_record, refuse_leaks, union, unmasked
from . import handover as handovers
from . import secrets
from .backups import BackupManager
from .catalog import CatalogBrowser

MAX_INSTANCES = 1000
VOLUME_READ_TIMEOUT = 5   # seconds an agent has to list its volumes for one request
SERVICES_PER_PAGE = 100   # services in a page of GET /services unless per_page says
MAX_SERVICES_PER_PAGE = 500


class NotFoundError(ApiError):
    code = "not_found"
    status = 404


def check_service_name(name: Any, path: str = "name") -> str:
    """The name if it is a valid service name (the rule of ``catalog.names``).

    :raises InvalidInput: naming the field.
    """
    return require_service_name(name, path)


def check_instances(count: Any, path: str = "instances") -> int | None:
    """The instance count if valid (None stays None).

    :raises Invalid: naming the field.
    """
    if count is None:
        return None
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_INSTANCES:
        raise Invalid("invalid instance count", details=[{
            "path": path, "message": f"an integer from 0 to {MAX_INSTANCES}"}])
    return count


def _check_cluster(cluster: str, spec: Mapping[str, Any], name: str) -> None:
    """Refuse what a Swarm cluster cannot run as Berth means it (nothing is written).

    :raises SpecRefused: with every reason, at its spec path.
    """
    if cluster == DEFAULT_CLUSTER:
        return
    problems = swarm_refusals(spec)
    if any(p["message"].startswith(LINKS_REFUSED) for p in problems):
        raise SpecRefused(f"links to other services are not supported on Swarm cluster "
                          f"{cluster!r} yet: {name!r} cannot run there",
                          details=problems,
                          hint="install it on Berth's own agents (the default cluster)")
    if problems:
        raise SpecRefused(f"cluster {cluster!r} (Swarm) cannot run {name!r} as Berth "
                          f"means it", details=problems)


class ServiceManager:
    """Install, change and inspect services; their deployments and logs."""

    def __init__(self, berth: Any, catalog: CatalogBrowser) -> None:
        self.berth = berth
        self.browser = catalog

    @property
    def ops(self) -> Any:
        return self.berth.ops

    @property
    def store(self) -> Any:
        return self.berth.store

    def _render(self, package: Any, options: Mapping[str, Any], **kwargs: Any) -> dict[str, Any]:
        """``render_service`` with this server's host-path, network and user policy, the
        template rendered in a child process (``Berth.renderer``)."""
        settings = self.berth.settings
        return render_service(package, options, renderer=self.berth.renderer,
                              allowed_host_paths=settings.host_paths,
                              readonly_host_paths=settings.readonly_paths,
                              container=settings.container_policy, **kwargs)

    def catalog(self) -> Any:
        """The current catalog (rebuilt by its source when repositories change)."""
        return self.browser.catalog()

    def package_object(self, name: str, version: str | None = None) -> Any:
        """The ``catalog.Package`` a name and optional version or range resolve to."""
        return self.browser.package_object(name, version)

    def render(self, name: str, *, version: str | None = None,
               options: Mapping[str, Any] | None = None, instances: int | None = None,
               service_name: str | None = None,
               constraints: Sequence[Sequence[str]] = (),
               cluster: str | None = None, handover: Sequence[str] | None = None,
               refuse_clashes: bool = False) -> dict[str, Any]:
        """The spec an install would write, secrets masked; nothing is installed (values
        generated for the preview are thrown away: the install makes its own).

        ``refuse_clashes`` (the install form's review step): also refuse a route that
        another installed service routes, as the install would. A plain render (``berth
        render``, a package's author trying a template) does not depend on what is
        installed.

        :raises SpecRefused: also when ``cluster`` is a Swarm that cannot run it.
        :raises RouteConflict: with ``refuse_clashes``, a route clashes with another
            service's (the install checks again, atomically with its write).
        """
        target = self.berth.application.clusters.require(cluster)
        package, service, resolved, spec, paths, _made = self._prepare(
            name, version, service_name, options, instances, constraints, handover)
        _check_cluster(target, spec, service)
        if refuse_clashes:
            check_routes({"name": service, "spec": spec}, self.ops.list_services())
        return {"package": _identity(package), "name": service,
                "options": mask_secrets({}, resolved, paths),
                "spec": mask_spec(spec, package, resolved, paths=paths)}

    def _prepare(self, package: str, version: str | None, name: str | None,
                 options: Mapping[str, Any] | None, instances: int | None,
                 constraints: Sequence[Sequence[str]], handover: Sequence[str] | None = None
                 ) -> tuple[Any, str, dict[str, Any], dict[str, Any], list[str],
                            dict[str, str]]:
        """What an install of ``package`` would write: the package, the service name,
        the resolved options (empty ``x-generate`` secrets filled), the rendered spec,
        the secret paths and the values generated.

        ``handover``: the linked options whose credentials the admin confirmed handing
        over (``server/application/handover.py``).

        :raises SpecRefused: when a secret value would land where it cannot be sealed.
        :raises OptionsInvalid: a handover that is not confirmed as it must be.
        """
        pkg = self.package_object(package, version)
        paths = package_secret_paths(pkg)
        service_name = check_service_name(name or pkg.name)
        asked = handovers.check_request(handover)
        resolved, made = resolve_generated(pkg, dict(options or {}))
        given = handovers.confirmed(pkg, resolved, asked)
        spec = self._render(pkg, resolved, service_name=service_name,
                            instances=check_instances(instances),
                            constraints=_constraints(constraints), handover=given,
                            linked_packages=handovers.linked_packages(self.store, pkg,
                                                                      resolved))
        refuse_leaks(pkg, spec, resolved, paths)
        self._check_links(pkg, service_name, spec)
        return pkg, service_name, resolved, spec, paths, made

    def _check_links(self, pkg: Any, service_name: str, spec: Mapping[str, Any]) -> None:
        """Every linked service is installed, of a marked package, with the port, and
        keeps secret what the link asks it to hand over.

        :raises OptionsInvalid: at ``options/<option>`` for each link that is not.
        """
        marks = link_marks(pkg.config_schema)
        problems = []
        for link in links.links_of(spec):
            option, name = str(link["option"]), str(link["service"])
            mark = marks.get(option, {})
            other = self.store.services.get(name) if name != service_name else None
            if other is None or other.get("status") == "deleting":
                wanted = " or ".join(mark_packages(mark))
                why: str | None = f"no installed service {name!r} (install a {wanted} first)"
            else:
                why = handovers.problems_with_linked(mark, link, other)
            if why is not None:
                problems.append({"path": f"options/{option}", "message": why})
        if problems:
            raise OptionsInvalid(f"the options for {pkg.name}@{pkg.version} link to services "
                                 "that cannot serve them", package=pkg.name,
                                 version=pkg.version, details=problems)

    # services: writes --------------------------------------------------------
    def install(self, actor: str, *, package: str, version: str | None = None,
                name: str | None = None, options: Mapping[str, Any] | None = None,
                instances: int | None = None,
                constraints: Sequence[Sequence[str]] = (),
                cluster: str | None = None,
                handover: Sequence[str] | None = None) -> dict[str, Any]:
        """Resolve, validate, render and write a new service; returns service and
        deployment, and ``generated_secrets`` (``[{"path", "value"}]``): the values Berth
        made for empty ``x-generate`` options, in clear, this once.

        ``handover`` names the linked options whose credentials the admin confirms
        handing over: each link records who and when, and a
        ``service.credentials_handed_over`` event is written (``handover.py``).

        ``cluster`` names where it runs (``default``: Berth's own agents). On a Swarm,
        what the Swarm cannot run as Berth means it (a ``LIKE`` constraint, a host
        folder, …) is refused here with the reasons, and nothing is written.

        :raises ServiceExists: when the name is taken (409).
        :raises ClusterNotFound: when there is no such cluster (404).
        :raises SpecRefused: when the Swarm cannot run the spec (422).
        :raises RouteConflict: when a route of the spec claims a host and path prefix
            another service routes (409; checked in the transaction that writes it).
        """
        target = self.berth.application.clusters.require(cluster)
        pkg, service_name, resolved, spec, paths, made = self._prepare(
            package, version, name, options, instances, constraints, handover)
        _check_cluster(target, spec, service_name)
        handovers.record(spec, actor)
        result = self.ops.install(
            name=service_name, package=_identity(pkg), options=resolved, spec=spec,
            instances=spec.get("instances", 1), actor=actor, secret_paths=paths,
            generated=made, cluster=target)
        service, deployment = _pair(result)
        handovers.publish(self.store, service_name, spec, actor, 1)
        return {"service": self._masked(service), "deployment": deployment,
                "generated_secrets": secrets.shown_once(made)}

    def scale(self, actor: str, name: str, instances: int) -> dict[str, Any]:
        """Change the instance count; returns the deployment."""
        count = check_instances(instances)
        return self.ops.scale(name, count, actor=actor)

    def upgrade(self, actor: str, name: str, *, version: str | None = None,
                options: Mapping[str, Any] | None = None,
                instances: int | None = None,
                repository: str | None = None, backup: bool = False,
                handover: Sequence[str] | None = None) -> dict[str, Any]:
        """Move a service to another version and/or options; returns the deployment.

        A credentials handover confirmed before stays while the option links to the
        same service; ``handover`` confirms more (a link changed to another service, a
        version that asks for credentials first), each audited like an install's.

        The version comes from the repository the service was installed from, unless
        ``repository`` moves it explicitly. The old options are merged over the new
        version's defaults (keys it does not know are dropped), then the given options
        over that. An ``x-generate`` secret left empty keeps the value the service had
        (generated or given); one the new version adds is generated now, once; one the
        service already ran with empty stays empty (see ``secrets.earlier_values``).
        With ``backup`` — or when the installed or the new spec says
        ``backupBeforeUpgrade`` — the deployment backs the volumes up first.

        :raises RouteConflict: the new spec routes a host and path prefix another
            service routes (the routes the service has already are not checked again).
        """
        service = self.ops.get_service(name)
        old = service.get("package") or {}
        pkg = _upgrade_package(self.catalog(), old, version, repository)
        paths = package_secret_paths(pkg)
        opened = self._opened_options(service)
        merged = upgrade_options(opened, pkg)
        if options:
            merged = deep_merge(merged, unmasked(options, service, paths))
        earlier, leave = secrets.earlier_values(pkg, opened, secrets.kept_values(
            service, self.berth.settings.data_keys()))
        resolved, made = resolve_generated(pkg, merged, earlier, leave)
        count = check_instances(instances)
        asked = handovers.check_request(handover)
        keep = handovers.kept(pkg, service.get("spec") or {}, resolved)
        given = handovers.confirmed(pkg, resolved, sorted(set(keep) | set(asked)))
        spec = self._render(pkg, resolved, service_name=name,
                            instances=count if count is not None else service.get("instances"),
                            handover=given,
                            linked_packages=handovers.linked_packages(self.store, pkg, resolved))
        handovers.carry(service.get("spec") or {}, spec)
        handovers.record(spec, actor)
        refuse_leaks(pkg, spec, resolved, union(paths, service.get("secret_paths")))
        self._check_links(pkg, name, spec)
        _check_cluster(str(service.get("cluster") or DEFAULT_CLUSTER), spec, name)
        wanted = backup or any(s.get("backupBeforeUpgrade") for s in (spec, service["spec"]))
        first = BackupManager(self.berth).before_upgrade(actor, name) if wanted else None
        deployment = self.ops.update(name, package=_identity(pkg), options=resolved,
                                     spec=spec, instances=count, actor=actor,
                                     secret_paths=paths, generated=made, backup=first)
        handovers.publish(self.store, name, spec, actor, deployment.get("generation"),
                          only=[o for o in asked if o not in keep])
        return deployment

    def upgrade_preview(self, name: str, version: str | None = None) -> dict[str, Any]:
        """What an upgrade would start from: the merged options (masked) and the package."""
        service = self.ops.get_service(name)
        pkg = _upgrade_package(self.catalog(), service.get("package") or {}, version, None)
        paths = union(package_secret_paths(pkg), service.get("secret_paths"))
        merged = upgrade_options(self._opened_options(service), pkg)
        if "secret_paths" not in service:  # a record from before paths were kept
            return {"package": _identity(pkg), "options": mask_all(merged),
                    "config_schema": pkg.config_schema}
        return {"package": _identity(pkg), "options": mask_secrets({}, merged, paths),
                "config_schema": pkg.config_schema}

    def rollback(self, actor: str, name: str, generation: int | None = None, *,
                 restore_data: bool = False) -> dict[str, Any]:
        """Return to an earlier generation (the previous one by default); with
        ``restore_data``, on the data of that generation's newest backup.

        :raises BackupUnavailable: ``restore_data`` and no backup of that generation.
        """
        restore = None
        if restore_data:
            target = _rollback_generation(self.ops.get_service(name),
                                          self.ops.generations(name), generation)
            restore = BackupManager(self.berth).latest_of_generation(name, target)["id"]
        return self.ops.rollback(name, generation, actor=actor, restore=restore)

    def restart(self, actor: str, name: str) -> dict[str, Any]:
        """Replace every instance with a fresh one of the same generation."""
        return self.ops.restart(name, actor=actor)

    def uninstall(self, actor: str, name: str, *, delete_data: bool = False,
                  force: bool = False) -> dict[str, Any]:
        """Stop and remove every instance, then the service (and with ``delete_data``
        its named volumes on every agent).

        Returns ``{"deployment", "delete_data", "volumes"}``: ``volumes`` are the named
        volumes of the service's spec on the agents its instances are on (from the
        records, so an agent that is away never holds the answer): they stay, left
        over, unless ``delete_data``.

        :raises ServiceLinked: (409) when other services link to it, unless ``force``
            (their containers then fail to start until the link is changed).
        """
        service = self.ops.get_service(name)
        linked = [] if force else links.dependents(self.store, name)
        if linked:
            raise links.ServiceLinked(
                f"{name} cannot be uninstalled: {', '.join(linked)} link to it",
                service=name, dependents=linked,
                details=[{"path": "force", "message": f"service {d!r} links to {name!r}"}
                         for d in linked],
                hint="uninstall or reconfigure them first, or force it (--force)")
        volumes = self._spec_volumes(service)
        deployment = self.ops.uninstall(name, actor=actor, delete_data=delete_data)
        return {"deployment": deployment, "delete_data": bool(delete_data),
                "volumes": volumes}

    def _spec_volumes(self, service: Mapping[str, Any]) -> list[dict[str, str]]:
        """``[{"name", "agent"}]``: the spec's named volumes where its instances run."""
        names = volume_names(service.get("spec") or {})
        agents = sorted({str(i["agent"]) for i in self.ops.list_instances(service["name"])
                         if i.get("agent")})
        return [{"name": n, "agent": a} for n in names for a in agents]

    def volumes(self, service: str | None = None) -> dict[str, Any]:
        """Berth's named volumes on every agent, by service: in use or left over, with
        sizes where the engine reports them (``None``: unknown).

        Read from the agents at the time of asking (like logs: a read, never a change);
        an agent that does not answer is named in ``unreachable``.
        """
        if service is not None:
            require_service_name(service, "service")
        pool = AgentPool(timeout=VOLUME_READ_TIMEOUT,
                         tls_dir=self.berth.settings.agent_tls_dir)
        try:
            return inventory(self.store.agents.list(), pool, service=service,
                             installed=[s["name"] for s in self.ops.list_services()],
                             marks=left_over_marks(self.store))
        finally:
            pool.close()

    def move(self, actor: str, name: str, instance_id: str, *, to: str,
             accept_empty: bool = False) -> dict[str, Any]:
        """Move one instance to agent ``to`` with its data (a ``move`` deployment).

        :raises MoveRefused: its agent does not answer and ``accept_empty`` is not given
            (the error names the volumes whose data would be lost), or ``to`` cannot
            take it.
        """
        return self.ops.move(name, instance_id, to, accept_empty=accept_empty, actor=actor)

    def prune_volumes(self, actor: str, *, service: str | None = None,
                      agent: str | None = None) -> dict[str, Any]:
        """Ask a worker to remove the left-over volumes (of ``service``, on ``agent``)."""
        if service is not None:
            require_service_name(service, "service")
        if agent is not None:
            self.store.agents.require(agent)
        record = request_prune(self.store, service=service, agent=agent, actor=actor)
        self.berth.enqueue("berth.prune_volumes", [record["id"]])
        return record

    def prune(self, prune_id: str) -> dict[str, Any]:
        """A prune request and what it removed and kept once done.

        :raises NotFoundError: no such request (or it expired).
        """
        record = get_prune(self.store, prune_id)
        if record is None:
            raise NotFoundError(f"no volume prune {prune_id!r}", code="prune_not_found")
        return record

    # services: reads ---------------------------------------------------------
    def services(self) -> list[dict[str, Any]]:
        """Every service with instance counts (desired, running, healthy)."""
        return self._with_counts(self.ops.list_services())

    def linkable(self, package: str) -> list[str]:
        """The installed services of ``package`` (not being removed) another service
        can link to, by name (the install form's choices for an ``x-berth-service``)."""
        return sorted(s["name"] for s in self.ops.list_services()
                      if (s.get("package") or {}).get("name") == package
                      and s.get("status") != "deleting")

    def services_page(self, page: int = 1, per_page: int = SERVICES_PER_PAGE) -> dict[str, Any]:
        """One page of services by name, with counts: ``{"items", "total", "page",
        "per_page"}``. Only the page's instances are read, so a page costs the same at
        ten services or ten thousand."""
        start = (page - 1) * per_page
        services, total = self.ops.services_page(start, start + per_page)
        return {"items": self._with_counts(services), "total": total, "page": page,
                "per_page": per_page}

    def _with_counts(self, services: list[Service]) -> list[dict[str, Any]]:
        instances = self.ops.instances_of(s["name"] for s in services)
        return [{**self._masked(s), "counts": _counts(s, instances.get(s["name"], []))}
                for s in services]

    def inventory(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Every service record and every instance record, for counting by state
        (``/metrics``); options are left out."""
        services = [{k: v for k, v in s.items() if k != "options"}
                    for s in self.ops.list_services()]
        grouped = self.ops.instances_of(s["name"] for s in services)
        return services, [i for s in services for i in grouped.get(s["name"], [])]

    def status(self, name: str) -> dict[str, Any]:
        """A service, desired and actual: ``instances_list`` has each instance with agent,
        state, health, ports (``instances`` stays the desired count)."""
        service = self.ops.get_service(name)
        instances = self.ops.list_instances(name)
        return {**self._masked(service), "cluster": cluster_of(service),
                "counts": _counts(service, instances), "instances_list": instances}

    def reveal_secrets(self, actor: str, name: str) -> dict[str, Any]:
        """A service's secret option values in clear (the views allow admins only);
        written to the audit stream as ``service.secrets_revealed``.

        :raises ServiceNotFound, DataKeyError:
        """
        return secrets.reveal(self.store, self.berth.settings.data_keys(),
                              self.ops.get_service(name), actor)

    def history(self, name: str) -> list[dict[str, Any]]:
        """A service's generations, newest last, options masked."""
        self.ops.get_service(name)
        return [self._masked(g) for g in self.ops.generations(name)]

    def deployments(self, service: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Recent deployments, newest first."""
        return self.ops.list_deployments(service=service, limit=limit)

    def deployment(self, deployment_id: str) -> dict[str, Any]:
        return self.ops.get_deployment(deployment_id)

    def cancel_deployment(self, actor: str, deployment_id: str) -> dict[str, Any]:
        return self.ops.cancel_deployment(deployment_id, actor=actor)

    def logs(self, name: str, instance_id: str | None = None, *, tail: int = 100,
             follow: bool = False) -> Iterator[bytes]:
        """An instance's container output, read from its agent (the server's one read).

        :raises NotFoundError: when the service has no such instance.
        """
        instance = self._instance(name, instance_id)
        service = self.ops.get_service(name)
        if cluster_of(service) != DEFAULT_CLUSTER:
            return iter([self._swarm_logs(service, tail)])
        agent = self.store.agents.get(instance.get("agent") or "")
        if agent is None:
            raise NotFoundError(f"instance {instance['id']} is on no known agent",
                                code="agent_not_found")
        docker = DockerAgent(agent["url"],
                             tls=agent_tls(self.berth.settings.agent_tls_dir, agent["id"]))
        output = docker.logs(instance.get("container_id") or instance["container"],
                             tail=tail, follow=follow)
        if isinstance(output, bytes | str):
            return iter([output if isinstance(output, bytes) else output.encode()])
        return (c if isinstance(c, bytes) else str(c).encode() for c in output)

    def _swarm_logs(self, service: Mapping[str, Any], tail: int) -> bytes:
        """The logs of a Swarm service's tasks (``service.logs`` on its manager)."""
        record = self.store.clusters.require(cluster_of(service))
        backend = SwarmBackend(record, tls_dir=self.berth.settings.agent_tls_dir)
        try:
            return backend.logs(str(service["name"]), tail=tail).encode()
        finally:
            backend.close()

    def _instance(self, name: str, instance_id: str | None) -> dict[str, Any]:
        instances = self.ops.list_instances(name)
        for instance in instances:
            if instance_id in (None, instance["id"]):
                return instance
        raise NotFoundError(f"service {name!r} has no instance {instance_id or ''}".strip(),
                            code="instance_not_found")

    # helpers -----------------------------------------------------------------
    def _masked(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """A service or generation record as views show it (see :func:`masked_record`)."""
        return masked_record(record)

    def _opened_options(self, service: Mapping[str, Any]) -> dict[str, Any]:
        """A service's options with sealed values opened, in memory, for an upgrade.

        :raises DataKeyError: without the data key that sealed them.
        """
        options = dict(service.get("options") or {})
        if not has_sealed(options):
            return options
        keys = require_keys(self.berth.settings.data_keys(), "open the service's secret "
                                                              "values to upgrade it")
        opened: dict[str, Any] = keys.open_tree(options)
        return opened


# package ownership: an upgrade stays in its service's repository -----------------------
def _upgrade_package(catalog: Any, installed: Mapping[str, Any], version: str | None,
                     repository: str | None) -> Any:
    """The package an upgrade moves to: from ``repository`` when given, else from the
    repository the service was installed from — never silently from another one.

    :raises NotFound: when that repository lacks the name or version; the hint names
        the other repositories that have it and how to move there explicitly.
    """
    name = str(installed.get("name", ""))
    source = repository or installed.get("repository") or None
    try:
        return catalog.resolve(name, version or None, repository=source)
    except CatalogError as exc:
        others = catalog.also_in(name, source) if source else []
        if repository or not others or exc.code not in ("package_not_found",
                                                        "version_not_found"):
            raise
        exc.hint = "; ".join(filter(None, [exc.hint, (
            f"the service came from {source!r}; {name} is also in {', '.join(others)}: "
            f"move it explicitly with --repository {others[0]}")]))
        raise


def _rollback_generation(service: Mapping[str, Any], history: Sequence[Mapping[str, Any]],
                         generation: int | None) -> int:
    """The generation a rollback returns to (the one before the current by default);
    an unknown one is left to ``DesiredState.rollback`` to refuse."""
    if generation is not None:
        return int(generation)
    current = int(service["generation"])
    earlier = [int(g["generation"]) for g in history if int(g["generation"]) < current]
    return earlier[-1] if earlier else current


def _identity(package: Any) -> dict[str, str]:
    return {"name": package.name, "version": package.version, "repository": package.repository}


def _pair(result: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """DesiredState.install's answer as (service, deployment)."""
    if isinstance(result, Mapping):
        return dict(result["service"]), dict(result["deployment"])
    service, deployment = result
    return dict(service), dict(deployment)


def _constraints(constraints: Sequence[Sequence[str]] | None) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(str(part) for part in c) for c in constraints or ())


def _counts(service: Mapping[str, Any], instances: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    running = [i for i in instances if i.get("state") == "running"]
    healthy = [i for i in running if i.get("health") in ("healthy", "none")]
    return {"desired": int(service.get("instances") or 0), "instances": len(instances),
            "running": len(running), "healthy": len(healthy)}
