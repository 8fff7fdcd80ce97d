"""Images onto every agent without a registry: a ``docker save`` tarball, or a local engine.

For admins with no registry at all (``berth images load FILE``, ``berth images
push-local REF``). Each agent's engine gets the image straight from the admin's
machine: the tarball is streamed from the file to each engine's ``/images/load`` in
turn, and a local engine's image is streamed ``docker save`` → ``docker load`` per
agent (:meth:`worker.docker_agent.DockerAgent.copy_image_from`), so neither is held
in memory. The server is not involved (it never changes anything on an agent): this
runs where the engines are reachable, with ``BERTH_AGENT_TLS_DIR`` for TLS agents.

One agent's failure does not stop the others; every outcome is returned.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .docker_agent import DockerAgent, agent_tls
from .errors import AgentError

__all__ = ["Outcome", "load_everywhere", "copy_everywhere", "engines_of"]


@dataclass(frozen=True)
class Outcome:
    """What happened on one agent: ``ok``, and the images loaded or the reason."""

    agent: str
    ok: bool
    message: str


def engines_of(agents: Iterable[Mapping[str, Any]], tls_dir: str = "", *,
               timeout: float = 300) -> list[tuple[str, DockerAgent]]:
    """``(agent id, DockerAgent)`` of agent records (as ``GET /api/v1/agents`` lists
    them), over TLS where ``tls_dir`` has the agent's files. A load may take a while:
    ``timeout`` bounds each Docker call.

    :raises AgentError: an agent's TLS folder lacks a file.
    """
    return [(str(a["id"]), DockerAgent(str(a["url"]), timeout=timeout,
                                       tls=agent_tls(tls_dir, str(a["id"]))))
            for a in agents]


def load_everywhere(engines: Sequence[tuple[str, DockerAgent]],
                    path: str | os.PathLike[str]) -> list[Outcome]:
    """Load the ``docker save`` tarball at ``path`` on every engine, one after another."""
    outcomes = []
    for agent_id, engine in engines:
        try:
            loaded = engine.load_image(path)
            outcomes.append(Outcome(agent_id, True, "loaded " + (", ".join(loaded) or
                                                                "the tarball")))
        except AgentError as error:
            outcomes.append(Outcome(agent_id, False, error.message))
    return outcomes


def copy_everywhere(engines: Sequence[tuple[str, DockerAgent]], source: DockerAgent,
                    ref: str) -> list[Outcome]:
    """Copy image ``ref`` from the ``source`` engine to every engine that lacks it."""
    outcomes = []
    for agent_id, engine in engines:
        try:
            if engine.has_image(ref):
                outcomes.append(Outcome(agent_id, True, f"{ref} is there already"))
                continue
            engine.copy_image_from(source, ref)
            ok = engine.has_image(ref)
            outcomes.append(Outcome(agent_id, ok, f"copied {ref}" if ok
                                    else f"{ref} still missing after the copy"))
        except AgentError as error:
            outcomes.append(Outcome(agent_id, False, error.message))
    return outcomes
