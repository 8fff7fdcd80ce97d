"""Berth's state records in Redis, behind one small store.

``Store`` composes sub-stores, one per domain, each in its own module:

- ``services`` / ``deployments`` / ``instances`` / ``agents`` — the cluster
  (``store/cluster.py``),
- ``auth`` — users and hashed API tokens (``store/auth.py``),
- ``hosted`` / ``repositories`` — published packages and repository settings
  (``store/packages.py``); ``owners`` — who each package name belongs to
  (``store/owners.py``).

Every sub-store shares one :class:`~worker.store.base.RedisState` (connection, key
prefix, compare-and-set, event stream). Sub-stores are built on first use.
"""

from __future__ import annotations

from functools import cached_property

import redis

from .auth import AuthStore
from .base import RedisState
from .cluster import AgentStore, DeploymentStore, InstanceStore, ServiceStore
from .owners import PackageOwnerStore
from .packages import HostedPackageStore, RepositoryStore

__all__ = ["Store", "RedisState"]


class Store:
    """The state store: one Redis connection, one sub-store per domain."""

    def __init__(self, redis_client: redis.Redis, prefix: str = "berth:") -> None:
        self.state = RedisState(redis_client, prefix=prefix)

    @classmethod
    def from_url(cls, url: str, prefix: str = "berth:") -> Store:
        """Connect to the Redis at ``url`` (``redis://``, ``unix://``, ``rediss://``)."""
        return cls(RedisState.connect(url), prefix=prefix)

    @property
    def redis(self) -> redis.Redis:
        return self.state.redis

    @cached_property
    def services(self) -> ServiceStore:
        return ServiceStore(self.state)

    @cached_property
    def deployments(self) -> DeploymentStore:
        return DeploymentStore(self.state)

    @cached_property
    def instances(self) -> InstanceStore:
        return InstanceStore(self.state)

    @cached_property
    def agents(self) -> AgentStore:
        return AgentStore(self.state)

    @cached_property
    def auth(self) -> AuthStore:
        return AuthStore(self.state)

    @cached_property
    def hosted(self) -> HostedPackageStore:
        return HostedPackageStore(self.state)

    @cached_property
    def owners(self) -> PackageOwnerStore:
        return PackageOwnerStore(self.state)

    @cached_property
    def repositories(self) -> RepositoryStore:
        return RepositoryStore(self.state)
