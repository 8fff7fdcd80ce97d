"""``berth package test DIR`` offline (no server): one line per stage, the problems
under it, ``--json`` for scripts, and the exit code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from server.client.cli import cli

UNIVERSE = Path(__file__).resolve().parents[3] / "universe" / "packages"


def test_a_good_package_passes_every_offline_stage() -> None:
    result = CliRunner().invoke(cli, ["package", "test", str(UNIVERSE / "testdb")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split()[:2] for line in lines[:3]] == [["lint", "ok"], ["render", "ok"],
                                                        ["spec", "ok"]]
    assert "rendered 1.0.0 examples/basic.json" in lines[1]
    assert lines[-1].endswith("testdb: passed")


def test_problems_are_listed_with_file_and_field_and_exit_3(tmp_path: Path) -> None:
    copy = tmp_path / "hello"
    shutil.copytree(UNIVERSE / "hello", copy)
    (copy / "1.0.0" / "examples" / "custom.json").write_text('{"color": "pink"}')
    result = CliRunner().invoke(cli, ["package", "test", str(copy / "1.0.0")])
    assert result.exit_code == 3, result.output
    assert "render     FAILED   1 problem(s)" in result.output
    assert f"  {copy}/1.0.0/examples/custom.json#/color: rendered with " \
           "examples/custom.json: options/color:" in result.output


def test_json_output_for_scripts_and_cluster_stages_skipped_after_a_failure(
        tmp_path: Path) -> None:
    copy = tmp_path / "hello"
    shutil.copytree(UNIVERSE / "hello", copy)
    (copy / "2.0.0" / "examples" / "custom.json").write_text("[]")
    result = CliRunner().invoke(cli, ["package", "test", str(copy), "--json", "--cluster",
                                      "http://127.0.0.1:9"])
    assert result.exit_code == 3
    report = json.loads(result.output)
    assert report["passed"] is False
    statuses = {s["name"]: s["status"] for s in report["stages"]}
    assert statuses == {"lint": "passed", "render": "failed", "spec": "passed",
                        "install": "skipped", "smoke": "skipped", "upgrade": "skipped",
                        "uninstall": "skipped"}


def test_an_unreachable_cluster_fails_the_install_stage_clearly() -> None:
    result = CliRunner().invoke(cli, ["package", "test", str(UNIVERSE / "hello"), "--json",
                                      "--cluster", "http://127.0.0.1:9", "--timeout", "5"])
    assert result.exit_code == 1, result.output
    stages = {s["name"]: s for s in json.loads(result.output)["stages"]}
    assert stages["install"]["status"] == "failed"
    assert "cannot reach http://127.0.0.1:9" in stages["install"]["problems"][0]["message"]
    assert stages["uninstall"]["status"] == "failed" or \
        stages["uninstall"]["status"] == "skipped"
