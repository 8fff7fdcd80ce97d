"""The store's guards for a replicated Redis, on a real (lone) redis-server.

- durability: with replicas asked for and none there, a write is refused
  (``NotDurable``) after ``WAIT`` times out, never silently acknowledged;
- fencing: a deployer writing through its lock's fenced store is refused
  (``LockLost``) once the lock holds another token, and nothing of its write lands;
- the schedule's lease and period claims: one claim per period, only for the holder.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from worker.errors import LockLost, NotDurable
from worker.instances import ServiceLock
from worker.settings import WorkerSettings
from worker.store import Durability, Store
from worker.watcher import Watcher


def test_a_write_no_replica_holds_is_not_acknowledged(store: Store) -> None:
    durable = Store.on_state(store.state.with_durability(Durability(replicas=1, timeout=0.2)))
    started = time.monotonic()
    with pytest.raises(NotDurable) as caught:
        durable.state.create_doc(durable.state.key("probe"), {"a": 1})
    assert 0.15 < time.monotonic() - started < 2      # waited for WAIT, not forever
    assert caught.value.data["replicas"] == 0
    assert "1 replicas" in caught.value.message or "of 1" in caught.value.message
    # the master has it (the caller is told it may or may not stay)
    assert store.state.get_doc(store.state.key("probe")) is not None


def test_without_replicas_asked_a_write_returns_at_once(store: Store) -> None:
    started = time.monotonic()
    store.state.create_doc(store.state.key("probe"), {"a": 1})
    assert time.monotonic() - started < 0.5
    assert not store.redis.exists(store.state.prefix + "durable")  # no WAIT was sent


def test_reads_and_empty_transactions_never_wait(store: Store) -> None:
    durable = Store.on_state(store.state.with_durability(Durability(replicas=1, timeout=5)))
    started = time.monotonic()
    assert durable.state.cas_update(durable.state.key("missing"), lambda d: d) is None
    assert time.monotonic() - started < 1


def test_durability_follows_the_settings() -> None:
    assert Durability.of(WorkerSettings()).replicas == 0
    sentinel = WorkerSettings(redis_sentinels="127.0.0.1:26379")
    assert Durability.of(sentinel).replicas == 1
    assert Durability.of(WorkerSettings(redis_sentinels="127.0.0.1:26379",
                                        redis_min_replicas=2)).replicas == 2
    assert Durability.of(WorkerSettings(redis_min_replicas=0,
                                        redis_sentinels="a:1")).replicas == 0


def test_a_fenced_writer_is_refused_once_its_lock_is_taken(store: Store) -> None:
    first = ServiceLock(store.state, "web", ttl=5)
    assert first.acquire()
    fenced = first.fenced(store)
    key = store.state.key("doc")
    fenced.state.create_doc(key, {"by": "first"})          # holds the lock: written
    # the lock is lost (a failover dropped it, or it expired in a stall) and taken
    store.redis.delete(first.key)
    second = ServiceLock(store.state, "web", ttl=5)
    assert second.acquire()
    assert second.generation == first.generation + 1
    with pytest.raises(LockLost):
        fenced.state.cas_update(key, lambda d: {**d, "by": "first again"})
    with pytest.raises(LockLost):
        fenced.state.check_fence()
    assert store.state.get_doc(key)["by"] == "first"        # nothing of it landed
    second.fenced(store).state.cas_update(key, lambda d: {**d, "by": "second"})
    assert store.state.get_doc(key)["by"] == "second"
    assert not first.renew() and first.lost.is_set()        # its renewal fails too


def test_a_lock_change_between_check_and_commit_aborts_the_commit(store: Store) -> None:
    lock = ServiceLock(store.state, "web", ttl=5)
    assert lock.acquire()
    fenced = lock.fenced(store)
    key = store.state.key("doc")

    def change(tx: Any) -> None:
        tx.get(key)
        store.redis.set(lock.key, "999:someone-else")        # taken mid-transaction
        tx.put(key, {"by": "stale"})

    with pytest.raises(LockLost):
        fenced.state.transact(change)
    assert store.state.get_doc(key) is None


def test_the_lock_is_free_again_after_release(store: Store) -> None:
    lock = ServiceLock(store.state, "web", ttl=5)
    assert lock.acquire() and not ServiceLock(store.state, "web", ttl=5).acquire()
    lock.release()
    assert ServiceLock(store.state, "web", ttl=5).acquire()


class _Watcher(Watcher):
    """A watcher on the test's store, with no agents or Celery behind it."""

    def __init__(self, store: Store) -> None:   # noqa: D107 - the parts the lease needs
        import uuid

        self.store = store
        self.settings = WorkerSettings(heartbeat_interval=1.0)
        self.token = uuid.uuid4().hex
        self.leader = False


def test_one_watcher_leads_and_only_the_leader_claims_a_period(store: Store) -> None:
    one, two = _Watcher(store), _Watcher(store)
    assert one._lead() and not two._lead()
    assert one.claim("berth.heartbeat", 100, 1.0)
    assert not one.claim("berth.heartbeat", 100, 1.0)        # once per period
    assert not two.claim("berth.heartbeat", 101, 1.0)        # not the leader
    # the lease is lost (a failover) and both believe they lead for a moment: the
    # period still goes to exactly one of them
    store.redis.delete(one.lease_key)
    assert two._lead()
    claims = [w.claim("berth.heartbeat", 101, 1.0) for w in (one, two)]
    assert claims == [False, True]


def _durable(store: Store) -> Store:
    return Store.on_state(store.state.with_durability(Durability(replicas=1, timeout=0.1)))


def test_bundles_repositories_and_owners_follow_the_same_rule(store: Store) -> None:
    durable = _durable(store)
    with pytest.raises(NotDurable):
        durable.hosted.publish("web", "1.0.0", b"bundle", digest="sha256:x", actor="me")
    with pytest.raises(NotDurable):
        durable.hosted.yank("web", "1.0.0", "broken", actor="me")
    with pytest.raises(NotDurable):
        durable.repositories.add({"name": "remote", "url": "https://example.org/",
                                  "priority": 10}, actor="me")
    with pytest.raises(NotDurable):
        durable.owners.add("web", repository="remote", actor="me")


def test_a_confirmation_that_reaches_another_master_confirms_nothing(store: Store) -> None:
    """After a failover a retried confirmation would WAIT on the new master, which may
    lack the write: the replication id the commit saw must still be the master's."""
    durable = _durable(store)
    here = durable.state.replication_id()
    assert here and here == durable.state.replication_id()
    with pytest.raises(NotDurable, match="master changed"):
        durable.state.confirm_durable("f" * 40)
