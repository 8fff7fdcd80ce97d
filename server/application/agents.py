"""Agents: registering Docker engines, draining and removing them.

The server never changes anything on an agent: a drain or a forced removal moves or
removes containers through worker tasks (``Berth.enqueue``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from worker import agents
from worker.records import Agent


class AgentRegistry:
    """List, register, drain and remove agents."""

    def __init__(self, berth: Any) -> None:
        self.berth = berth

    def agents(self) -> list[dict[str, Any]]:
        """Every agent with capacity, allocation and state."""
        found: list[dict[str, Any]] = self.berth.store.agents.list()
        return found

    def agent(self, agent_id: str) -> Agent:
        """One agent.

        :raises AgentNotFound: when there is none by that id.
        """
        return agents.get_agent(self.berth.store, agent_id)

    def add_agent(self, actor: str, *, url: str, agent_id: str | None = None,
                  attributes: Mapping[str, str] | None = None,
                  capacity: Mapping[str, Any] | None = None,
                  port_range: Sequence[int] | None = None) -> Agent:
        """Register a Docker engine as an agent (capacity read from it unless given)."""
        return agents.register(
            self.berth.store, url, agent_id=agent_id, attributes=dict(attributes or {}),
            capacity=dict(capacity) if capacity else None,
            port_range=tuple(port_range) if port_range else None,
            actor=actor, tls_dir=self.berth.settings.agent_tls_dir)

    def drain_agent(self, actor: str, agent_id: str) -> Agent:
        """Stop placing on an agent and move its instances away."""
        return agents.drain(self.berth.store, agent_id, actor=actor, enqueue=self.berth.enqueue)

    def remove_agent(self, actor: str, agent_id: str, *, force: bool = False) -> None:
        """Remove an agent (refused while instances remain, unless ``force``)."""
        # a forced removal's containers are removed by a worker: the server never
        # changes anything on an agent
        agents.remove(self.berth.store, agent_id, force=force, actor=actor,
                      enqueue=self.berth.enqueue)
