"""``/agents``: the Docker engines Berth places instances on."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, url_for

from ..application import AgentRegistry
from ..context import current_berth
from .common import allow, json_body, query_bool


def register(bp: Blueprint) -> None:
    """Add the agent routes to the API blueprint."""
    bp.add_url_rule("/agents", view_func=list_agents, methods=["GET"])
    bp.add_url_rule("/agents", view_func=add_agent, methods=["POST"])
    bp.add_url_rule("/agents/<agent_id>", view_func=show_agent, methods=["GET"])
    bp.add_url_rule("/agents/<agent_id>", view_func=remove_agent, methods=["DELETE"])
    bp.add_url_rule("/agents/<agent_id>/drain", view_func=drain_agent, methods=["POST"])


def _ops() -> AgentRegistry:
    return current_berth().application.agents


def list_agents() -> Any:
    """Every agent with capacity, allocation and state."""
    allow("viewer")
    return jsonify({"items": _ops().agents()})


def add_agent() -> Any:
    """Register a Docker engine by URL (capacity read from it unless given)."""
    actor = allow("admin")
    body = json_body("AgentRequest")
    agent = _ops().add_agent(actor, url=body["url"], agent_id=body.get("id"),
                             attributes=body.get("attributes"), capacity=body.get("capacity"),
                             port_range=body.get("port_range"))
    response = jsonify(agent)
    response.status_code = 201
    response.headers["Location"] = url_for("api.show_agent", agent_id=agent["id"])
    return response


def show_agent(agent_id: str) -> Any:
    allow("viewer")
    return jsonify(_ops().agent(agent_id))


def remove_agent(agent_id: str) -> Any:
    """Remove an agent (refused while instances remain, unless ``?force=1``)."""
    actor = allow("admin")
    _ops().remove_agent(actor, agent_id, force=query_bool("force"))
    return "", 204


def drain_agent(agent_id: str) -> Any:
    """Stop placing on an agent and move its instances away."""
    actor = allow("admin")
    return jsonify(_ops().drain_agent(actor, agent_id))
