"""The store base against a real Redis: revisions, compare-and-set, transactions, events."""

from __future__ import annotations

import threading

import pytest

from worker.errors import ConcurrentChange, ServiceNotFound
from worker.store.base import RedisState


def test_connect_gives_a_text_client(redis_url):
    client = RedisState.connect(redis_url)
    assert client.ping() is True
    client.close()


def test_key_joins_prefix_and_parts(store):
    assert store.state.key("service", "web") == store.state.prefix + "service:web"


def test_create_doc_sets_rev_one_and_refuses_a_taken_key(store):
    key = store.state.key("doc", "a")
    assert store.state.create_doc(key, {"x": 1}) == {"x": 1, "rev": 1}
    assert store.state.create_doc(key, {"x": 2}) is None
    assert store.state.get_doc(key) == {"x": 1, "rev": 1}


def test_cas_update_bumps_rev_and_none_leaves_it(store):
    key = store.state.key("doc", "b")
    store.state.create_doc(key, {"n": 0})
    assert store.state.cas_update(key, lambda d: {**d, "n": 5})["rev"] == 2
    assert store.state.cas_update(key, lambda d: None)["rev"] == 2
    assert store.state.cas_update(store.state.key("doc", "missing"), lambda d: d) is None


def test_cas_put_refuses_a_stale_revision(store):
    key = store.state.key("doc", "c")
    first = store.state.create_doc(key, {"n": 0})
    store.state.cas_put(key, {**first, "n": 1})
    with pytest.raises(ConcurrentChange) as caught:
        store.state.cas_put(key, {**first, "n": 2})
    assert caught.value.to_dict()["error"] == "concurrent_change"
    assert store.state.get_doc(key)["n"] == 1


def test_concurrent_increments_are_never_lost(redis_url, store):
    key = store.state.key("doc", "counter")
    store.state.create_doc(key, {"n": 0})

    def bump() -> None:
        state = RedisState(RedisState.connect(redis_url), prefix=store.state.prefix)
        for _ in range(50):
            state.cas_update(key, lambda d: {**d, "n": d["n"] + 1})

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    doc = store.state.get_doc(key)
    assert doc["n"] == 200
    assert doc["rev"] == 201


def test_an_aborted_transaction_writes_nothing_not_even_its_event(store):
    key = store.state.key("doc", "d")

    def change(tx):
        tx.put(key, {"x": 1})
        tx.event("doc.created", "d")
        raise ServiceNotFound("abort")

    with pytest.raises(ServiceNotFound):
        store.state.transact(change)
    assert store.state.get_doc(key) is None
    assert store.state.read_events() == []


def test_events_are_read_in_order_after_an_id(store):
    first = store.state.publish_event("a.one", "s1", "token:x", {"k": 1})
    store.state.publish_event("a.two", "s2", "", None)
    events = store.state.read_events()
    assert [e["type"] for e in events] == ["a.one", "a.two"]
    assert events[0]["data"] == {"k": 1} and events[0]["actor"] == "token:x"
    assert events[0]["at"] > 0
    assert [e["type"] for e in store.state.read_events(first)] == ["a.two"]
    assert store.state.read_events(store.state.last_event_id(), block_ms=10) == []


def test_event_stream_is_capped(redis_url, store):
    state = RedisState(store.redis, prefix=store.state.prefix, events_maxlen=10)
    for i in range(300):
        state.publish_event("x", str(i))
    assert store.redis.xlen(state.events_key) < 300
