"""The volume inventory and removal over engines (cheap fakes of the ``Engine`` calls
they use), and how an engine's volume answers are read (sizes it does not know)."""

from __future__ import annotations

from typing import Any

from worker.containers import VolumeInfo, volume_names
from worker.docker_agent import _volume_info, _volume_usage
from worker.errors import AgentUnreachable, ContainerConflict
from worker.volumes import delete_service_volumes, inventory


class FakeEngine:
    def __init__(self, volumes: list[VolumeInfo], *, away: bool = False,
                 busy: tuple[str, ...] = ()) -> None:
        self.volumes, self.away, self.busy = volumes, away, busy
        self.removed: list[str] = []

    def list_volumes(self, labels: Any) -> list[VolumeInfo]:
        if self.away:
            raise AgentUnreachable("agent away")
        wanted = labels.get("berth.service")
        return [v for v in self.volumes if wanted is None or v.service == wanted]

    def remove_volume(self, name: str) -> bool:
        if name in self.busy:
            raise ContainerConflict("in use")
        self.removed.append(name)
        return True


class FakeBackend:
    def __init__(self, engines: dict[str, FakeEngine]) -> None:
        self.engines = engines

    def get(self, agent: Any) -> FakeEngine:
        return self.engines[agent["id"]]


def _vol(name: str, service: str, **kw: Any) -> VolumeInfo:
    return VolumeInfo(name=name, labels={"berth.service": service, "berth.volume": name}, **kw)


AGENTS = [{"id": "agent-1"}, {"id": "agent-2"}]


def test_inventory_marks_left_over_and_names_agents_that_do_not_answer() -> None:
    backend = FakeBackend({"agent-1": FakeEngine([_vol("db-data", "db", size=10, in_use=True),
                                                  _vol("old-data", "old")]),
                           "agent-2": FakeEngine([], away=True)})
    result = inventory(AGENTS, backend, installed=["db"])  # type: ignore[arg-type]
    assert result["unreachable"] == ["agent-2"]
    assert [(v["name"], v["agent"], v["state"], v["size"], v["service_installed"])
            for v in result["volumes"]] == [
        ("db-data", "agent-1", "in use", 10, True),
        ("old-data", "agent-1", "left over", None, False)]


def test_delete_removes_only_the_service_volumes_and_reports_what_stays() -> None:
    one = FakeEngine([_vol("db-data", "db"), _vol("db-logs", "db"), _vol("web-data", "web")],
                     busy=("db-logs",))
    backend = FakeBackend({"agent-1": one, "agent-2": FakeEngine([], away=True)})
    removed, kept = delete_service_volumes(AGENTS, backend, "db")  # type: ignore[arg-type]
    assert removed == ["agent-1/db-data"] and one.removed == ["db-data"]
    assert kept == ["agent-1/db-logs", "agent-2/*"]


def test_an_engine_that_does_not_know_a_size_gives_none() -> None:
    usage = _volume_usage({"Volumes": [{"Name": "a", "UsageData": {"Size": -1, "RefCount": -1}},
                                       {"Name": "b", "UsageData": {"Size": 4096}}]})
    raw = {"Name": "a", "Labels": None}
    assert _volume_info(raw, usage["a"], set()).size is None
    assert _volume_info({"Name": "b"}, usage["b"], {"b"}) == VolumeInfo(
        name="b", size=4096, in_use=True)
    assert _volume_info({"Name": "c"}, {}, set()).size is None


def test_volume_names_are_the_named_volumes_only() -> None:
    spec = {"volumes": [{"name": "db-data", "containerPath": "/d"},
                        {"hostPath": "/srv/x", "containerPath": "/x"}]}
    assert volume_names(spec) == ["db-data"]
