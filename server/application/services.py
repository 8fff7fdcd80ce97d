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

from catalog.errors import CatalogError
from catalog.names import require_service_name
from catalog.options import (
    deep_merge,
    mask_secrets,
    package_secret_paths,
    resolve_options,
    upgrade_options,
)
from catalog.render import render_service
from catalog.spec import mask_spec
from worker.agents import AgentPool
from worker.containers import volume_names
from worker.docker_agent import DockerAgent, agent_tls
from worker.store.crypto import has_sealed, require_keys
from worker.volumes import inventory

from ..errors import ApiError, Invalid
from ..masking import mask_all, masked_record, refuse_leaks, union, unmasked
from .catalog import CatalogBrowser

MAX_INSTANCES = 1000
VOLUME_READ_TIMEOUT = 5   # seconds an agent has to list its volumes for one request


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
               constraints: Sequence[Sequence[str]] = ()) -> dict[str, Any]:
        """The spec an install would write, secrets masked; nothing is installed."""
        package, service, resolved, spec, paths = self._prepare(
            name, version, service_name, options, instances, constraints)
        return {"package": _identity(package), "name": service,
                "options": mask_secrets({}, resolved, paths),
                "spec": mask_spec(spec, package, resolved, paths=paths)}

    def _prepare(self, package: str, version: str | None, name: str | None,
                 options: Mapping[str, Any] | None, instances: int | None,
                 constraints: Sequence[Sequence[str]]) -> tuple[Any, str, dict[str, Any],
                                                                dict[str, Any], list[str]]:
        """What an install of ``package`` would write: the package, the service name,
        the resolved options, the rendered spec and the secret paths.

        :raises SpecRefused: when a secret value would land where it cannot be sealed.
        """
        pkg = self.package_object(package, version)
        paths = package_secret_paths(pkg)
        service_name = check_service_name(name or pkg.name)
        resolved = resolve_options(pkg, dict(options or {}))
        spec = self._render(pkg, resolved, service_name=service_name,
                            instances=check_instances(instances),
                            constraints=_constraints(constraints))
        refuse_leaks(pkg, spec, resolved, paths)
        return pkg, service_name, resolved, spec, paths

    # services: writes --------------------------------------------------------
    def install(self, actor: str, *, package: str, version: str | None = None,
                name: str | None = None, options: Mapping[str, Any] | None = None,
                instances: int | None = None,
                constraints: Sequence[Sequence[str]] = ()) -> dict[str, Any]:
        """Resolve, validate, render and write a new service; returns service and deployment.

        :raises ServiceExists: when the name is taken (409).
        """
        pkg, service_name, resolved, spec, paths = self._prepare(
            package, version, name, options, instances, constraints)
        result = self.ops.install(
            name=service_name, package=_identity(pkg), options=resolved, spec=spec,
            instances=spec.get("instances", 1), actor=actor, secret_paths=paths)
        service, deployment = _pair(result)
        return {"service": self._masked(service), "deployment": deployment}

    def scale(self, actor: str, name: str, instances: int) -> dict[str, Any]:
        """Change the instance count; returns the deployment."""
        count = check_instances(instances)
        return self.ops.scale(name, count, actor=actor)

    def upgrade(self, actor: str, name: str, *, version: str | None = None,
                options: Mapping[str, Any] | None = None,
                instances: int | None = None,
                repository: str | None = None) -> dict[str, Any]:
        """Move a service to another version and/or options; returns the deployment.

        The version comes from the repository the service was installed from, unless
        ``repository`` moves it explicitly. The old options are merged over the new
        version's defaults (keys it does not know are dropped), then the given options
        over that.
        """
        service = self.ops.get_service(name)
        old = service.get("package") or {}
        pkg = _upgrade_package(self.catalog(), old, version, repository)
        paths = package_secret_paths(pkg)
        merged = upgrade_options(self._opened_options(service), pkg)
        if options:
            merged = deep_merge(merged, unmasked(options, service, paths))
        resolved = resolve_options(pkg, merged)
        count = check_instances(instances)
        spec = self._render(pkg, resolved, service_name=name,
                          instances=count if count is not None else service.get("instances"))
        refuse_leaks(pkg, spec, resolved, union(paths, service.get("secret_paths")))
        return self.ops.update(name, package=_identity(pkg), options=resolved, spec=spec,
                               instances=count, actor=actor, secret_paths=paths)

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

    def rollback(self, actor: str, name: str, generation: int | None = None) -> dict[str, Any]:
        """Return to an earlier generation (the previous one by default)."""
        return self.ops.rollback(name, generation, actor=actor)

    def restart(self, actor: str, name: str) -> dict[str, Any]:
        """Replace every instance with a fresh one of the same generation."""
        return self.ops.restart(name, actor=actor)

    def uninstall(self, actor: str, name: str, *, delete_data: bool = False
                  ) -> dict[str, Any]:
        """Stop and remove every instance, then the service (and with ``delete_data``
        its named volumes on every agent).

        Returns ``{"deployment", "delete_data", "volumes"}``: ``volumes`` are the named
        volumes of the service's spec on the agents its instances are on (from the
        records, so an agent that is away never holds the answer): they stay, left
        over, unless ``delete_data``.
        """
        service = self.ops.get_service(name)
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
                             installed=[s["name"] for s in self.ops.list_services()])
        finally:
            pool.close()

    # services: reads ---------------------------------------------------------
    def services(self) -> list[dict[str, Any]]:
        """Every service with instance counts (desired, running, healthy)."""
        result = []
        for service in self.ops.list_services():
            instances = self.ops.list_instances(service["name"])
            result.append({**self._masked(service), "counts": _counts(service, instances)})
        return result

    def inventory(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Every service record and every instance record, for counting by state
        (``/metrics``); options are left out."""
        services = [{k: v for k, v in s.items() if k != "options"}
                    for s in self.ops.list_services()]
        instances = [i for s in services for i in self.ops.list_instances(s["name"])]
        return services, instances

    def status(self, name: str) -> dict[str, Any]:
        """A service, desired and actual: ``instances_list`` has each instance with agent,
        state, health, ports (``instances`` stays the desired count)."""
        service = self.ops.get_service(name)
        instances = self.ops.list_instances(name)
        return {**self._masked(service), "counts": _counts(service, instances),
                "instances_list": instances}

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
