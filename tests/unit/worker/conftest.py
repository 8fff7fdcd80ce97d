"""Fixtures of the worker's unit tests: a store on a real, throw-away ``redis-server``.

The server is the test bed plugin's lone ``redis_server`` (a unix socket, no Docker);
each test gets its own key prefix, so tests never see each other's records.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from worker.store import Store


@pytest.fixture
def store(redis_url: str) -> Iterator[Store]:
    """A store on the session's Redis under a prefix of its own."""
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    s = Store.from_url(redis_url, prefix=prefix)
    yield s
    keys = list(s.redis.scan_iter(match=prefix + "*"))
    if keys:
        s.redis.delete(*keys)
    s.redis.close()
