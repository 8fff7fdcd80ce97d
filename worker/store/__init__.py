"""Berth's state records in Redis, behind one small store.

``Store`` composes sub-stores, one per domain, each in its own module:

- ``services`` / ``deployments`` / ``instances`` / ``agents`` — the cluster
  (``store/cluster.py``),
- ``auth`` — users and hashed API tokens (``store/auth.py``),
- ``hosted`` / ``repositories`` — published packages and repository settings
  (``store/packages.py``); ``owners`` — who each package name belongs to
  (``store/owners.py``).

Every sub-store shares one :class:`~worker.store.base.RedisState` (connection, key
prefix, compare-and-set, event stream). Sub-stores are built on first use, so a
process only pays for what it touches.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from .base import RedisState

__all__ = ["Store", "RedisState"]


class Store:
    """The state store: one Redis connection, one sub-store per domain."""

    def __init__(self, redis_client: Any, prefix: str = "berth:") -> None:
        self.state = RedisState(redis_client, prefix=prefix)

    @classmethod
    def from_url(cls, url: str, prefix: str = "berth:") -> Store:
        """Connect to the Redis at ``url`` (``redis://``, ``unix://``, ``rediss://``)."""
        return cls(RedisState.connect(url), prefix=prefix)

    @property
    def redis(self) -> Any:
        return self.state.redis

    @cached_property
    def services(self) -> Any:
        from .cluster import ServiceStore

        return ServiceStore(self.state)

    @cached_property
    def deployments(self) -> Any:
        from .cluster import DeploymentStore

        return DeploymentStore(self.state)

    @cached_property
    def instances(self) -> Any:
        from .cluster import InstanceStore

        return InstanceStore(self.state)

    @cached_property
    def agents(self) -> Any:
        from .cluster import AgentStore

        return AgentStore(self.state)

    @cached_property
    def auth(self) -> Any:
        from .auth import AuthStore

        return AuthStore(self.state)

    @cached_property
    def hosted(self) -> Any:
        from .packages import HostedPackageStore

        return HostedPackageStore(self.state)

    @cached_property
    def owners(self) -> Any:
        from .owners import PackageOwnerStore

        return PackageOwnerStore(self.state)

    @cached_property
    def repositories(self) -> Any:
        from .packages import RepositoryStore

        return RepositoryStore(self.state)
