"""DesiredState against a real Redis: atomic writes, conflicts, generations, actors."""

from __future__ import annotations

import pytest

from catalog.errors import InvalidInput
from worker.errors import (
    DeploymentInProgress,
    DeploymentNotFound,
    GenerationNotFound,
    InvalidRequest,
    ServiceExists,
    ServiceNotFound,
)
from worker.service_ops import DesiredState

SPEC = {"image": "berth/hello:1.0.0", "instances": 2, "cpus": 0.1, "mem": 32,
        "ports": [{"name": "http", "hostPort": 0}]}
PKG = {"name": "hello", "version": "1.0.0", "repository": "universe"}


@pytest.fixture
def sent():
    return []


@pytest.fixture
def ops(store, sent):
    return DesiredState(store, lambda name, args: sent.append((name, list(args))))


def _finish(store, deployment):
    store.deployments.update(deployment["id"], lambda d: {**d, "status": "succeeded"})


def test_install_writes_service_generation_and_deployment_and_enqueues(ops, store, sent):
    result = ops.install("web", SPEC, package=PKG, options={"a": 1}, actor="token:ab")
    service, deployment = result["service"], result["deployment"]
    assert service["status"] == "deploying" and service["generation"] == 1
    assert service["deployment"] == deployment["id"] and service["created_by"] == "token:ab"
    assert deployment["kind"] == "install" and deployment["status"] == "queued"
    assert deployment["actor"] == "token:ab" and deployment["instances"] == 2
    assert ops.generations("web")[0]["generation"] == 1
    assert sent == [("berth.deploy", [deployment["id"]])]
    types = [e["type"] for e in store.state.read_events()]
    assert types == ["service.created", "deployment.created"]
    assert ops.list_deployments("web")[0]["id"] == deployment["id"]
    assert store.deployments.active_ids() == [deployment["id"]]


def test_install_instances_overrides_the_spec(ops):
    result = ops.install("web", SPEC, package=PKG, instances=5)
    assert result["service"]["instances"] == 5 and result["service"]["spec"]["instances"] == 5


def test_install_of_a_taken_name_is_refused_and_writes_nothing(ops, store, sent):
    ops.install("web", SPEC, package=PKG)
    before = len(store.state.read_events())
    with pytest.raises(ServiceExists):
        ops.install("web", SPEC, package=PKG)
    assert len(store.state.read_events()) == before
    assert len(ops.list_deployments("web")) == 1 and len(sent) == 1


@pytest.mark.parametrize("name", ["", "Web", "-a", "a" * 41, "a_b", None])
def test_install_refuses_bad_names(ops, name):
    with pytest.raises(InvalidInput) as caught:  # the core's one service-name error
        ops.install(name, SPEC, package=PKG)
    assert caught.value.details[0]["path"] == "name"


@pytest.mark.parametrize("count", [-1, 1001, 1.5, True, "3"])
def test_scale_refuses_bad_counts(ops, count):
    ops.install("web", SPEC, package=PKG)
    with pytest.raises(InvalidRequest):
        ops.scale("web", count, force=True)


def test_changes_during_a_deployment_are_refused_unless_forced(ops, store):
    first = ops.install("web", SPEC, package=PKG)["deployment"]
    with pytest.raises(DeploymentInProgress):
        ops.scale("web", 3)
    forced = ops.scale("web", 3, actor="u", force=True)
    assert ops.get_deployment(first["id"])["status"] == "cancelled"
    assert forced["kind"] == "scale" and forced["instances"] == 3
    assert ops.get_service("web")["deployment"] == forced["id"]


def test_scale_keeps_the_generation_and_update_adds_one(ops, store):
    _finish(store, ops.install("web", SPEC, package=PKG)["deployment"])
    scale = ops.scale("web", 4, actor="a")
    assert scale["generation"] == 1 and ops.get_service("web")["spec"]["instances"] == 4
    _finish(store, scale)
    upgrade = ops.update("web", spec={**SPEC, "image": "berth/hello:2.0.0"},
                         package={**PKG, "version": "2.0.0"}, actor="b")
    service = ops.get_service("web")
    assert upgrade["generation"] == 2 and upgrade["kind"] == "upgrade"
    assert service["instances"] == 4 and service["spec"]["image"] == "berth/hello:2.0.0"
    assert [g["generation"] for g in ops.generations("web")] == [1, 2]
    assert ops.generations("web")[1]["actor"] == "b"


def test_rollback_returns_to_the_previous_spec_as_a_new_generation(ops, store):
    _finish(store, ops.install("web", SPEC, package=PKG)["deployment"])
    _finish(store, ops.update("web", spec={**SPEC, "image": "berth/hello:2.0.0"},
                              package={**PKG, "version": "2.0.0"}))
    back = ops.rollback("web", actor="c")
    service = ops.get_service("web")
    assert back["kind"] == "rollback" and back["rollback_to"] == 1
    assert service["generation"] == 3 and service["spec"]["image"] == "berth/hello:1.0.0"
    assert service["package"]["version"] == "1.0.0"
    _finish(store, back)
    with pytest.raises(GenerationNotFound):
        ops.rollback("web", 9)


def test_rollback_without_history_is_refused(ops, store):
    _finish(store, ops.install("web", SPEC, package=PKG)["deployment"])
    with pytest.raises(GenerationNotFound):
        ops.rollback("web")


def test_restart_is_a_new_generation_of_the_same_spec(ops, store):
    _finish(store, ops.install("web", SPEC, package=PKG)["deployment"])
    dep = ops.restart("web", actor="d")
    assert dep["kind"] == "restart" and dep["generation"] == 2
    assert ops.get_service("web")["spec"] == {**SPEC}


def test_uninstall_supersedes_a_running_deployment_and_is_idempotent(ops, store):
    install = ops.install("web", SPEC, package=PKG)["deployment"]
    gone = ops.uninstall("web", actor="e")
    assert gone["kind"] == "uninstall"
    assert ops.get_deployment(install["id"])["status"] == "cancelled"
    assert ops.get_service("web")["status"] == "deleting"
    assert ops.uninstall("web")["id"] == gone["id"]
    with pytest.raises(DeploymentInProgress):
        ops.scale("web", 1, force=True)


def test_cancel_stops_a_deployment_and_returns_finished_ones_unchanged(ops, store):
    dep = ops.install("web", SPEC, package=PKG)["deployment"]
    cancelled = ops.cancel_deployment(dep["id"], actor="f")
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"]
    service = ops.get_service("web")
    assert service["deployment"] is None and service["instances"] == 0
    assert ops.cancel_deployment(dep["id"])["rev"] == cancelled["rev"]
    assert store.deployments.active_ids() == []
    with pytest.raises(DeploymentNotFound):
        ops.cancel_deployment("d-nothing")


def test_unknown_services_raise_not_found(ops):
    with pytest.raises(ServiceNotFound):
        ops.get_service("nope")
    with pytest.raises(ServiceNotFound):
        ops.scale("nope", 1)
    with pytest.raises(ServiceNotFound):
        ops.uninstall("nope")
    assert ops.list_instances("nope") == []


def test_a_broker_failure_leaves_the_records_for_the_reconciler(store):
    def broken(name, args):
        raise ConnectionError("broker down")

    result = DesiredState(store, broken).install("web", SPEC, package=PKG)
    assert store.deployments.active_ids() == [result["deployment"]["id"]]


def test_errors_have_the_catalog_shape():
    error = ServiceExists("taken", details=[{"path": "name", "message": "taken"}])
    assert error.to_dict() == {"error": "service_exists", "message": "taken",
                               "details": [{"path": "name", "message": "taken"}]}
