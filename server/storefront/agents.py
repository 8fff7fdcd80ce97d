"""Agents (Docker engines): capacity and allocation bars, attributes, state; add, drain, remove."""

from __future__ import annotations

from typing import Any

from flask import render_template, request, url_for

from . import common
from .blueprint import bp

MAX_FIELD = 500


@bp.get("/agents")
@common.needs("viewer")
def agents() -> Any:
    """Every agent with its capacity, allocation and state, and every Swarm's nodes
    (read-only: read from the Swarm's manager)."""
    app = common.application()
    return render_template(
        "storefront/agents.html", agents=app.agents.agents(), form=request.args,
        swarm_nodes=app.clusters.nodes(),
    )


def _attributes(text: str) -> dict[str, str]:
    """``key=value`` pairs split by commas or new lines.

    :raises ValueError: naming the item that is not ``key=value``.
    """
    found: dict[str, str] = {}
    for item in (p.strip() for p in text.replace("\n", ",").split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"attribute {item!r} is not key=value")
        found[key.strip()] = value.strip()
    return found


@bp.post("/agents")
@common.needs("admin")
def agent_add() -> Any:
    """Register a Docker engine URL as an agent."""
    url = (request.form.get("url") or "").strip()[:MAX_FIELD]
    agent_id = (request.form.get("agent_id") or "").strip()[:100] or None

    def add() -> dict[str, Any]:
        attributes = _attributes((request.form.get("attributes") or "")[: MAX_FIELD * 4])
        if not url:
            raise ValueError("the Docker engine URL is required")
        return dict(common.application().agents.add_agent(
            common.identity().actor, url=url, agent_id=agent_id, attributes=attributes
        ))

    return common.act(add, back_to=url_for("storefront.agents"),
                      success=lambda agent: f"Agent {agent.get('id', '')} added.")


@bp.post("/agents/<agent_id>/drain")
@common.needs("admin")
def agent_drain(agent_id: str) -> Any:
    """Move the agent's instances elsewhere and place nothing new on it."""
    agents = common.application().agents
    return common.act(lambda: agents.drain_agent(common.identity().actor, agent_id),
                      back_to=url_for("storefront.agents"), success=f"Draining {agent_id}.")


@bp.post("/agents/<agent_id>/remove")
@common.needs("admin")
def agent_remove(agent_id: str) -> Any:
    """Forget an agent (refused while instances run on it unless forced)."""
    return common.act(
        lambda: common.application().agents.remove_agent(
            common.identity().actor, agent_id, force=request.form.get("force") == "1"
        ),
        back_to=url_for("storefront.agents"), success=f"Agent {agent_id} removed.",
    )
