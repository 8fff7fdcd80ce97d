"""The server's catalog source: rebuilt when the Redis generation moves, and robust."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from server.catalog_cache import CatalogCache, parse_directory_setting
from server.settings import Settings
from worker.store import Store

UNIVERSE = Path(__file__).resolve().parents[3] / "universe"


def _Settings(**values: Any) -> Settings:  # noqa: N802 - reads like the class it builds
    return Settings(universe_dir=str(UNIVERSE), **values)


@pytest.fixture
def store(server_redis_url: str) -> Store:
    client = redis.Redis.from_url(server_redis_url, decode_responses=True)
    client.flushdb()
    return Store(client)


def test_directory_setting() -> None:
    assert parse_directory_setting(" a=/x ; b=/y/z@7;") == [("a", "/x", 150), ("b", "/y/z", 7)]
    with pytest.raises(ValueError, match="name=path"):
        parse_directory_setting("nopath")
    with pytest.raises(ValueError, match="priority"):
        parse_directory_setting("a=/x@high")


def test_rebuilt_only_when_the_generation_moves(store: Store) -> None:
    source = CatalogCache(_Settings(), store)
    first = source.get()
    assert source.get() is first
    store.repositories.bump()
    second = source.get()
    assert second is not first and source.get() is second
    other = CatalogCache(_Settings(), store)  # another process agrees on the content
    assert [r.name for r in other.get().repositories] == [r.name for r in second.repositories]


def test_redis_down_serves_the_last_catalog(store: Store) -> None:
    source = CatalogCache(_Settings(), store)
    built = source.get()
    down = Store(redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2,
                             retry=Retry(NoBackoff(), 0)))
    source.store = down
    assert source.get() is built
    cold = CatalogCache(_Settings(), down)  # never saw Redis: the builtin universe alone
    assert [r.name for r in cold.get().repositories] == ["universe"]


def test_configured_directories_and_priorities(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "team" / "packages" / "team-app" / "1.0.0"
    shutil.copytree(UNIVERSE / "packages" / "hello" / "1.0.0", folder)
    meta = json.loads((folder / "package.json").read_text())
    (folder / "package.json").write_text(json.dumps({**meta, "name": "team-app"}))
    settings = _Settings(repository_dirs=f"team={tmp_path / 'team'}@20", hosted_priority=120)
    catalog: Any = CatalogCache(settings, store).get()
    kinds = {r.name: (r.kind, r.priority) for r in catalog.repositories}
    assert kinds["team"] == ("directory", 20) and kinds["hosted"] == ("hosted", 120)
    assert catalog.resolve("team-app").repository == "team"


def test_a_universe_checkout_is_a_directory_repository_like_any_other(store: Store) -> None:
    """A DC/OS Universe folder named in BERTH_REPOSITORY_DIRS is read in its own format."""
    universe_checkout = Path(__file__).resolve().parents[2] / "data" / "dcos-hello"
    settings = _Settings(repository_dirs=f"mesosphere={universe_checkout}@50")
    catalog: Any = CatalogCache(settings, store).get()
    package = catalog.resolve("dcos-hello")
    assert (package.repository, package.format) == ("mesosphere", "dcos")
    assert package.upstream_version == "1.0.0-dcos" and package.installable


def test_a_build_claims_each_name_for_the_repository_that_serves_it_first(
        store: Store) -> None:
    """hello was published to hosted before names had owners (the takeover of the issue):
    the claim goes to the universe, which serves it too; a hosted-only name goes to its
    first publisher."""
    store.hosted.publish("hello", "99.0.0", _hello_bundle("hello", "99.0.0"), digest="a",
                         actor="token:mallory")
    store.hosted.publish("team-tool", "1.0.0", _hello_bundle("team-tool", "1.0.0"),
                         digest="b", actor="token:alice")
    store.redis.delete(store.owners.key)  # as before ownership existed
    store.repositories.bump()
    catalog: Any = CatalogCache(_Settings(), store).get()
    owners = store.owners.all()
    assert owners["hello"]["repositories"] == ["universe"]
    assert owners["postgres"]["repositories"] == ["universe"]
    assert owners["team-tool"] == {**owners["team-tool"], "repositories": ["hosted"],
                                   "maintainers": ["token:alice"]}
    assert catalog.resolve("hello").repository == "universe"
    assert catalog.also_in("hello") == ["hosted"]
    assert catalog.resolve("team-tool").repository == "hosted"


def _hello_bundle(name: str, version: str) -> bytes:
    import tempfile

    from catalog.bundle import build_bundle

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / name / version
        shutil.copytree(UNIVERSE / "packages" / "hello" / "1.0.0", folder)
        meta = json.loads((folder / "package.json").read_text())
        (folder / "package.json").write_text(json.dumps({**meta, "name": name,
                                                         "version": version}))
        return build_bundle(folder)
