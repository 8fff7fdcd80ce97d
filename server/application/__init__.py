"""The application layer: one module per domain, what the API and the store front do.

Views parse input and call one method of one of these; nothing else in ``server/``
holds domain logic. Each module owns one domain:

- :mod:`.catalog` — browsing the catalog (search pages, packages, versions, tags);
- :mod:`.services` — installing, changing and inspecting services and deployments;
- :mod:`.agents` — registering, draining and removing agents;
- :mod:`.clusters` — where services run: Berth's own agents or a Docker Swarm;
- :mod:`.repositories` — the repositories the catalog draws from;
- :mod:`.registries` — the image registries Berth pulls from with credentials;
- :mod:`.publishing` — publishing and yanking versions, and who owns a name;
- :mod:`.routing` — endpoints, routes, proxies, the Traefik and Prometheus documents;
- :mod:`.backups` — backups of services' volumes: take, restore, delete, download.

They may import ``catalog``, ``worker`` (its store, errors and plain functions, never
its Celery app), ``server.errors`` and ``server.masking``; never Flask, never
``server.api`` or ``server.storefront``. Methods return JSON-ready dicts and raise
``CatalogError``, ``WorkerError`` or :class:`server.errors.ApiError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .agents import AgentRegistry
from .backups import BackupManager
from .catalog import CatalogBrowser
from .clusters import ClusterRegistry
from .publishing import Publisher
from .registries import RegistryManager
from .repositories import RepositoryRegistry
from .routing import Routing
from .services import ServiceManager

__all__ = ["Application", "AgentRegistry", "BackupManager", "CatalogBrowser",
           "ClusterRegistry", "Publisher", "RegistryManager", "RepositoryRegistry", "Routing",
           "ServiceManager"]


@dataclass(frozen=True)
class Application:
    """The domain modules of one server process, built on its ``Berth``."""

    catalog: CatalogBrowser
    services: ServiceManager
    agents: AgentRegistry
    repositories: RepositoryRegistry
    publishing: Publisher
    registries: RegistryManager
    routing: Routing
    backups: BackupManager
    clusters: ClusterRegistry

    @classmethod
    def build(cls, berth: Any) -> Application:
        """Each domain on the server's collaborators (``server.context.Berth``)."""
        catalog = CatalogBrowser(berth)
        return cls(catalog=catalog, services=ServiceManager(berth, catalog),
                   agents=AgentRegistry(berth), repositories=RepositoryRegistry(berth),
                   publishing=Publisher(berth), registries=RegistryManager(berth),
                   routing=Routing(berth), backups=BackupManager(berth),
                   clusters=ClusterRegistry(berth))
