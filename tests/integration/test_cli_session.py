"""A `berth` CLI session against the live system: real server, worker, Docker engines.

Installs ``hello`` 1.0.0 with 4 instances and waits, checks they are healthy and
spread over the agents, scales, upgrades to the newest version, and uninstalls —
each step through the CLI in a subprocess, as a person or a script would.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.integration

SERVICE = "cli-hello"


def berth(live_server: Any, *args: str, token: str | None = None,
          timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """Run the CLI with BERTH_URL/BERTH_TOKEN pointing at the live server."""
    command = "from server.client.cli import main; main()"
    return subprocess.run([sys.executable, "-c", command, *args],
                          env=live_server.cli_env(token), capture_output=True, text=True,
                          timeout=timeout, check=False)


def status(live_server: Any) -> dict[str, Any]:
    result = berth(live_server, "status", SERVICE, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def healthy(service: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in service["instances_list"]
            if i["state"] == "running" and i["health"] in ("healthy", "none")]


def test_install_scale_upgrade_uninstall(live_server: Any) -> None:
    installed = berth(live_server, "install", "hello@1.0.0", "--name", SERVICE,
                      "--instances", "4", "--wait")
    try:
        assert installed.returncode == 0, installed.stderr
        assert "succeeded" in installed.stdout
        service = status(live_server)
        running = healthy(service)
        assert len(running) == 4 and service["package"]["version"] == "1.0.0"
        agents = {i["agent"] for i in running}
        assert len(agents) == min(3, len(requests.get(
            live_server.api + "/agents", timeout=10).json()["items"]))
        for instance in running:  # each answers HTTP on its assigned port
            port = next(iter(instance["ports"].values()))
            assert requests.get(f"http://{instance['address']}:{port}/", timeout=5).ok
        table = berth(live_server, "status", SERVICE)
        assert table.returncode == 0 and table.stdout.count("healthy") >= 4
        logs = berth(live_server, "logs", SERVICE, running[0]["id"], "--tail", "20")
        assert logs.returncode == 0, logs.stderr
        audit = requests.get(live_server.api + "/events",
                             params={"since": "0", "limit": 1000, "timeout": 1,
                                     "type": "service.created"}, timeout=30).text
        assert f'"subject":"{SERVICE}"' in audit and '"actor":"token:' in audit

        scaled = berth(live_server, "scale", SERVICE, "2", "--wait")
        assert scaled.returncode == 0, scaled.stderr
        assert len(healthy(status(live_server))) == 2

        upgraded = berth(live_server, "upgrade", SERVICE, "--wait")
        assert upgraded.returncode == 0, upgraded.stderr
        service = status(live_server)
        assert service["package"]["version"] != "1.0.0"
        assert len(healthy(service)) == 2
        assert all(i["generation"] == service["generation"] for i in healthy(service))
    finally:
        removed = berth(live_server, "uninstall", SERVICE, "--yes", "--wait")
    assert removed.returncode == 0, removed.stderr
    listed = berth(live_server, "services", "--json")
    assert SERVICE not in [s["name"] for s in json.loads(listed.stdout)]


def test_cli_errors_are_one_line_with_exit_codes(live_server: Any) -> None:
    viewer = live_server.make_token("viewer")
    refused = berth(live_server, "install", "hello", "--name", "cli-nope", token=viewer)
    assert refused.returncode == 6
    assert refused.stderr.startswith("error: ") and "Traceback" not in refused.stderr
    assert "hint:" in refused.stderr
    missing = berth(live_server, "status", "no-such-service")
    assert missing.returncode == 4 and "Traceback" not in missing.stderr
    invalid = berth(live_server, "install", "hello", "--name", "cli-bad", "--set",
                    "no_such_option=1")
    assert invalid.returncode == 3 and "options" in invalid.stderr
