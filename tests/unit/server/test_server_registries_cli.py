"""`berth registries …` against a real server in a thread, and the progress line.

The password goes in on standard input and never comes back out: not in the table,
not in ``--json``, not in an error line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from server.client.cli import cli
from server.client.cli.plumbing import progress_line
from tests.unit.server.test_server_client_cli import serving

PASSWORD = "cli-Registry-pa55word"   # noqa: S105 - the value the tests look for


@pytest.fixture
def run(app: Any, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Any) -> Iterator[Any]:
    with serving(app) as url:
        monkeypatch.setenv("BERTH_URL", url)
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))

        def invoke(*args: str, role: str = "admin", stdin: str | None = None) -> Any:
            monkeypatch.setenv("BERTH_TOKEN", tokens[role])
            return CliRunner().invoke(cli, list(args), input=stdin)

        yield invoke


def test_add_reads_the_password_from_stdin_and_list_never_shows_it(run: Any) -> None:
    added = run("registries", "add", "127.0.0.1:5055", "--username", "berth",
                "--password-stdin", stdin=PASSWORD + "\n")
    assert added.exit_code == 0, added.output
    assert "registry 127.0.0.1:5055 added as berth" in added.output
    table = run("registries", "list")
    assert "127.0.0.1:5055" in table.output and "berth" in table.output
    as_json = run("registries", "--json")
    assert [r["host"] for r in json.loads(as_json.output)] == ["127.0.0.1:5055"]
    for result in (added, table, as_json):
        assert PASSWORD not in result.output
    removed = run("registries", "remove", "127.0.0.1:5055")
    assert removed.exit_code == 0
    again = run("registries", "remove", "127.0.0.1:5055")
    assert again.exit_code == 4 and "no registry" in again.output


def test_refusals_are_one_line_with_an_exit_code(run: Any) -> None:
    viewer = run("registries", "add", "r.example.com", "--username", "u",
                 "--password-stdin", role="viewer", stdin=PASSWORD + "\n")
    assert viewer.exit_code == 6 and PASSWORD not in viewer.output
    bad = run("registries", "add", "https://r.example.com", "--username", "u",
              "--password-stdin", stdin=PASSWORD + "\n")
    assert bad.exit_code == 3 and "host" in bad.output and "Traceback" not in bad.output
    empty = run("registries", "add", "r.example.com", "--username", "u", "--password-stdin",
                stdin="")
    assert empty.exit_code == 2 and "no password on standard input" in empty.output
    lone = run("registries", "add", "r.example.com", "--password-stdin", stdin=PASSWORD)
    assert lone.exit_code == 2 and "--password-stdin needs --username" in lone.output


def test_the_progress_line_shows_the_step_written_last() -> None:
    steps = [{"name": "place", "status": "done", "message": "2 on 2 agents", "at": 1.0},
             {"name": "pull agent-1", "status": "done", "message": "img: 2/3 layers",
              "at": 5.0},
             {"name": "pull agent-2", "status": "done", "message": "img: 0/3 layers",
              "at": 3.0}]
    line = progress_line({"status": "running", "steps": steps, "progress": {"total": 2}})
    assert line.endswith("running: pull agent-1 img: 2/3 layers")
