"""`berth images load FILE` and `berth images push-local REF`: images without a registry.

A fresh image (hello 2.0.0 plus one layer) is made on agent 1 only; the CLI, run as an
admin against the live server, puts it on every agent — from a ``docker save`` tarball,
or straight from agent 1's engine standing in for the admin's local Docker.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.cluster_support import commit_variant
from worker.testbed.bed import Testbed

pytestmark = pytest.mark.integration


def berth(server: Any, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI against the live server (admin token)."""
    return subprocess.run([sys.executable, "-c", "from server.client.cli import main; main()",
                           *args], env=server.cli_env(), capture_output=True, text=True,
                          timeout=300, check=False)


@pytest.fixture
def fresh(testbed: Testbed) -> Iterator[str]:
    """An image only agent 1 has; removed from every agent afterwards."""
    ref = commit_variant(testbed.agent(1), f"berth-test/loaded:{uuid.uuid4().hex[:8]}")
    yield ref
    for i in range(1, len(testbed.agents) + 1):
        if testbed.agent(i).has_image(ref):
            testbed.agent(i).api.remove_image(ref, force=True)


def _holders(testbed: Testbed, ref: str) -> list[str]:
    return [a.id for i, a in enumerate(testbed.agents, start=1)
            if testbed.agent(i).has_image(ref)]


def test_a_saved_tarball_is_loaded_on_every_agent(live_server: Any, testbed: Testbed,
                                                  fresh: str, tmp_path: Path) -> None:
    tarball = testbed.agent(1).save_image(fresh, tmp_path / "image.tar")
    testbed.agent(1).api.remove_image(fresh)
    assert _holders(testbed, fresh) == []
    done = berth(live_server, "images", "load", str(tarball), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json.loads(done.stdout)
    assert {r["agent"] for r in rows} == {a.id for a in testbed.agents}
    assert all(r["status"] == "ok" and fresh in r["message"] for r in rows), rows
    assert _holders(testbed, fresh) == [a.id for a in testbed.agents]


def test_push_local_copies_an_engines_image_to_the_agents_that_lack_it(
        live_server: Any, testbed: Testbed, fresh: str) -> None:
    done = berth(live_server, "images", "push-local", fresh, "--from", testbed.agents[0].url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "there already" in done.stdout and "copied" in done.stdout
    assert _holders(testbed, fresh) == [a.id for a in testbed.agents]


def test_bad_requests_fail_with_a_reason(live_server: Any, testbed: Testbed,
                                         tmp_path: Path) -> None:
    missing = berth(live_server, "images", "push-local", "berth-test/nowhere:1",
                    "--from", testbed.agents[0].url)
    assert missing.returncode == 1 and "has no image berth-test/nowhere:1" in missing.stderr
    unknown = berth(live_server, "images", "push-local", "berth/hello:2.0.0",
                    "--from", testbed.agents[0].url, "--agent", "agent-99")
    assert unknown.returncode == 1 and "no such agent: agent-99" in unknown.stderr
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tarball")
    broken = berth(live_server, "images", "load", str(junk), "--agent", "agent-2")
    assert broken.returncode == 1 and "failed" in broken.stdout
    assert "Traceback" not in broken.stdout + broken.stderr
