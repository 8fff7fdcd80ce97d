"""The client and the CLI need no server-side library; exit codes come from one table."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from catalog import errors as ce
from server.client.api import BerthAPIError
from server.client.cli import cli, main, publish
from server.client.cli.common import (
    EXIT_CODES,
    EXIT_MEANINGS,
    exit_code_for,
    exit_code_for_api,
)
from server.client.cli.plumbing import api_command
from tests.fixtures.blocked_imports import run_blocked

ROOT = Path(__file__).resolve().parents[3]
SERVER_SIDE = ("flask", "celery", "redis", "docker", "kombu", "werkzeug", "flask_wtf")

# What each API answer means to a script: the same for every command.
API_EXITS = [("invalid", 400, 3), ("bad_request", 400, 3), ("unauthorized", 401, 6),
             ("forbidden", 403, 6), ("package_not_found", 404, 4), ("service_exists", 409, 5),
             ("too_large", 413, 3), ("unsupported_media_type", 415, 3),
             ("options_invalid", 422, 3), ("too_many_requests", 429, 7),
             ("internal", 500, 7), ("repository_error", 503, 7), ("unreachable", 0, 7),
             ("method_not_allowed", 405, 1)]


def test_client_and_cli_import_with_server_libraries_blocked() -> None:
    """Every module of server.client loads, and lint runs, with no Flask/Celery/Redis/Docker."""
    result = run_blocked(SERVER_SIDE, """
        import importlib, pkgutil
        import server.client, server.client.cli
        from server.client import BerthClient
        for info in pkgutil.walk_packages(server.client.__path__, "server.client."):
            importlib.import_module(info.name)
        from server.client.cli import cli
        for args in (["--help"], ["lint", "universe"]):
            try:
                cli.main(args, prog_name="berth", standalone_mode=False)
            except SystemExit as exc:
                assert not exc.code, (args, exc.code)
        print("ok", BerthClient.__name__)
    """)
    assert result.returncode == 0, result.stderr
    assert "ok BerthClient" in result.stdout


def test_help_lists_every_exit_code() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    epilog = result.output.split("Exit codes:", 1)[1]
    for code, meaning in EXIT_MEANINGS:
        assert f"  {code}  {meaning}" in epilog
    assert set(EXIT_CODES.values()) <= {code for code, _ in EXIT_MEANINGS}


@pytest.mark.parametrize(("code", "status", "expected"), API_EXITS)
def test_api_errors_exit_the_same_from_every_command(code: str, status: int,
                                                     expected: int) -> None:
    """The API commands and the publishing commands map an answer to one exit code.

    429 used to exit 7 from ``install`` and 1 from ``publish``.
    """
    error = BerthAPIError(code, "refused", status=status)

    def raise_it() -> Any:
        raise error

    assert exit_code_for_api(code, status) == expected
    with pytest.raises(SystemExit) as remote_exit:
        api_command(raise_it)()
    with pytest.raises(SystemExit) as publish_exit:
        publish._call(raise_it)
    assert remote_exit.value.code == publish_exit.value.code == expected


@pytest.mark.parametrize(("error", "expected"), [
    (ce.NotFound("x"), 4), (ce.PackageNotFound("x"), 4), (ce.Conflict("x"), 5),
    (ce.VersionExists("x"), 5), (ce.InvalidInput("x"), 3), (ce.OptionsInvalid("x"), 3),
    (ce.PlacementError("x"), 1), (ce.CatalogError("x"), 1),
])
def test_local_errors_exit_by_their_family_code(error: ce.CatalogError, expected: int) -> None:
    assert exit_code_for(error) == expected


def test_the_berth_console_script_names_the_cli() -> None:
    """pyproject's ``berth`` entry point is the click group's ``main`` in server.client."""
    target = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["berth"]
    module, _, name = target.partition(":")
    assert module.startswith("server.client.")
    assert getattr(importlib.import_module(module), name) is main
