"""Hosted packages and repository records in a real Redis."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from catalog.errors import Conflict, NameOwned, VersionExists, VersionNotFound
from worker.store.packages import RepositoryExists, RepositoryNotFound


def test_publish_is_atomic_and_immutable(store: Any) -> None:
    hosted = store.hosted
    before = store.repositories.generation()
    meta = hosted.publish("web", "1.0.0", b"\x1f\x8b\x00bytes", digest="sha256:x", actor="me")
    assert meta["published_by"] == "me" and meta["yanked"] is None
    assert hosted.get_bundle("web", "1.0.0") == b"\x1f\x8b\x00bytes"
    assert store.repositories.generation() != before
    with pytest.raises(VersionExists):
        hosted.publish("web", "1.0.0", b"other", digest="sha256:y", actor="me")
    assert hosted.get_bundle("web", "1.0.0") == b"\x1f\x8b\x00bytes"


def test_a_name_belongs_to_its_first_publisher_and_is_refused_to_others(store: Any) -> None:
    store.hosted.publish("web", "1.0.0", b"a", digest="1", actor="token:alice")
    assert store.owners.get("web")["maintainers"] == ["token:alice"]
    store.owners.claim({"db": {"repositories": ["universe"], "maintainers": []},
                        "web": {"repositories": ["elsewhere"], "maintainers": []}})
    assert store.owners.get("web")["repositories"] == ["hosted"]  # a claim never overwrites
    before = store.repositories.generation()
    with pytest.raises(NameOwned, match="'web' in repository 'hosted' belongs to token:alice"):
        store.hosted.publish("web", "2.0.0", b"b", digest="2", actor="token:mallory")
    with pytest.raises(NameOwned, match="'db' belongs to repository 'universe'"):
        store.hosted.publish("db", "1.0.0", b"c", digest="3", actor="token:alice")
    assert store.hosted.names() == ["web"] and store.repositories.generation() == before
    with pytest.raises(NameOwned):
        store.hosted.yank("web", "1.0.0", "mine now", "token:mallory")
    assert store.hosted.yank("web", "1.0.0", "admin says", "token:root", admin=True)
    shared = store.owners.add("db", maintainer="token:alice", actor="admin")
    assert shared["repositories"] == ["universe", "hosted"]
    store.hosted.publish("db", "1.0.0", b"c", digest="3", actor="token:alice")
    assert store.owners.transfer("db", "universe")["maintainers"] == []
    with pytest.raises(Conflict, match="only repository"):
        store.owners.remove("db", repository="universe")


def test_concurrent_publishes_of_one_version_store_exactly_one(store: Any) -> None:
    def attempt(i: int) -> bool:
        try:
            store.hosted.publish("race", "1.0.0", f"bundle {i}".encode(), digest=str(i))
            return True
        except VersionExists:
            return False

    with ThreadPoolExecutor(8) as pool:
        assert sum(pool.map(attempt, range(16))) == 1
    [meta] = store.hosted.versions("race")
    assert store.hosted.get_bundle("race", "1.0.0") == f"bundle {meta['digest']}".encode()


def test_yank_marks_and_lists(store: Any) -> None:
    store.hosted.publish("web", "1.0.0", b"a", digest="1", actor="me")
    store.hosted.publish("web", "1.1.0", b"b", digest="2", actor="me")
    store.hosted.publish("db", "2.0.0", b"c", digest="3", actor="me")
    generation = store.repositories.generation()
    yanked = store.hosted.yank("web", "1.1.0", "broken", "me")
    assert yanked["yanked"]["reason"] == "broken" and yanked["yanked"]["actor"] == "me"
    assert store.repositories.generation() != generation
    assert store.hosted.names() == ["db", "web"]
    assert {(m["name"], m["version"]) for m in store.hosted.list_versions()} == {
        ("web", "1.0.0"), ("web", "1.1.0"), ("db", "2.0.0")}
    with pytest.raises(VersionNotFound):
        store.hosted.yank("web", "9.9.9", "no", "me")


def test_generation_changes_when_redis_is_emptied(store: Any) -> None:
    store.repositories.bump()
    seen = store.repositories.generation()
    for key in store.redis.scan_iter(match=store.state.prefix + "catalog:*"):
        store.redis.delete(key)
    store.repositories.bump()
    assert store.repositories.generation()[1] == seen[1]
    assert store.repositories.generation() != seen  # a new epoch: processes rebuild


def test_repository_records(store: Any) -> None:
    repos = store.repositories
    repos.add({"name": "b", "url": "http://b/", "priority": 20})
    repos.add({"name": "a", "url": "http://a/", "priority": 20})
    repos.add({"name": "z", "url": "http://z/", "priority": 5})
    assert [r["name"] for r in repos.list()] == ["z", "a", "b"]
    with pytest.raises(RepositoryExists):
        repos.add({"name": "a", "url": "http://other/"})
    assert repos.update("a", stale=True, error="down")["stale"]
    assert repos.get("a")["url"] == "http://a/"
    assert repos.save_copy("a", listing=b"{}", changed={"web": ("d1", {"v": 1})}, removed=[],
                           fields={"stale": False})
    assert repos.documents("a") == {"web": ("d1", {"v": 1})}
    assert repos.remove("a") and not repos.remove("a")
    assert repos.digests("a") == {} and repos.get("a") is None
    with pytest.raises(RepositoryNotFound):
        repos.require("a")
    assert not repos.save_copy("a", listing=b"{}", changed={}, removed=[], fields={})
