"""Typed records and their owners: draining stored once, the deployment lifecycle in one
module, stored documents read through the record types (a real Redis)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from worker import agents, deployments
from worker.errors import DeploymentNotFound
from worker.records import (
    RecordInvalid,
    agent_from_json,
    agent_to_json,
    deployment_from_json,
    instance_from_json,
    service_from_json,
)
from worker.service_ops import DesiredState
from worker.store import Store

ROOT = Path(__file__).resolve().parents[3]
DOWN = "tcp://127.0.0.1:1"


def _stored(store: Store, key: str) -> dict:
    """The document exactly as it sits in Redis."""
    return json.loads(store.redis.get(key))


def _agent(store: Store, state: str = "up") -> None:
    agents.register_agent(store, DOWN, {}, (20000, 20009), {"cpus": 2, "mem": 1024},
                          agent_id="agent-1")
    store.agents.update("agent-1", lambda a: {**a, "state": state})


# draining -------------------------------------------------------------------------

def test_draining_is_stored_only_as_the_drain_flag(store: Store) -> None:
    _agent(store)
    shown = agents.drain(store, "agent-1")
    stored = _stored(store, store.agents.key("agent-1"))
    assert stored["drain"] is True and stored["state"] == "up"
    assert shown["state"] == "draining" and store.agents.require("agent-1")["state"] == "draining"
    agents.activate(store, "agent-1")
    stored = _stored(store, store.agents.key("agent-1"))
    assert stored["drain"] is False and stored["state"] == "up"


def test_an_unreachable_agent_being_drained_stores_both_facts_apart(store: Store) -> None:
    _agent(store, state="unreachable")
    agents.drain(store, "agent-1")
    stored = _stored(store, store.agents.key("agent-1"))
    assert (stored["state"], stored["drain"]) == ("unreachable", True)
    assert store.agents.require("agent-1")["state"] == "unreachable"


def test_an_agent_stored_as_draining_by_an_older_berth_reads_as_drained() -> None:
    agent = agent_from_json({"id": "a", "url": DOWN, "state": "draining"})
    assert agent["drain"] is True and agent["state"] == "draining"
    stored = agent_to_json(agent)
    assert (stored["state"], stored["drain"]) == ("up", True)


def test_agent_to_json_never_writes_the_draining_state_nor_the_instance_list() -> None:
    stored = agent_to_json(agent_from_json({"id": "a", "url": DOWN, "state": "up",
                                            "drain": True, "instances": ["x"]}))
    assert stored["state"] == "up" and "instances" not in stored


# reading ----------------------------------------------------------------------------

@pytest.mark.parametrize("read, doc, missing", [
    (service_from_json, {"spec": {}}, "name"),
    (deployment_from_json, {"id": "d-1", "service": "web"}, "status"),
    (instance_from_json, {"id": "web-1", "service": "web"}, "agent"),
    (agent_from_json, {"url": DOWN}, "id"),
])
def test_a_stored_document_without_its_identity_is_named(read, doc, missing) -> None:
    with pytest.raises(RecordInvalid, match=missing):
        read(doc)


# the deployment lifecycle -------------------------------------------------------------

def _install(store: Store) -> tuple[dict, dict]:
    result = DesiredState(store).install("web", {"image": "nginx", "instances": 2})
    return result["service"], result["deployment"]


def test_a_deployment_is_advanced_then_finished_and_its_service_settled(store: Store) -> None:
    _, deployment = _install(store)
    running = deployments.advance(store, deployment["id"], status="running",
                                  step=("start", "install running"))
    assert running and running["status"] == "running"
    assert [s["name"] for s in running["steps"]] == ["start"]
    deployments.finish(store, deployment["id"], "succeeded", service_status="running")
    done = store.deployments.require(deployment["id"])
    assert done["status"] == "succeeded" and done["finished_at"]
    assert done["steps"][-1]["name"] == "finish"
    service = store.services.require("web")
    assert service["status"] == "running" and service["deployment"] is None
    assert store.deployments.active_ids() == []


def test_a_cancelled_deployment_is_not_advanced_nor_finished(store: Store) -> None:
    _, deployment = _install(store)
    cancelled = deployments.cancel(store, deployment["id"], actor="u")
    assert cancelled["status"] == "cancelled" and cancelled["error"] == "cancelled by u"
    assert deployments.advance(store, deployment["id"], step=("x", "y")) is None
    deployments.finish(store, deployment["id"], "succeeded", service_status="running")
    assert store.deployments.require(deployment["id"])["status"] == "cancelled"
    assert store.services.require("web")["instances"] == 0   # what is there: none


def test_cancelling_an_unknown_deployment_says_so(store: Store) -> None:
    with pytest.raises(DeploymentNotFound):
        deployments.cancel(store, "d-none")


def test_a_recovery_opens_only_for_an_idle_service(store: Store) -> None:
    _, deployment = _install(store)
    assert deployments.open_recovery(store, "web", "why", "reconciler") is None
    deployments.finish(store, deployment["id"], "succeeded", service_status="running")
    recovery = deployments.open_recovery(store, "web", "why", "reconciler")
    assert recovery and recovery["kind"] == "recover" and recovery["reason"] == "why"
    assert store.services.require("web")["deployment"] == recovery["id"]


# one owner ----------------------------------------------------------------------------

def _writers_of_deployments(path: Path) -> list[str]:
    """Where a module writes a deployment record or sets a deployment's status."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "stage_put"
                and isinstance(node.func.value, ast.Attribute)
                and node.func.value.attr == "deployments"):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_only_the_deployments_module_writes_deployment_records() -> None:
    writers = [hit for folder in ("worker", "server")
               for path in sorted((ROOT / folder).rglob("*.py"))
               if path.name != "deployments.py" and "store" not in path.parts
               for hit in _writers_of_deployments(path)]
    assert writers == []


def _public_functions(tree: ast.Module) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    """Module-level functions and methods of module-level classes (not nested helpers)."""
    found = []
    for node in tree.body:
        members = node.body if isinstance(node, ast.ClassDef) else [node]
        found += [m for m in members if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)
                  and (not m.name.startswith("_") or m.name == "__init__")]
    return found


def _public_signatures(module_path: Path) -> list[tuple[str, str]]:
    """``(where, annotation)`` of every parameter and return of a public function."""
    tree = ast.parse(module_path.read_text(), str(module_path))
    found = []
    for node in _public_functions(tree):
        arguments = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs,
                     *([node.args.vararg] if node.args.vararg else []),
                     *([node.args.kwarg] if node.args.kwarg else [])]
        for annotation in [a.annotation for a in arguments] + [node.returns]:
            if annotation is not None:
                found.append((f"{module_path.name}:{node.lineno} {node.name}",
                              ast.unparse(annotation)))
    return found


def test_the_store_has_no_any_in_its_public_signatures() -> None:
    offenders = [f"{where}: {text}"
                 for path in sorted((ROOT / "worker" / "store").glob("*.py"))
                 for where, text in _public_signatures(path)
                 if "Any" in text.replace("[", " ").replace("]", " ").replace(",", " ").split()]
    assert offenders == []
