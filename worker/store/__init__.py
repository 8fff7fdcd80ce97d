"""Berth's state records in Redis, behind one small store.

``Store`` composes sub-stores, one per domain, each in its own module:

- ``services`` / ``deployments`` / ``instances`` / ``agents`` — the cluster
  (``store/cluster.py``); ``clusters`` — Swarm clusters and their port blocks
  (``store/clusters.py``),
- ``registries`` — image registries and their (sealed) credentials
  (``store/registries.py``),
- ``auth`` — users and hashed API tokens (``store/auth.py``),
- ``hosted`` / ``repositories`` — published packages and repository settings
  (``store/packages.py``); ``owners`` — who each package name belongs to
  (``store/owners.py``); ``backups`` — what each backup holds and where
  (``store/backups.py``).

Every sub-store shares one :class:`~worker.store.base.RedisState` (connection, key
prefix, compare-and-set, event stream). Sub-stores are built on first use.
"""

from __future__ import annotations

from functools import cached_property
from typing import Protocol

import redis

from .auth import AuthStore
from .backups import BackupRecords
from .base import Durability, RedisState
from .cluster import AgentStore, DeploymentStore, InstanceStore, ServiceStore
from .clusters import ClusterStore
from .connection import RedisEndpoint, RedisSettings
from .owners import PackageOwnerStore
from .packages import HostedPackageStore, RepositoryStore
from .registries import RegistryStore

__all__ = ["Store", "RedisState", "Durability", "RedisEndpoint", "StoreSettings"]


class StoreSettings(RedisSettings, Protocol):
    """What :meth:`Store.from_settings` reads (a worker's or a server's settings)."""

    @property
    def prefix(self) -> str: ...
    @property
    def events_maxlen(self) -> int: ...
    @property
    def redis_min_replicas(self) -> int: ...
    @property
    def redis_wait_timeout(self) -> float: ...


class Store:
    """The state store: one Redis connection, one sub-store per domain."""

    def __init__(self, redis_client: redis.Redis, prefix: str = "berth:",
                 durability: Durability | None = None) -> None:
        self.state = RedisState(redis_client, prefix=prefix, durability=durability)

    @classmethod
    def from_url(cls, url: str, prefix: str = "berth:") -> Store:
        """Connect to the Redis at ``url`` (``redis://``, ``unix://``, ``rediss://``)."""
        return cls(RedisState.connect(url), prefix=prefix)

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> Store:
        """The store a worker's settings name: a URL or Sentinel, the key prefix and
        the events cap; writes wait for the replicas ``BERTH_REDIS_MIN_REPLICAS`` asks."""
        store = cls(RedisEndpoint.of(settings).client(), prefix=settings.prefix,
                    durability=Durability.of(settings))
        store.state.events_maxlen = settings.events_maxlen
        return store

    @classmethod
    def on_state(cls, state: RedisState) -> Store:
        """A store over an existing state (e.g. a fenced one, see ``RedisState.fenced``)."""
        store = cls.__new__(cls)
        store.state = state
        return store

    def fenced(self, key: str, token: str) -> Store:
        """This store for a writer holding lock ``key`` with ``token``: its writes are
        refused (``LockLost``) once the lock is not its own any more."""
        return Store.on_state(self.state.fenced(key, token))

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
    def registries(self) -> RegistryStore:
        return RegistryStore(self.state)

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

    @cached_property
    def backups(self) -> BackupRecords:
        return BackupRecords(self.state)

    @cached_property
    def clusters(self) -> ClusterStore:
        return ClusterStore(self.state)
