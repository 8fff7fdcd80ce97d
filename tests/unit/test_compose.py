"""docker-compose.yml keeps the control plane closed: Redis wants a password that every
Berth URL carries, and packages get no host network unless the admin allows it."""

from __future__ import annotations

from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def _services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_redis_requires_the_password_from_the_environment() -> None:
    redis = _services()["redis"]
    assert "--requirepass \"$$REDIS_PASSWORD\"" in " ".join(redis["command"])
    assert redis["environment"]["REDIS_PASSWORD"].startswith("${BERTH_REDIS_PASSWORD:?")
    assert "ports" not in redis   # not published on the host


def test_the_server_and_the_worker_use_it_and_refuse_the_host_network() -> None:
    for name in ("server", "worker"):
        env = _services()[name]["environment"]
        assert env["BERTH_REDIS_URL"] == "redis://:${BERTH_REDIS_PASSWORD}@redis:6379/0"
        assert env["BERTH_ALLOW_HOST_NETWORK"] == "${BERTH_ALLOW_HOST_NETWORK:-false}"
        assert env["BERTH_AGENT_TLS_DIR"] == "/etc/berth/agents"
