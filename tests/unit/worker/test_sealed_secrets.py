"""Secret values sealed at rest (real Redis): what DesiredState writes, rotation, refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest

from worker.service_ops import DesiredState
from worker.settings import WorkerSettings
from worker.store.crypto import DataKeyError, DataKeys, generate_key, has_sealed, rotate_store

SECRET = "pa55-w0rd-of-the-day"  # noqa: S105 - the value the tests look for
SPEC = {"image": "berth/hello:1.0.0", "instances": 1, "cpus": 0.1, "mem": 32,
        "env": {"PW": SECRET, "URL": f"pg://u:{SECRET}@db", "PLAIN": "x"},
        "command": f"run --pw {SECRET}", "args": [], "labels": {"a": "b"}}
PKG = {"name": "db", "version": "1.0.0", "repository": "universe"}
OPTIONS = {"db": {"password": SECRET, "port": 5432}}
PATHS = ["/db/password"]


def _raw(store: Any) -> str:
    """Every byte of every record of the store, as text."""
    db = store.redis
    parts = []
    for key in db.scan_iter("*"):
        kind = db.type(key)
        if kind == "string":
            parts.append(db.get(key) or "")
        elif kind == "list":
            parts.extend(db.lrange(key, 0, -1))
    return "\n".join(parts)


@pytest.fixture
def key() -> str:
    return generate_key()


@pytest.fixture
def keys(key: str) -> DataKeys:
    found = DataKeys.from_setting(key)
    assert found is not None
    return found


def test_install_and_upgrade_store_no_secret_text(store: Any, keys: DataKeys) -> None:
    ops = DesiredState(store, keys=keys)
    service = ops.install("db", SPEC, package=PKG, options=OPTIONS, secret_paths=PATHS)["service"]
    assert service["secret_paths"] == PATHS
    assert service["options"]["db"]["port"] == 5432 and service["spec"]["env"]["PLAIN"] == "x"
    store.deployments.update(service["deployment"], lambda d: {**d, "status": "succeeded"})
    ops.update("db", spec=SPEC, package=PKG, options=OPTIONS, secret_paths=[])
    assert SECRET not in _raw(store)
    history = store.services.generations("db")
    assert len(history) == 2 and all(g["secret_paths"] == PATHS for g in history)
    opened = keys.open_tree(store.services.get("db"))
    assert opened["options"]["db"]["password"] == SECRET
    assert opened["spec"]["env"] == SPEC["env"] and opened["spec"]["command"] == SPEC["command"]


def test_a_secret_is_not_written_without_a_data_key(store: Any) -> None:
    ops = DesiredState(store)
    with pytest.raises(DataKeyError, match="BERTH_DATA_KEY is not set"):
        ops.install("db", SPEC, package=PKG, options=OPTIONS, secret_paths=PATHS)
    assert store.services.get("db") is None
    empty = {"db": {"password": "", "port": 1}}   # nothing secret to seal: no key needed
    ops.install("db", {**SPEC, "env": {}, "command": "run"}, package=PKG, options=empty,
                secret_paths=PATHS)


def test_rotation_reseals_with_the_new_key_and_drops_the_old(store: Any) -> None:
    old_key, new_key = generate_key(), generate_key()
    old = DataKeys.from_setting(old_key)
    ops = DesiredState(store, keys=old)
    ops.install("db", SPEC, package=PKG, options=OPTIONS, secret_paths=PATHS)
    before = json.dumps(store.services.get("db")["options"])
    both = DataKeys.from_setting(f"{new_key},{old_key}")
    assert both is not None
    assert rotate_store(store, both) == 1
    after = store.services.get("db")
    assert json.dumps(after["options"]) != before and SECRET not in _raw(store)
    only_new = DataKeys.from_setting(new_key)
    assert only_new is not None
    assert only_new.open_tree(after)["options"]["db"]["password"] == SECRET
    assert only_new.open_tree(store.services.generations("db"))[0]["spec"]["env"]["PW"] == SECRET
    with pytest.raises(DataKeyError, match="sealed with a data key"):
        DataKeys.from_setting(old_key).open_tree(after)   # type: ignore[union-attr]


def test_a_malformed_key_is_refused_with_the_variable_named() -> None:
    with pytest.raises(DataKeyError, match="BERTH_DATA_KEY: key 2 is not a Fernet key"):
        DataKeys.from_setting(f"{generate_key()},not-a-key")
    assert DataKeys.from_setting(" , ") is None


def test_the_worker_refuses_to_start_without_a_key(capsys: Any) -> None:
    from worker.__main__ import _data_key_refusal

    assert "BERTH_DATA_KEY is not set" in _data_key_refusal(WorkerSettings())
    assert _data_key_refusal(WorkerSettings(data_key=generate_key())) == ""
    assert "data_key" not in repr(WorkerSettings(data_key="x")).replace("data_keys", "")


def test_sealed_values_only_open_with_a_key(keys: DataKeys) -> None:
    sealed = keys.seal({"nested": [SECRET]})
    assert has_sealed({"a": [sealed]}) and SECRET not in json.dumps(sealed)
    assert keys.seal(sealed) is sealed            # never sealed twice
    assert keys.open(sealed) == {"nested": [SECRET]}


def test_rollback_returns_to_the_sealed_generation_with_its_paths(store: Any,
                                                                  keys: DataKeys) -> None:
    ops = DesiredState(store, keys=keys)
    first = ops.install("db", SPEC, package=PKG, options=OPTIONS, secret_paths=PATHS)
    store.deployments.update(first["deployment"]["id"], lambda d: {**d, "status": "succeeded"})
    changed = {"db": {"password": "an0ther-secret", "port": 5432}}
    upgrade = ops.update("db", spec={**SPEC, "env": {"PW": "an0ther-secret"}, "command": "r"},
                         package=PKG,
                         options=changed, secret_paths=["/db/password", "/extra"])
    store.deployments.update(upgrade["id"], lambda d: {**d, "status": "succeeded"})
    ops.rollback("db", 1)
    service = store.services.get("db")
    assert service["secret_paths"] == ["/db/password", "/extra"]   # never fewer
    assert keys.open_tree(service)["options"] == OPTIONS
    assert SECRET not in _raw(store) and "an0ther-secret" not in _raw(store)


def test_a_worker_without_the_key_cannot_open_the_spec(store: Any, key: str,
                                                       keys: DataKeys) -> None:
    from worker.agents import AgentPool
    from worker.instances import InstanceRunner

    sealed = DesiredState(store, keys=keys).install("db", SPEC, package=PKG, options=OPTIONS,
                                                  secret_paths=PATHS)["service"]["spec"]
    without = InstanceRunner(store, AgentPool(timeout=1), WorkerSettings())
    with pytest.raises(DataKeyError, match="BERTH_DATA_KEY is not set"):
        without._opened(sealed)
    other = InstanceRunner(store, AgentPool(timeout=1), WorkerSettings(data_key=generate_key()))
    with pytest.raises(DataKeyError, match="sealed with a data key this process does not"):
        other._opened(sealed)
    right = InstanceRunner(store, AgentPool(timeout=1), WorkerSettings(
        data_key=f"{generate_key()},{key}"))
    assert right._opened(sealed)["env"] == SPEC["env"]
