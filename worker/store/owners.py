"""Package name ownership records in Redis: ``packages:owners`` (hash name → JSON).

The rules (what a record says, who may publish) are the core's, in
:mod:`catalog.owners`; publishing checks them atomically in
:class:`worker.store.packages.HostedPackageStore`. This store reads the records, lets
the catalog claim names nobody owns yet, and makes an admin's changes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from redis.exceptions import WatchError

from catalog.errors import Conflict
from catalog.owners import HOSTED, ownership

from .base import Document
from .packages import GENERATION_KEY, OWNERS_KEY, _Base, _text

__all__ = ["PackageOwnerStore"]


class PackageOwnerStore(_Base):
    """Who a package name belongs to (see the module docstring for the record).

    Names are claimed once, never overwritten by a claim (``HSETNX``): the catalog
    claims names for the repository that first serves them, publishing claims a new
    name for its publisher. Only an admin changes a record afterwards, and every
    change bumps the catalog generation (the name may resolve elsewhere now).
    """

    @property
    def key(self) -> str:
        return self._key(*OWNERS_KEY)

    def all(self) -> dict[str, Document]:
        """Every ownership record by name."""
        return {_text(k): json.loads(_text(v)) for k, v in self.redis.hgetall(self.key).items()}

    def get(self, name: str) -> Document | None:
        """One name's record, or None when nobody owns it yet."""
        raw = self.redis.hget(self.key, name)
        return json.loads(_text(raw)) if raw is not None else None

    def claim(self, claims: Mapping[str, Mapping[str, object]]) -> None:
        """Record ``claims`` for names that have no record yet (others win races)."""
        if not claims:
            return
        with self.redis.pipeline(transaction=False) as pipe:
            for name, record in claims.items():
                pipe.hsetnx(self.key, name, json.dumps(dict(record)))
            pipe.execute()

    def add(self, name: str, *, repository: str | None = None,
            maintainer: str | None = None, actor: str = "") -> Document:
        """Share ``name`` with a repository, or with a maintainer (who may then publish
        it to ``hosted``, which joins the name's repositories)."""
        def change(record: dict[str, Any]) -> Document:
            repos, people = list(record["repositories"]), list(record["maintainers"])
            repos += [repository] if repository else [HOSTED] if maintainer else []
            people += [maintainer] if maintainer else []
            return ownership(repos, people, by=actor, at=time.time())

        return self._change(name, change, actor, "package.owner_added",
                            {"repository": repository, "maintainer": maintainer})

    def remove(self, name: str, *, repository: str | None = None,
               maintainer: str | None = None, actor: str = "") -> Document:
        """Stop sharing ``name`` with a repository or a maintainer.

        :raises Conflict: when that would leave the name with no repository.
        """
        def change(record: dict[str, Any]) -> Document:
            repos = [r for r in record["repositories"] if r != repository]
            people = [m for m in record["maintainers"] if m != maintainer]
            if not repos:
                raise Conflict(f"{repository!r} is the only repository {name!r} belongs to",
                               package=name, hint=f"move the name instead: berth package "
                               f"owners transfer {name} --repository OTHER")
            return ownership(repos, people if HOSTED in repos else [], by=actor, at=time.time())

        return self._change(name, change, actor, "package.owner_removed",
                            {"repository": repository, "maintainer": maintainer})

    def transfer(self, name: str, repository: str, actor: str = "") -> Document:
        """Give ``name`` to ``repository`` alone (its hosted maintainers are kept only
        when that is ``hosted``)."""
        def change(record: dict[str, Any]) -> Document:
            people = record["maintainers"] if repository == HOSTED else []
            return ownership([repository], people, by=actor, at=time.time())

        return self._change(name, change, actor, "package.owner_transferred",
                            {"repository": repository})

    def _change(self, name: str, change: Callable[[dict[str, Any]], Document], actor: str,
                event: str, data: Mapping[str, object]) -> Document:
        """Apply ``change`` to the name's record (an empty one when unowned) atomically,
        bump the generation and publish ``event``."""
        replid = self.state.replication_id()
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(self.key)  # type: ignore[no-untyped-call]
                    raw = pipe.hget(self.key, name)
                    current = json.loads(_text(raw)) if raw is not None else \
                        ownership([], [])
                    record = change(current)
                    pipe.multi()
                    pipe.hset(self.key, name, json.dumps(record))
                    pipe.incr(self._key(*GENERATION_KEY))
                    pipe.xadd(self.state.events_key, self.state.event_fields(
                        event, name, actor, {k: v for k, v in data.items() if v}),
                        maxlen=self.state.events_maxlen, approximate=True)
                    pipe.execute()
                    break
                except WatchError:
                    continue
        self.state.confirm_durable(replid)
        return record
