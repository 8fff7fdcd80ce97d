"""``berth package test --cluster``: the whole kit on the real test bed.

The CLI runs in a subprocess against the live server (real worker, real Docker engines),
as a maintainer would run it before publishing: lint, render, spec checks, then install
the previous version, wait healthy, run the package's own smoke test (an HTTP GET for
``hello``, a command inside the container for ``testdb``), upgrade to the newest
version, smoke again, uninstall. The service and its volumes must be gone afterwards.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.integration

PACKAGES = Path(__file__).resolve().parents[2] / "universe" / "packages"


def berth(live_server: Any, *args: str) -> subprocess.CompletedProcess[str]:
    """The ``berth`` CLI against the live server, as a subprocess."""
    command = "from server.client.cli import main; main()"
    return subprocess.run([sys.executable, "-c", command, *args],
                          env=live_server.cli_env(), capture_output=True, text=True,
                          timeout=600, check=False)


def kit(live_server: Any, *args: str) -> subprocess.CompletedProcess[str]:
    """``berth package test ARGS --cluster URL --json`` as a subprocess."""
    return berth(live_server, "package", "test", *args, "--cluster", live_server.url,
                 "--timeout", "120", "--json")


def stages_of(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    report = json.loads(result.stdout)
    return {stage["name"]: stage for stage in report["stages"]}


def services(live_server: Any) -> list[str]:
    answer = requests.get(live_server.api + "/services", headers=live_server.headers(),
                          timeout=30).json()
    return [s["name"] for s in answer["items"]]


@pytest.mark.parametrize("name", ["hello", "testdb"])
def test_the_whole_kit_passes(live_server: Any, name: str) -> None:
    result = kit(live_server, str(PACKAGES / name))
    assert result.returncode == 0, result.stdout + result.stderr
    stages = stages_of(result)
    assert [s for s in stages] == ["lint", "render", "spec", "install", "smoke", "upgrade",
                                   "uninstall"]
    assert all(s["status"] == "passed" for s in stages.values()), stages
    smoke = " ".join(stages["smoke"]["notes"])
    assert "passed" in smoke and "examples/" in " ".join(stages["install"]["notes"])
    upgraded = " ".join(stages["upgrade"]["notes"])
    assert " → " in upgraded and upgraded.count("passed") >= 1
    assert not [s for s in services(live_server) if s.startswith(f"pkgtest-{name}-")]
    volumes = requests.get(live_server.api + "/volumes", headers=live_server.headers(),
                           timeout=60).json()
    assert not [v for v in volumes.get("volumes", [])
                if str(v.get("service", "")).startswith(f"pkgtest-{name}-")]


def test_a_package_the_cluster_serves_differently_is_not_installed(live_server: Any,
                                                                   tmp_path: Path) -> None:
    """A changed copy of hello: the cluster serves the real one, so the kit would test
    another package than the folder's; it says so and installs nothing."""
    copy = tmp_path / "hello"
    shutil.copytree(PACKAGES / "hello", copy)
    for meta in copy.glob("*/package.json"):
        data = json.loads(meta.read_text())
        data["tests"]["smoke"]["status"] = 418
        meta.write_text(json.dumps(data))
    result = kit(live_server, str(copy))
    assert result.returncode == 1, result.stdout + result.stderr
    stages = stages_of(result)
    assert stages["install"]["status"] == "failed"
    assert "the cluster serves another hello" in stages["install"]["problems"][0]["message"]
    assert "tests differs" in stages["install"]["problems"][0]["message"]
    assert stages["smoke"]["status"] == "skipped"
    assert stages["uninstall"]["status"] == "skipped"
    assert not [s for s in services(live_server) if s.startswith("pkgtest-hello-")]


def test_a_failing_smoke_test_fails_the_run_and_still_uninstalls(live_server: Any,
                                                                 tmp_path: Path) -> None:
    """A package published to the test Berth whose smoke test expects a status the page
    never answers: install passes, smoke fails with the answer it got, uninstall runs."""
    name = f"kit-fail-{secrets.token_hex(3)}"
    folder = tmp_path / name / "1.0.0"
    shutil.copytree(PACKAGES / "hello" / "1.0.0", folder)
    meta = json.loads((folder / "package.json").read_text())
    meta.update(name=name, tests={"smoke": {"protocol": "http", "portName": "http",
                                            "path": "/version.json", "status": 418}})
    (folder / "package.json").write_text(json.dumps(meta))
    published = berth(live_server, "publish", str(folder))
    assert published.returncode == 0, published.stderr
    result = berth(live_server, "package", "test", str(tmp_path / name), "--cluster",
                   live_server.url, "--timeout", "120")
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[:2] for line in lines[:7]] == [
        ["lint", "ok"], ["render", "ok"], ["spec", "ok"], ["install", "ok"],
        ["smoke", "FAILED"], [f"{folder}/package.json#/tests/smoke:", "failed"],
        ["upgrade", "skipped"]]
    assert lines[5].startswith("  ") and lines[5].endswith(": 200 (expected 418)")
    assert lines[7].split()[:2] == ["uninstall", "ok"]
    assert "FAILED" in result.stderr
    assert not [s for s in services(live_server) if s.startswith(f"pkgtest-{name}-")]
