"""Where a restore puts a service's instances (and so writes its data): the pure choice
of ``worker.backup_plan`` — back onto the agents that held the data, refused by name
when one cannot take it, onto the agent the admin asks for, or anywhere when the old
agents are gone — and the dry run of placement that refuses before anything stops."""

from __future__ import annotations

from typing import Any

import pytest

from worker.backup_plan import RestoreTarget, check_fits, restore_homes, restore_target
from worker.errors import BackupUnavailable


def agent(id_: str, *, state: str = "up", drain: bool = False, mem: int = 1024,
          used: int = 0, hostname: str | None = None) -> dict[str, Any]:
    return {"id": id_, "state": state, "drain": drain,
            "attributes": {"hostname": hostname or id_},
            "capacity": {"cpus": 4, "mem": mem},
            "allocated": {"cpus": 0, "mem": used, "ports": []},
            "port_range": [20000, 20010]}


def instance(id_: str, agent_id: str, created: float, mem: int = 256) -> dict[str, Any]:
    return {"id": id_, "service": "db", "agent": agent_id, "created_at": created,
            "cpus": 0.1, "mem": mem, "port_list": []}


SPEC = {"cpus": 0.1, "mem": 256, "volumes": [{"name": "db-data", "containerPath": "/data"}]}


def cluster(*agents: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["id"]: a for a in agents}


def test_the_homes_are_the_instances_agents_oldest_first_else_the_volume_holders() -> None:
    found = [instance("db-b", "agent-2", 2), instance("db-a", "agent-1", 1),
             instance("db-c", "agent-2", 3)]
    assert restore_homes(found, ["agent-3"]) == ["agent-1", "agent-2"]
    assert restore_homes([], ["agent-3", "agent-1"]) == ["agent-1", "agent-3"]


def test_back_onto_the_agents_that_held_the_data_when_they_are_up() -> None:
    target = restore_target("db", ["agent-1"], cluster(agent("agent-1"), agent("agent-2")))
    assert target == RestoreTarget(only=("agent-1",), prefer=("agent-1",), elsewhere=False,
                                   reason="back onto agent-1")


@pytest.mark.parametrize(("home", "why"), [
    (agent("agent-1", state="unreachable"), "is unreachable"),
    (agent("agent-1", drain=True), "is being drained"),
])
def test_a_home_that_cannot_take_it_is_refused_by_name(home: dict[str, Any], why: str) -> None:
    with pytest.raises(BackupUnavailable) as refused:
        restore_target("db", ["agent-1"], cluster(home, agent("agent-2")))
    assert str(refused.value.message) == (
        f"cannot restore 'db': agent agent-1, which holds its data, {why}")
    assert "--agent AGENT" in (refused.value.hint or "")


def test_the_admins_agent_is_the_only_one_used_even_when_the_home_is_unreachable() -> None:
    agents = cluster(agent("agent-1", state="unreachable"), agent("agent-2"))
    target = restore_target("db", ["agent-1"], agents, requested="agent-2")
    assert (target.only, target.elsewhere) == (("agent-2",), True)
    assert restore_target("db", ["agent-2"], agents, "agent-2").elsewhere is False


@pytest.mark.parametrize(("agents", "message"), [
    (cluster(agent("agent-1")), "onto agent agent-9: it is not registered"),
    (cluster(agent("agent-9", drain=True)), "onto agent agent-9: it is being drained"),
    (cluster(agent("agent-9", state="unreachable")), "onto agent agent-9: it is unreachable"),
])
def test_an_admins_agent_that_cannot_take_it_is_refused(agents: dict[str, Any],
                                                       message: str) -> None:
    with pytest.raises(BackupUnavailable, match=message):
        restore_target("db", ["agent-1"], agents, requested="agent-9")


def test_when_the_old_agent_is_gone_any_agent_that_fits_takes_it() -> None:
    target = restore_target("db", ["agent-1"], cluster(agent("agent-2"), agent("agent-3")))
    assert (target.only, target.prefer, target.elsewhere) == (None, (), True)
    assert target.reason == "agent-1 is gone: onto any agent that fits"
    # one of two homes gone: the other is tried first, but any agent may take the rest
    mixed = restore_target("db", ["agent-1", "agent-2"], cluster(agent("agent-2")))
    assert (mixed.only, mixed.prefer, mixed.elsewhere) == (None, ("agent-2",), True)


def test_a_service_with_no_data_anywhere_goes_where_it_fits() -> None:
    target = restore_target("db", [], cluster(agent("agent-2")))
    assert (target.only, target.elsewhere) == (None, False)


def test_the_dry_run_counts_the_room_the_services_own_instances_give_back() -> None:
    # agent-1 is full only because of db's own instance, which the restore stops first
    agents = cluster(agent("agent-1", mem=512, used=512))
    own = [instance("db-a", "agent-1", 1, mem=256)]
    target = restore_target("db", ["agent-1"], agents)
    check_fits("db", SPEC, 1, target, agents, own)
    assert agents["agent-1"]["allocated"]["mem"] == 512   # the records are not touched


def test_a_home_without_room_is_refused_with_the_agent_and_its_reason() -> None:
    agents = cluster(agent("agent-1", mem=512, used=512), agent("agent-2"))
    target = restore_target("db", ["agent-1"], agents)
    with pytest.raises(BackupUnavailable) as refused:
        check_fits("db", SPEC, 1, target, agents, [])
    assert refused.value.message.startswith("cannot restore 'db' onto agent-1: agent-1: ")
    assert "mem" in refused.value.message
    assert "--agent AGENT" in (refused.value.hint or "")


def test_constraints_hold_in_the_dry_run() -> None:
    spec = {**SPEC, "constraints": [["hostname", "LIKE", "agent-1"]]}
    agents = cluster(agent("agent-2"))
    target = restore_target("db", ["agent-1"], agents)          # agent-1 is gone
    with pytest.raises(BackupUnavailable, match="cannot restore 'db' onto any agent: "
                                                "agent-2: "):
        check_fits("db", spec, 1, target, agents, [])
    check_fits("db", SPEC, 1, target, agents, [])                # without: agent-2 fits
