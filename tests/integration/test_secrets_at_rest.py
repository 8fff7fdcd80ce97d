"""Secret option values at rest, on the real test bed (Redis, engines, worker, server).

A service is installed with a known secret and upgraded once (two generations). Redis
is made to write its AOF afresh and an RDB dump; neither file, nor any record, holds
the secret, while a plain option value next to it is found there (the search can see
record text). The running container has the real value in its environment: workers
open sealed values when they create containers. Then the data key is rotated: every
record is re-sealed with a new key, the old key is removed from the worker, and the
service still deploys with the real value.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.client import BerthClient
from worker.store.crypto import SEALED, generate_key

pytestmark = pytest.mark.integration

SECRET = "Sup3r-" + uuid.uuid4().hex   # the value the test looks for in every byte
PLAIN = "Plain-" + uuid.uuid4().hex    # a plain option next to it (the search's control)
ROOT = Path(__file__).resolve().parents[2]


def _persisted_bytes(redis: Any) -> bytes:
    """Every file in the Redis data folder (dump.rdb, appendonlydir/*), concatenated."""
    folder = Path(redis.config_get("dir")["dir"])
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def _rewrite_and_dump(redis: Any) -> None:
    """``BGREWRITEAOF`` to its end, then ``SAVE``, uncompressed so text stays text."""
    redis.config_set("rdbcompression", "no")
    redis.bgrewriteaof()
    deadline = time.monotonic() + 60
    while True:
        info = redis.info("persistence")
        if not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]:
            break
        assert time.monotonic() < deadline, "the AOF rewrite did not finish"
        time.sleep(0.1)
    redis.save()


def _container_env(testbed: Any, client: BerthClient, name: str) -> dict[str, str]:
    instance = client.service(name)["instances_list"][0]
    agent = testbed.agent(instance["agent"])
    raw = agent.api.inspect_container(instance["container_id"] or instance["container"])
    return dict(item.split("=", 1) for item in raw["Config"]["Env"])


def _sealed_tokens(doc: Any) -> set[str]:
    if isinstance(doc, dict):
        if set(doc) == {SEALED}:
            return {doc[SEALED]}
        return {t for v in doc.values() for t in _sealed_tokens(v)}
    if isinstance(doc, list):
        return {t for v in doc for t in _sealed_tokens(v)}
    return set()


@pytest.fixture
def service(live_server: Any) -> Iterator[tuple[BerthClient, str]]:
    client = BerthClient(live_server.url, live_server.admin_token)
    name = f"sec-{uuid.uuid4().hex[:6]}"
    answer = client.install("hello", version="1.0.0", name=name, instances=1,
                            options={"auth": {"token": SECRET}, "message": PLAIN})
    try:
        assert client.wait_for_deployment(answer["deployment"]["id"],
                                          timeout=120)["status"] == "succeeded"
        yield client, name
    finally:
        done = client.uninstall(name)
        client.wait_for_deployment(done.get("deployment", done)["id"], timeout=120)


def test_no_secret_in_the_aof_the_dump_or_any_view(testbed: Any, live_server: Any,
                                                   service: tuple[BerthClient, str]) -> None:
    client, name = service
    upgrade = client.upgrade(name, version="2.0.0")
    assert client.wait_for_deployment(upgrade["deployment"]["id"],
                                      timeout=120)["status"] == "succeeded"
    store = testbed.store()
    assert len(store.services.generations(name)) == 2
    assert _container_env(testbed, client, name)["HELLO_TOKEN"] == SECRET

    redis = store.redis
    before = _persisted_bytes(redis)            # the AOF as commands were appended
    _rewrite_and_dump(redis)
    after = _persisted_bytes(redis)             # the rewritten AOF and dump.rdb
    for written in (before, after):
        assert PLAIN.encode() in written        # record text is searchable here
        assert SECRET.encode() not in written
    anonymous = BerthClient(live_server.url, None)
    for reader in (anonymous, client):
        shown = str(reader.service(name)) + str(reader.history(name)) + str(reader.services())
        assert PLAIN in shown and SECRET not in shown


def test_rotating_the_data_key_reseals_everything(testbed: Any,
                                                  service: tuple[BerthClient, str]) -> None:
    client, name = service
    store = testbed.store()
    old_key = testbed.env["BERTH_DATA_KEY"]
    old_tokens = _sealed_tokens(store.services.get(name)) | _sealed_tokens(
        store.services.generations(name))
    assert old_tokens
    new_key = generate_key()
    env = {**os.environ, **testbed.env, "BERTH_DATA_KEY": f"{new_key},{old_key}"}
    rotated = subprocess.run([sys.executable, "-m", "worker", "rotate-data-key"], env=env,
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert rotated.returncode == 0, rotated.stderr
    assert "re-sealed" in rotated.stdout
    try:
        testbed.worker_env["BERTH_DATA_KEY"] = new_key     # the old key is gone
        testbed.restart_worker()
        now = _sealed_tokens(store.services.get(name)) | _sealed_tokens(
            store.services.generations(name))
        assert now and not now & old_tokens
        _rewrite_and_dump(store.redis)
        persisted = _persisted_bytes(store.redis)
        assert not any(token.encode() in persisted for token in old_tokens)
        restart = client.restart(name)
        deployment = restart.get("deployment", restart)
        assert client.wait_for_deployment(deployment["id"], timeout=120)["status"] == "succeeded"
        assert _container_env(testbed, client, name)["HELLO_TOKEN"] == SECRET
    finally:   # give the bed back its own key for the tests after this one
        back = {**os.environ, **testbed.env, "BERTH_DATA_KEY": f"{old_key},{new_key}"}
        subprocess.run([sys.executable, "-m", "worker", "rotate-data-key"], env=back,
                       cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
        testbed.worker_env.pop("BERTH_DATA_KEY", None)
        testbed.restart_worker()
