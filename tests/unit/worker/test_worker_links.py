"""Links filled late: the worker puts the linked service's current endpoint into a
dependent container at create, refuses to start it without one, and restarts the
dependent when the endpoint it used moved away (real Redis, a recording engine)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from catalog.links import placeholder
from worker import agents
from worker.instances import InstanceRunner
from worker.links import (
    LinkUnresolved,
    credential_values,
    dependents,
    open_links,
    resolve,
    stale_reason,
    substitute,
)
from worker.reconcile import Reconciler
from worker.settings import WorkerSettings
from worker.store import Store
from worker.store.crypto import DataKeyError, DataKeys, generate_key

LINK = {"option": "db", "service": "cache", "port": "redis", "onLinkChange": "restart"}
APP = {"image": "berth/hello:1.0.0", "ports": [{"name": "http"}],
       "command": "exec app --db " + placeholder("db", "address"),
       "env": {"DB_HOST": placeholder("db", "host"), "DB_PORT": placeholder("db", "port"),
               "ALL": placeholder("db", "endpoints"), "OWN": "${HOST}:@@not-ours@@",
               "links": placeholder("db", "port")},
       "links": [LINK]}
DB = {"image": "berth/testdb:1.0.0", "ports": [{"name": "redis"}]}


def _endpoints(*pairs: tuple[str, int]) -> dict[str, Any]:
    return {"service": "cache", "ports": {"redis": [
        {"address": a, "port": p, "agent": "agent-1", "generation": 1, "instance": f"i{n}"}
        for n, (a, p) in enumerate(pairs)]}}


def put_service(store: Store, name: str, spec: dict[str, Any], instances: int = 1) -> None:
    service = {"name": name, "package": {"name": name, "version": "1.0.0",
                                         "repository": "universe"},
               "options": {}, "spec": copy.deepcopy(spec), "instances": instances,
               "generation": 1, "status": "running", "deployment": None, "created_at": 1.0,
               "updated_at": 1.0, "created_by": "t", "updated_by": "t"}
    store.state.transact(lambda tx: store.services.stage_put(tx, service))


def put_instance(store: Store, service: str, suffix: str, ports: dict[str, int], *,
                 address: str = "127.0.0.2", state: str = "running", health: str = "healthy",
                 **extra: Any) -> dict[str, Any]:
    instance = {"id": f"{service}-{suffix}", "service": service, "generation": 1,
                "agent": "agent-1", "container": f"berth-{service}-{suffix}",
                "container_id": "c", "ports": ports, "port_list": list(ports.values()),
                "address": address, "state": state, "health": health, "created_at": 1.0,
                "started_at": 1.0, "failures": 0, "error": None, **extra}
    store.state.transact(lambda tx: store.instances.stage_put(tx, instance))
    return instance


def test_placeholders_take_the_first_healthy_endpoint_and_nothing_else_changes() -> None:
    resolved = resolve(APP, {"cache": _endpoints(("127.0.0.3", 5000), ("127.0.0.4", 5001))})
    filled = substitute(APP, resolved)
    assert filled["command"] == "exec app --db 127.0.0.3:5000"
    assert filled["env"] == {"DB_HOST": "127.0.0.3", "DB_PORT": "5000",
                             "ALL": "127.0.0.3:5000,127.0.0.4:5001",
                             "OWN": "${HOST}:@@not-ours@@", "links": "5000"}
    assert filled["links"] == [LINK] and APP["env"]["DB_HOST"] == placeholder("db", "host")


@pytest.mark.parametrize(("found", "words"), [
    (None, "which is not installed"),
    (_endpoints(), "no healthy endpoint on port 'redis'"),
])
def test_a_link_without_a_healthy_endpoint_is_refused(found: Any, words: str) -> None:
    with pytest.raises(LinkUnresolved, match=words):
        resolve(APP, {"cache": found})


def test_a_moved_endpoint_is_stale_unless_the_link_opts_out() -> None:
    used = [{"links": {"db": {"service": "cache", "host": "127.0.0.3", "port": 5000}}}]
    assert stale_reason(APP, used, {"cache": _endpoints(("127.0.0.3", 5000))}) is None
    moved = {"cache": _endpoints(("127.0.0.4", 5009))}
    assert "127.0.0.3:5000 no longer serves 'redis'" in (stale_reason(APP, used, moved) or "")
    assert stale_reason(APP, used, {"cache": _endpoints()}) is None   # nothing to go to yet
    quiet = {**APP, "links": [{**LINK, "onLinkChange": "none"}]}
    assert stale_reason(quiet, used, moved) is None


class RecordingEngine:
    """The part of ``DockerAgent`` ``InstanceRunner`` uses to create a container."""

    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []

    def ensure_image(self, image: str, **_: Any) -> None:
        return None

    def run_instance(self, name: str, spec: dict[str, Any], **kw: Any) -> str:
        self.created.append(spec)
        return f"id-{len(self.created)}"


class OnePool:
    def __init__(self, engine: RecordingEngine) -> None:
        self.engine = engine

    def get(self, agent: Any) -> RecordingEngine:
        return self.engine


def _runner(store: Store) -> tuple[InstanceRunner, RecordingEngine]:
    agents.register_agent(store, "tcp://127.0.0.1:1", {}, (20000, 20009),
                          {"cpus": 1, "mem": 512}, agent_id="agent-1")
    store.agents.update("agent-1", lambda a: {**a, "state": "up"})
    engine = RecordingEngine()
    return InstanceRunner(store, OnePool(engine), WorkerSettings()), engine  # type: ignore[arg-type]


def test_the_container_gets_the_current_endpoint_and_the_instance_records_it(
        store: Store) -> None:
    runner, engine = _runner(store)
    put_service(store, "cache", DB)
    put_instance(store, "cache", "1", {"redis": 5000}, address="127.0.0.3")
    put_service(store, "app", APP)
    app = put_instance(store, "app", "1", {"http": 6000}, state="placed", health="unknown")
    assert runner.start(store.services.require("app"), [app]) == []  # type: ignore[arg-type]
    assert engine.created[0]["env"]["DB_HOST"] == "127.0.0.3"
    assert engine.created[0]["command"] == "exec app --db 127.0.0.3:5000"
    recorded = store.instances.get("app-1")
    assert recorded is not None and recorded["state"] == "running"
    assert recorded["links"]["db"] == {"service": "cache", "host": "127.0.0.3", "port": 5000,
                                       "endpoints": "127.0.0.3:5000"}


def test_no_container_is_created_while_the_linked_service_has_no_healthy_endpoint(
        store: Store) -> None:
    runner, engine = _runner(store)
    put_service(store, "cache", DB)
    put_instance(store, "cache", "1", {"redis": 5000}, state="starting", health="unknown")
    put_service(store, "app", APP)
    app = put_instance(store, "app", "1", {"http": 6000}, state="placed", health="unknown")
    errors = runner.start(store.services.require("app"), [app])  # type: ignore[arg-type]
    assert engine.created == []
    assert errors and "links to service 'cache', which has no healthy endpoint" in errors[0]
    recorded = store.instances.get("app-1")
    assert recorded is not None and recorded["state"] == "failed"


def test_open_links_leaves_a_spec_without_links_alone(store: Store) -> None:
    assert open_links(store, DB) == (DB, {})


def test_the_reconciler_restarts_a_dependent_whose_database_moved(store: Store) -> None:
    _runner(store)
    put_service(store, "cache", DB)
    put_instance(store, "cache", "2", {"redis": 5009}, address="127.0.0.4")
    put_service(store, "app", APP)
    used = {"db": {"service": "cache", "host": "127.0.0.3", "port": 5000}}
    put_instance(store, "app", "1", {"http": 6000}, links=used)
    sent: list[tuple[str, Any]] = []
    reconciler = Reconciler(store, settings=WorkerSettings(),
                            enqueue=lambda task, args: sent.append((task, args)))
    done = reconciler.reconcile()
    assert done["relinked"] == ["app"]
    service = store.services.require("app")
    deployment = store.deployments.get(service["deployment"] or "")
    assert deployment is not None and deployment["kind"] == "restart"
    assert ("berth.deploy", [deployment["id"]]) in sent
    assert reconciler.reconcile()["relinked"] == []   # the restart is under way: once


def test_the_reconciler_leaves_a_dependent_alone_while_its_endpoint_serves(
        store: Store) -> None:
    _runner(store)
    put_service(store, "cache", DB)
    put_instance(store, "cache", "1", {"redis": 5000}, address="127.0.0.3")
    put_service(store, "app", APP)
    used = {"db": {"service": "cache", "host": "127.0.0.3", "port": 5000}}
    put_instance(store, "app", "1", {"http": 6000}, links=used)
    assert Reconciler(store, settings=WorkerSettings()).reconcile()["relinked"] == []
    assert store.services.require("app")["deployment"] is None


def test_dependents_are_the_services_linking_to_a_name(store: Store) -> None:
    put_service(store, "cache", DB)
    put_service(store, "app", APP)
    put_service(store, "other", {**APP, "links": [{**LINK, "service": "elsewhere"}]})
    assert dependents(store, "cache") == ["app"]
    assert dependents(store, "app") == []


# credentials handed over ------------------------------------------------------------

HANDING = {"option": "db", "service": "cache", "port": "redis", "onLinkChange": "restart",
           "credentials": {"password": "/auth/password"}}
SECRET_APP = {"image": "berth/hello:1.0.0",
              "env": {"DB_PASSWORD": placeholder("db", "credential.password"),
                      "DB_USER": placeholder("db", "credential.user")},
              "links": [HANDING]}


def _linked(keys: DataKeys, value: str = "s3cret-pass") -> dict[str, Any]:
    return {"name": "cache", "secret_paths": ["/auth/password"],
            "options": {"auth": {"password": keys.seal(value), "user": "app"}}}


def test_a_confirmed_link_gets_the_linked_services_sealed_secret_opened() -> None:
    keys = DataKeys([generate_key()])
    found = credential_values(SECRET_APP, {"cache": _linked(keys)}, keys)
    assert found == {"db": {"password": "s3cret-pass"}}
    filled = substitute(SECRET_APP, {}, found)
    assert filled["env"] == {"DB_PASSWORD": "s3cret-pass", "DB_USER": ""}
    assert filled["links"] == [HANDING]          # the record itself never holds a value


def test_without_the_confirmation_the_credential_placeholders_are_empty() -> None:
    keys = DataKeys([generate_key()])
    unconfirmed = {**SECRET_APP, "links": [{k: v for k, v in HANDING.items()
                                            if k != "credentials"}]}
    assert credential_values(unconfirmed, {"cache": _linked(keys)}, keys) == {}
    assert substitute(unconfirmed, {}, {})["env"]["DB_PASSWORD"] == ""


def test_a_path_the_linked_service_does_not_keep_secret_is_refused() -> None:
    keys = DataKeys([generate_key()])
    forged = {**SECRET_APP, "links": [{**HANDING, "credentials": {"user": "/auth/user"}}]}
    with pytest.raises(LinkUnresolved, match="not one of its secrets"):
        credential_values(forged, {"cache": _linked(keys)}, keys)


def test_a_sealed_credential_needs_the_data_key() -> None:
    keys = DataKeys([generate_key()])
    with pytest.raises(DataKeyError):
        credential_values(SECRET_APP, {"cache": _linked(keys)}, None)
    with pytest.raises(LinkUnresolved, match="not installed"):
        credential_values(SECRET_APP, {"cache": None}, keys)


def test_a_credential_is_put_into_env_command_and_args_only() -> None:
    token = placeholder("db", "credential.password")
    spec = {"image": "berth/" + token, "command": "run --pw " + token, "args": [token],
            "env": {"PW": token}, "labels": {"pw": token},
            "healthCheck": {"protocol": "command", "command": "echo " + token},
            "links": [HANDING]}
    filled = substitute(spec, {}, {"db": {"password": "s3cret-pass"}})
    assert (filled["command"], filled["args"], filled["env"]) == (
        "run --pw s3cret-pass", ["s3cret-pass"], {"PW": "s3cret-pass"})
    assert "s3cret-pass" not in str({k: filled[k] for k in ("image", "labels", "healthCheck")})
