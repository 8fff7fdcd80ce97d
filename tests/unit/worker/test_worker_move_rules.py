"""The pure rules of moving data: when a move must be refused, when an instance may go
down for its move, and which volume paths are allowed."""

from __future__ import annotations

from typing import Any

import pytest

from worker.errors import InvalidRequest
from worker.move import may_take_down, refusal
from worker.volume_stream import volume_path


def _instance(n: int, healthy: bool = True, state: str = "running") -> dict[str, Any]:
    return {"id": f"i{n}", "agent": "agent-1", "state": state,
            "health": "healthy" if healthy else "unknown",
            "volumes": [{"name": "db-data", "agent": "agent-1"}]}


def test_an_unreachable_agents_instance_is_refused_unless_empty_is_accepted() -> None:
    away = {"id": "agent-1", "state": "unreachable"}
    said = refusal(_instance(1), away, accept_empty=False)
    assert said == ("agent agent-1 does not answer: instance i1 would start elsewhere "
                    "without the data of volume db-data")
    assert refusal(_instance(1), away, accept_empty=True) is None
    assert refusal(_instance(1), {"id": "agent-1", "state": "up"}, accept_empty=False) is None


@pytest.mark.parametrize("healthy, minimum, total, allowed", [
    ([True, True, True], 0.5, 3, True),      # two left, two needed
    ([True, True, True], 1.0, 3, True),      # nothing to wait for: one goes
    ([True, False, True], 1.0, 3, False),    # another may still become healthy: wait
    ([True], 1.0, 1, True),                  # a lone database must be able to move
])
def test_minimum_health_capacity_decides_when_an_instance_goes_down(
        healthy: list[bool], minimum: float, total: int, allowed: bool) -> None:
    instances = [_instance(n, h) for n, h in enumerate(healthy)]
    strategy = {"minimumHealthCapacity": minimum}
    assert may_take_down(instances[0], instances, total, strategy) is allowed


@pytest.mark.parametrize("raw, folder", [("/", ""), ("", ""), ("data", "/data"),
                                         ("/a/./b/", "/a/b")])
def test_volume_paths_stay_inside_the_volume(raw: str, folder: str) -> None:
    assert volume_path(raw) == folder


def test_a_path_that_climbs_out_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="climbs out"):
        volume_path("a/../../etc")
