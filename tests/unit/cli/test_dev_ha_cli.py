"""`berth dev up --ha` and what `down`/`status` make of an HA bed's state (no processes)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from server.client.cli import cli
from server.client.cli.dev import _class_of
from worker.testbed.bed import Testbed
from worker.testbed.ha import HaTestbed, agent_ports


def test_up_offers_the_ha_layout() -> None:
    result = CliRunner().invoke(cli, ["dev", "up", "--help"])
    assert result.exit_code == 0 and "--ha" in result.output
    assert "Sentinels" in result.output


def test_the_state_file_says_which_bed_to_load(tmp_path: Path) -> None:
    HaTestbed(tmp_path / "ha", lane=3).save()
    Testbed(tmp_path / "plain", lane=3).save()
    assert _class_of(str(tmp_path / "ha")) is HaTestbed
    assert _class_of(str(tmp_path / "plain")) is Testbed
    assert _class_of(str(tmp_path / "nothing")) is Testbed


def test_down_stops_an_ha_bed_by_its_own_class(tmp_path: Path) -> None:
    HaTestbed(tmp_path, lane=3).save()
    result = CliRunner().invoke(cli, ["dev", "down", "--var", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "testbed.json").read_text())["ha"] is True


def test_ha_agents_use_ports_below_the_ephemeral_range() -> None:
    for lane in (0, 3, 8, 28, 50):
        bed = HaTestbed("/nonexistent", lane=lane)
        highs = [a.port_range[1] for a in bed.agents]
        assert max(highs) < 32768 and bed.agents[0].port_range[0] == agent_ports(lane)
        ranges = [set(range(a.port_range[0], a.port_range[1] + 1)) for a in bed.agents]
        assert not (ranges[0] & ranges[1] or ranges[1] & ranges[2])
