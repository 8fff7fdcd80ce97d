"""Moving an instance to another agent with its data, from the service page.

A plain form: the instance, the target agent (those that take instances now), and —
for an instance whose agent does not answer — a box the admin must tick, which names
the volumes whose data stays behind (the instance starts empty elsewhere).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import request, url_for

from . import common
from .blueprint import bp


def move_choices(status: Mapping[str, Any]) -> dict[str, Any] | None:
    """What the move form offers: the instances (with their agent's state and volumes)
    and the agents that take instances; None when there is nothing to move."""
    instances = list(status.get("instances_list") or [])
    if not instances:
        return None
    agents = {a["id"]: a for a in common.application().agents.agents()}
    targets = [a["id"] for a in agents.values() if a.get("state") == "up"]
    rows = [{"id": i["id"], "agent": i["agent"],
             "unreachable": (agents.get(i["agent"]) or {}).get("state") == "unreachable",
             "volumes": [v["name"] for v in i.get("volumes") or []]} for i in instances]
    return {"instances": rows, "targets": targets}


@bp.post("/services/<name>/move")
@common.needs("admin")
def service_move(name: str) -> Any:
    """Move one instance to the chosen agent (a ``move`` deployment)."""
    instance = (request.form.get("instance") or "").strip()
    target = (request.form.get("to") or "").strip()
    accept_empty = instance in request.form.getlist("accept_empty")

    def move() -> Mapping[str, Any]:
        if not instance or not target:
            raise ValueError("Move: choose an instance and the agent to move it to.")
        return common.application().services.move(common.identity().actor, name, instance,
                                                  to=target, accept_empty=accept_empty)

    return common.act(move, back_to=url_for("storefront.service", name=name) + "#move",
                      success=f"Moving {instance} to {target}.",
                      then=lambda d: url_for("storefront.deployment", deployment_id=d["id"]))
