"""The one settings table: every ``BERTH_*`` variable declared once, each process reading
its part, and ``docs/production.md`` showing exactly the table."""

from __future__ import annotations

import re
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import pytest

from catalog import settings_table as table
from catalog.settings_table import SETTINGS, SettingsError, markdown_table, settings_of
from server.settings import Settings
from worker.repository_fetcher import RemotePolicy
from worker.settings import SharedSettings, WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
# BERTH_* names that are not settings of Berth's processes: what Berth hands to the
# containers it starts, and the knobs of the tests and benchmarks.
NOT_SETTINGS = {"BERTH_HOST", "BERTH_SERVICE", "BERTH_INSTANCE", "BERTH_LABEL",
                "BERTH_RESULT", "BERTH_TEST_LANE", "BERTH_DCOS_CORPUS", "BERTH_CHROMIUM"}
NOT_SETTING_PREFIXES = ("BERTH_BENCH_", "BERTH_SCALE_")
# fields whose table default "" stands for a value the process computes
COMPUTED_DEFAULTS = {"universe_dir"}


def _field_defaults(cls: type) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(cls):
        out[f.name] = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
    return out


@pytest.mark.parametrize(("cls", "reader", "extra"), [
    (Settings, "server", {"remote_policy"}),
    (WorkerSettings, "worker", {"remote_policy"}),
    (RemotePolicy, "repository", set()),
])
def test_each_settings_class_holds_exactly_its_part_of_the_table(
        cls: type, reader: str, extra: set[str]) -> None:
    part = {s.field: s for s in settings_of(reader)}
    defaults = _field_defaults(cls)
    assert set(defaults) - extra == set(part), f"{cls.__name__} and the table disagree"
    for name, setting in part.items():
        if name not in COMPUTED_DEFAULTS:
            assert defaults[name] == setting.default, f"{cls.__name__}.{name}'s default"
            assert isinstance(defaults[name], setting.kind), f"{cls.__name__}.{name}'s type"


def test_what_servers_and_workers_share_is_declared_once() -> None:
    both = {s.field for s in SETTINGS if {"server", "worker"} <= set(s.readers)}
    assert {f.name for f in fields(SharedSettings)} == both | {"remote_policy"}
    assert issubclass(Settings, SharedSettings) and issubclass(WorkerSettings, SharedSettings)


def test_every_variable_is_declared_once() -> None:
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))
    assert all(s.help and s.readers for s in SETTINGS)


def _named_in_sources() -> set[str]:
    found: set[str] = set()
    files = [*ROOT.glob("catalog/**/*.py"), *ROOT.glob("server/**/*.py"),
             *ROOT.glob("worker/**/*.py"), ROOT / "Dockerfile", ROOT / "docker-compose.yml",
             ROOT / "Makefile", *ROOT.glob("docs/*.md"), ROOT / "README.md"]
    for path in files:
        found |= set(re.findall(r"\bBERTH_[A-Z][A-Z0-9_]*[A-Z0-9]\b", path.read_text("utf-8")))
    return found


def test_every_berth_variable_the_code_names_is_in_the_table() -> None:
    declared = {s.name for s in SETTINGS}
    named = {n for n in _named_in_sources()
             if n not in NOT_SETTINGS and not n.startswith(NOT_SETTING_PREFIXES)
             and not n.endswith("_")}
    assert sorted(named - declared) == []


def test_the_production_docs_show_the_table() -> None:
    text = (ROOT / "docs" / "production.md").read_text("utf-8")
    start = "<!-- settings table: generated from catalog/settings_table.py -->\n"
    end = "<!-- end of settings table -->"
    shown = text.split(start, 1)[1].split(end, 1)[0]
    assert shown == markdown_table(), ("docs/production.md's settings table is out of date: "
                                       "paste `python -m catalog.settings_table` into it")


def test_roles_are_defined_once() -> None:
    import server.auth
    import server.client.cli.admin
    import server.settings

    assert server.settings.ROLES is table.ROLES
    assert server.client.cli.admin.ROLES is table.ROLES
    assert server.auth.ROLES is table.ROLES


def test_the_settings_objects_have_no_grab_bag() -> None:
    assert "extra" not in {f.name for f in fields(Settings)}
    assert "extra" not in {f.name for f in fields(WorkerSettings)}


def test_each_process_reads_the_shared_variables_alike() -> None:
    env = {"BERTH_REDIS_PREFIX": "blue:", "BERTH_REDIS_URL": "redis://127.0.0.1:7000/3",
           "BERTH_ALLOWED_HOST_PATHS": "/srv/a,/srv/b", "BERTH_REPOSITORY_DEADLINE": "7",
           "BERTH_REPOSITORY_ALLOW_LOOPBACK": "yes"}
    server, worker = Settings.from_env(env), WorkerSettings.from_env(env)
    for attr in ("prefix", "redis_url", "allowed_host_paths", "remote_policy"):
        assert getattr(server, attr) == getattr(worker, attr), attr
    assert server.prefix == "blue:" and server.allowed_host_paths == ("/srv/a", "/srv/b")
    assert RemotePolicy.of(server) == RemotePolicy(deadline=7.0, allow_loopback=True)


def test_the_server_store_uses_the_prefix() -> None:
    from server.context import Berth

    berth = Berth(Settings.from_env({"BERTH_REDIS_PREFIX": "blue:"}), redis_client=object())
    assert berth.store.state.prefix == "blue:"


@pytest.mark.parametrize(("cls", "name", "raw", "words"), [
    (Settings, "BERTH_MAX_BODY", "lots", "is not a whole number"),
    (WorkerSettings, "BERTH_HEARTBEAT_INTERVAL", "-1", "must be 0 or more"),
    (WorkerSettings, "BERTH_STOP_TIMEOUT", "soon", "is not a number"),
    (RemotePolicy, "BERTH_REPOSITORY_WORKERS", "many", "is not a whole number"),
])
def test_a_value_that_does_not_parse_is_refused_naming_the_variable(
        cls: Any, name: str, raw: str, words: str) -> None:
    with pytest.raises(SettingsError, match=f"^{name}={raw!r} {words}"):
        cls.from_env({name: raw})


def test_an_empty_value_keeps_the_default() -> None:
    assert Settings.from_env({"BERTH_MAX_BODY": ""}).max_body == table.default("BERTH_MAX_BODY")
    assert WorkerSettings.from_env({"BERTH_WORKER_CONCURRENCY": ""}).concurrency == 4
