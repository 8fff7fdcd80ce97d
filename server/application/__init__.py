"""The application layer: one module per domain, what the API and the store front do.

Views parse input and call one method of one of these; nothing else in ``server/``
holds domain logic. Each module owns one domain:

- :mod:`.catalog` — browsing the catalog (search pages, packages, versions, tags);
- :mod:`.services` — installing, changing and inspecting services and deployments;
- :mod:`.agents` — registering, draining and removing agents;
- :mod:`.repositories` — the repositories the catalog draws from;
- :mod:`.publishing` — publishing and yanking versions, and who owns a name.

They may import ``catalog``, ``worker`` (its store, errors and plain functions, never
its Celery app), ``server.errors`` and ``server.masking``; never Flask, never
``server.api`` or ``server.storefront``. Methods return JSON-ready dicts and raise
``CatalogError``, ``WorkerError`` or :class:`server.errors.ApiError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .agents import AgentRegistry
from .catalog import CatalogBrowser
from .publishing import Publisher
from .repositories import RepositoryRegistry
from .services import ServiceManager

__all__ = ["Application", "AgentRegistry", "CatalogBrowser", "Publisher",
           "RepositoryRegistry", "ServiceManager"]


@dataclass(frozen=True)
class Application:
    """The five domain modules of one server process, built on its ``Berth``."""

    catalog: CatalogBrowser
    services: ServiceManager
    agents: AgentRegistry
    repositories: RepositoryRegistry
    publishing: Publisher

    @classmethod
    def build(cls, berth: Any) -> Application:
        """Each domain on the server's collaborators (``server.context.Berth``)."""
        catalog = CatalogBrowser(berth)
        return cls(catalog=catalog, services=ServiceManager(berth, catalog),
                   agents=AgentRegistry(berth), repositories=RepositoryRegistry(berth),
                   publishing=Publisher(berth))
