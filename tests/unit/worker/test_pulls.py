"""Pulls: the registry of an image, coarse progress, and why a pull failed.

The engine's own words (seen from a real ``docker-registry``: see
``tests/integration/test_registry.py``) become the three reasons a deployment
reports; the progress messages are the ones ``POST /images/create`` streams.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import docker.errors
import pytest

from worker.deployments import _with_step
from worker.docker_agent import DockerAgent
from worker.errors import (
    ImageNotFound,
    ImageUnauthorized,
    ImageUnavailable,
    RegistryUnreachable,
)
from worker.pulls import PullStatus, PullTracker, image_registry
from worker.registries import host_problem


@pytest.mark.parametrize(("ref", "host"), [
    ("127.0.0.1:5105/berth/hello:2.0.0", "127.0.0.1:5105"),
    ("Registry.Example.com/team/app", "registry.example.com"),
    ("localhost/app:1", "localhost"),
    ("berth/hello:2.0.0", "docker.io"),
    ("nginx", "docker.io"),
    ("index.docker.io/library/nginx:1", "docker.io"),
])
def test_the_registry_of_an_image_follows_dockers_rule(ref: str, host: str) -> None:
    assert image_registry(ref) == host


@pytest.mark.parametrize(("host", "ok"), [
    ("registry.example.com:5000", True), ("127.0.0.1:5105", True), ("docker.io", True),
    ("https://registry.example.com", False), ("r.example.com/v2", False),
    ("r.example.com:0", False), ("r.example.com:70000", False), ("-bad.example", False),
    ("", False), (None, False), ("a" * 300, False),
])
def test_a_registry_host_is_a_name_and_an_optional_port(host: Any, ok: bool) -> None:
    assert (host_problem(host) is None) is ok


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_is_reported_per_layer_and_throttled() -> None:
    seen: list[PullStatus] = []
    clock = _Clock()
    tracker = PullTracker(seen.append, interval=1.0, clock=clock)
    tracker.feed({"status": "Pulling from berth/hello", "id": "2.0.0"})
    for layer in ("a", "b"):
        tracker.feed({"status": "Pulling fs layer", "id": layer})
    assert len(seen) == 1            # the first layer event; the rest within the second
    for current in (10, 20, 30):
        tracker.feed({"status": "Downloading", "id": "a",
                      "progressDetail": {"current": current << 20, "total": 40 << 20}})
    tracker.feed({"status": "Downloading", "id": "b",
                  "progressDetail": {"current": 0, "total": 40 << 20}})
    assert len(seen) == 1            # still throttled
    clock.now = 1.5
    tracker.feed({"status": "Downloading", "id": "a",
                  "progressDetail": {"current": 40 << 20, "total": 40 << 20}})
    assert str(seen[-1]) == "0/2 layers, 50% of 80.0 MiB"
    tracker.feed({"status": "Pull complete", "id": "a"})   # a layer done: reported at once
    assert str(seen[-1]) == "1/2 layers, 50% of 80.0 MiB"
    tracker.feed({"status": "Already exists", "id": "b"})
    tracker.feed({"status": "Digest: sha256:abc"})
    tracker.done()
    assert seen[-1].finished and seen[-1].done == 2
    assert str(seen[-1]).startswith("pulled")


def _pull_error(status: int, words: str) -> docker.errors.APIError:
    response = SimpleNamespace(status_code=status, reason="", url="http://engine/x")
    cls = docker.errors.NotFound if status == 404 else docker.errors.APIError
    return cls(words, response=response, explanation=words)


class _Api:
    """An engine whose pull fails with the given answer (the real words of one)."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def inspect_image(self, ref: str) -> Any:
        raise _pull_error(404, f"No such image: {ref}")

    def pull(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error


@pytest.mark.parametrize(("status", "words", "cls"), [
    (500, "unauthorized: authentication required", ImageUnauthorized),
    (500, 'Head "http://127.0.0.1:5105/v2/berth/hello/manifests/2.0.0": '
          "no basic auth credentials", ImageUnauthorized),
    (404, "manifest for 127.0.0.1:5105/berth/nope:2.0.0 not found: manifest unknown",
     ImageNotFound),
    (500, 'Get "http://127.0.0.1:5999/v2/": dial tcp 127.0.0.1:5999: connect: '
          "connection refused", RegistryUnreachable),
    (404, "pull access denied for berth/x, repository does not exist or may require "
          "'docker login': denied: requested access to the resource is denied", ImageNotFound),
    (500, "denied: requested access to the resource is denied", ImageUnauthorized),
    (500, "something else entirely", ImageUnavailable),
])
def test_a_failed_pull_says_why(monkeypatch: pytest.MonkeyPatch, status: int, words: str,
                                cls: type[ImageUnavailable]) -> None:
    agent = DockerAgent("unix:///nonexistent/docker.sock")
    monkeypatch.setattr(DockerAgent, "api", property(lambda self: _Api(
        _pull_error(status, words))))
    with pytest.raises(ImageUnavailable) as caught:
        agent.ensure_image("127.0.0.1:5105/berth/hello:2.0.0",
                           auth_config={"username": "u", "password": "hunter2-secret"})
    assert type(caught.value) is cls
    assert words in caught.value.message or words in str(caught.value.details)
    assert "hunter2-secret" not in caught.value.message + str(caught.value.details) + str(
        caught.value.hint)
    if cls is not ImageUnavailable:
        assert cls.reason in caught.value.message and "127.0.0.1:5105" in caught.value.hint


def test_pull_steps_are_rewritten_in_place_per_agent() -> None:
    def step(name: str, message: str) -> Any:
        return {"name": name, "status": "done", "message": message, "at": 0.0}

    steps = [step("place", "2 on 2 agents")]
    steps = _with_step(steps, step("pull agent-1", "0/2 layers"), "pull")
    steps = _with_step(steps, step("pull agent-2", "0/2 layers"), "pull")
    steps = _with_step(steps, step("pull agent-1", "1/2 layers"), "pull")
    assert [(s["name"], s["message"]) for s in steps] == [
        ("place", "2 on 2 agents"), ("pull agent-1", "1/2 layers"),
        ("pull agent-2", "0/2 layers")]
    steps = _with_step(steps, step("start", "started 2 of 2"), "")
    steps = _with_step(steps, step("pull agent-1", "again"), "pull")
    assert [s["name"] for s in steps][-2:] == ["start", "pull agent-1"]


def test_rotating_the_data_key_reseals_registry_passwords(store: Any) -> None:
    from worker.registries import credentials_for
    from worker.store.crypto import DataKeyError, DataKeys, generate_key, rotate_store

    old_key, new_key = generate_key(), generate_key()
    old = DataKeys([old_key])
    store.registries.put("r.example.com", username="u", password=old.seal("pw-rotated"))
    assert rotate_store(store, DataKeys([new_key, old_key])) == 1
    ref = "r.example.com/app:1"
    assert credentials_for(store, DataKeys([new_key]), ref) == {"username": "u",
                                                              "password": "pw-rotated"}
    with pytest.raises(DataKeyError, match="sealed with a data key"):
        credentials_for(store, old, ref)
