"""`berth lint` and `berth render` through the real click group, no server."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from server.client.cli import cli

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "unit" / "catalog"))
from catalog_testkit import write_package  # noqa: E402


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_lint_passes_on_the_universe(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["lint", str(ROOT / "universe")])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: no problems")


def test_lint_prints_every_problem_and_fails(runner: CliRunner, tmp_path: Path) -> None:
    write_package(tmp_path, "demo", "1.0.0", raw={"config.json": "{", "resource.json": "[]"},
                  template="{% if %}")
    result = runner.invoke(cli, ["lint", str(tmp_path)])
    assert result.exit_code == 3
    lines = [line for line in result.stdout.splitlines() if line]
    assert any(line.startswith(f"{tmp_path}/packages/demo/1.0.0/config.json: malformed JSON")
               for line in lines)
    assert any("/resource.json: " in line for line in lines)
    assert "problem(s) found" in result.stderr


def test_render_prints_the_spec_with_options(runner: CliRunner, tmp_path: Path) -> None:
    write_package(tmp_path, "demo", "1.0.0")
    write_package(tmp_path, "demo", "1.1.0")
    options = tmp_path / "opts.json"
    options.write_text(json.dumps({"message": "from file", "tuning": {"workers": 3}}))
    result = runner.invoke(cli, [
        "render", "demo@~1.0", "--repo", str(tmp_path), "--options", str(options),
        "--set", "port=8080", "--set", "tuning.workers=4", "--name", "web",
        "--instances", "3"])
    assert result.exit_code == 0, result.output
    spec = json.loads(result.stdout)
    assert spec["image"] == "example/demo:1.0.0" and spec["instances"] == 3
    assert spec["env"]["MESSAGE"] == "from file" and spec["env"]["WORKERS"] == "4"
    assert spec["ports"][0]["hostPort"] == 8080
    assert spec["volumes"][0]["name"] == "web-data"


def test_render_uses_the_universe_by_default(runner: CliRunner,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BERTH_UNIVERSE_DIR", raising=False)
    result = runner.invoke(cli, ["render", "hello"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["image"].startswith("berth/hello:")


@pytest.mark.parametrize(("args", "code", "words"), [
    (["render", "nope"], 4, "no package named 'nope'"),
    (["render", "demo@^9"], 4, "no version of 'demo'"),
    (["render", "demo@bad"], 3, "not a version range"),
    (["render", "demo", "--set", "port=notanumber"], 3, "options/port"),
    (["render", "demo", "--set", "novalue"], 2, "key.path=value"),
    (["render", "demo", "--options", "/nonexistent.json"], 2, "cannot read"),
])
def test_render_errors_are_one_clear_message(runner: CliRunner, tmp_path: Path,
                                             args: list[str], code: int, words: str) -> None:
    write_package(tmp_path, "demo", "1.0.0")
    result = runner.invoke(cli, [*args, "--repo", str(tmp_path)])
    assert result.exit_code == code, result.output
    assert words in result.output
    assert "Traceback" not in result.output


def test_render_of_a_faulty_package_shows_its_problems(runner: CliRunner,
                                                      tmp_path: Path) -> None:
    write_package(tmp_path, "demo", "1.0.0", raw={"resource.json": "{}"})
    result = runner.invoke(cli, ["render", "demo", "--repo", str(tmp_path)])
    assert result.exit_code == 3
    assert "faulty versions" in result.output and "resource.json" in result.output
