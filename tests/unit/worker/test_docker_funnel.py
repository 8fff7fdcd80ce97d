"""The Docker funnel classifies the SDK's errors, so callers catch types.

The SDK's exceptions are built here the way docker-py builds them from an engine's
answer (an HTTP status and the engine's words); the real engine is exercised in
``tests/integration/test_docker_agent.py``.
"""

from __future__ import annotations

from types import SimpleNamespace

import docker.errors
import pytest
import requests.exceptions

from worker.backend import ClusterBackend, Engine
from worker.docker_agent import DockerAgent
from worker.errors import (
    AgentError,
    AgentUnreachable,
    ContainerConflict,
    ContainerError,
    ContainerNotFound,
    ImageUnavailable,
    RemovalInProgress,
)

AGENT = DockerAgent("unix:///nonexistent/docker.sock")


def _answer(status: int, words: str) -> docker.errors.APIError:
    """The exception docker-py raises for an engine's error answer."""
    response = SimpleNamespace(status_code=status, reason="", url="http://engine/x")
    cls = docker.errors.NotFound if status == 404 else docker.errors.APIError
    if status == 404 and "no such image" in words.lower():
        cls = docker.errors.ImageNotFound
    return cls(words, response=response, explanation=words)


def _raised(exc: BaseException) -> AgentError:
    with pytest.raises(AgentError) as caught, AGENT._funnel("test", subject="web-1"):
        raise exc
    return caught.value


@pytest.mark.parametrize(("status", "words", "cls"), [
    (404, "No such container: web-1", ContainerNotFound),
    (404, "No such exec instance: abc", ContainerNotFound),
    (404, "No such image: berth/absent:1", ImageUnavailable),
    (409, "Conflict. The container name \"/web-1\" is already in use", ContainerConflict),
    (409, "removal of container web-1 is already in progress", RemovalInProgress),
    (500, "driver failed programming external connectivity", ContainerError),
])
def test_engine_answers_become_typed_errors(status: int, words: str,
                                            cls: type[AgentError]) -> None:
    error = _raised(_answer(status, words))
    assert type(error) is cls
    assert words in error.message and "web-1" in error.message
    if isinstance(error, ContainerError):   # one family for every refusal of the engine
        assert error.code == "container_error"


def test_a_conflict_that_is_not_a_removal_is_not_waited_for() -> None:
    error = _raised(_answer(409, "container web-1 is not running"))
    assert isinstance(error, ContainerConflict)
    assert not isinstance(error, RemovalInProgress)


def test_connection_trouble_is_unavailable() -> None:
    error = _raised(requests.exceptions.ConnectionError("connection refused"))
    assert isinstance(error, AgentUnreachable)


def test_the_docker_engine_backend_fits_the_protocols() -> None:
    """What mypy proves statically (worker/backend.py), seen at run time too."""
    from worker.agents import AgentPool

    pool: ClusterBackend = AgentPool(timeout=1)
    engine: Engine = pool.get({"id": "agent-1", "url": "unix:///nonexistent/docker.sock"})
    assert isinstance(engine, DockerAgent)
    members = [m for m in dir(Engine) if not m.startswith("_")]
    assert all(callable(getattr(engine, m)) for m in members if m != "url")
    pool.close()
