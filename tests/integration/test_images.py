"""Locally built images: built once, identical on every agent, rebuilt when changed."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from worker.docker_agent import tarball_name
from worker.testbed.bed import IMAGES, Testbed
from worker.testbed.images import DIGEST_LABEL, build_images, find_image_sources

pytestmark = pytest.mark.integration


def test_the_bed_holds_the_hello_images_with_the_same_id_on_every_agent(
        testbed: Testbed) -> None:
    assert {"berth/hello:1.0.0", "berth/hello:2.0.0"} <= set(testbed.images)
    sources = {source.ref: source for source in find_image_sources(IMAGES)}
    assert set(testbed.images) == set(sources)
    for ref in testbed.images:
        inspected = [testbed.agent(i).api.inspect_image(ref) for i in (1, 2, 3)]
        assert len({raw["Id"] for raw in inspected}) == 1
        config = inspected[0]["Config"]
        assert config["Cmd"] == list(sources[ref].cmd)
        assert set(sources[ref].env) <= set(config["Env"])
        assert config["Labels"][DIGEST_LABEL]
    assert config_of(testbed, "berth/hello:1.0.0")["Cmd"] == ["/bin/start"]
    assert "berth/toolbox:1.0.0" in testbed.images   # the agents' host-folder checks
    assert "berth/testdb:7" in testbed.images        # the stateful tests' database


def config_of(testbed: Testbed, ref: str) -> dict:
    """The image's config as agent 1's engine reports it."""
    return testbed.agent(1).api.inspect_image(ref)["Config"]


@pytest.fixture
def image_root(tmp_path: Path, testbed: Testbed) -> Iterator[tuple[Path, str]]:
    """A one-image folder ``berth-test/img-<random>:1.0.0``; the image is removed after."""
    repository = f"berth-test/img-{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "images" / "img" / "1.0.0"
    (folder / "rootfs" / "etc").mkdir(parents=True)
    (folder / "image.json").write_text(json.dumps({
        "repository": repository, "tag": "1.0.0", "applets": ["sh", "cat"],
        "cmd": ["/bin/cat", "/etc/motd"], "env": ["PATH=/bin"]}))
    (folder / "rootfs" / "etc" / "motd").write_text("one\n")
    yield tmp_path / "images", f"{repository}:1.0.0"
    for i in (1, 2, 3):
        if testbed.agent(i).has_image(f"{repository}:1.0.0"):
            testbed.agent(i).api.remove_image(f"{repository}:1.0.0", force=True)


def image_ids(testbed: Testbed, ref: str) -> set[str]:
    return {testbed.agent(i).api.inspect_image(ref)["Id"] for i in (1, 2, 3)}


def test_an_unchanged_image_is_kept_and_a_changed_one_rebuilt_everywhere(
        testbed: Testbed, image_root: tuple[Path, str], tmp_path: Path) -> None:
    root, ref = image_root
    agents = [testbed.agent(i) for i in (1, 2, 3)]
    assert build_images(agents, root, tmp_path / "tarballs") == [ref]
    first = image_ids(testbed, ref)
    build_images(agents, root, tmp_path / "tarballs")
    assert image_ids(testbed, ref) == first and len(first) == 1
    (root / "img" / "1.0.0" / "rootfs" / "etc" / "motd").write_text("two\n")
    build_images(agents, root, tmp_path / "tarballs")
    second = image_ids(testbed, ref)
    assert len(second) == 1 and second != first
    assert (tmp_path / "tarballs" / tarball_name(ref)).is_file()


def test_a_built_image_runs_its_overlay_files(testbed: Testbed,
                                              image_root: tuple[Path, str],
                                              tmp_path: Path) -> None:
    root, ref = image_root
    agent = testbed.agent(2)
    build_images([agent], root, tmp_path / "tarballs")
    container = f"berth-test-{uuid.uuid4().hex[:8]}"
    agent.run_instance(container, {"image": ref}, labels={"berth-test.case": "image"})
    try:
        deadline = time.monotonic() + 15
        while "one" not in agent.logs(container):
            assert time.monotonic() < deadline, agent.logs(container)
            time.sleep(0.05)
    finally:
        agent.remove(container)
