"""The Python client and the `berth` remote commands against a real server in a thread.

The app runs on a loopback port (werkzeug, in this process) over the real Redis; no
worker runs, so deployments stay queued — what these tests check is the client's
error funnel, the CLI's tables, JSON, exit codes and one-line errors.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from werkzeug.serving import make_server

from server.client import BerthAPIError, BerthClient
from server.client.cli import cli


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` on a loopback port in a thread, for as long as the block runs."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture
def url(app: Any) -> Iterator[str]:
    with serving(app) as address:
        yield address


@pytest.fixture
def run(url: str, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Any) -> Any:
    monkeypatch.setenv("BERTH_URL", url)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))

    def invoke(*args: str, role: str | None = "admin", stdin: str | None = None) -> Any:
        if role:
            monkeypatch.setenv("BERTH_TOKEN", tokens[role])
        else:
            monkeypatch.delenv("BERTH_TOKEN", raising=False)
        return CliRunner().invoke(cli, list(args), input=stdin)

    return invoke


def test_client_turns_error_bodies_into_berth_api_error(url: str,
                                                        tokens: dict[str, str]) -> None:
    client = BerthClient(url, tokens["viewer"])
    with pytest.raises(BerthAPIError) as caught:
        client.install("hello")
    assert caught.value.status == 403 and caught.value.code == "forbidden"
    with pytest.raises(BerthAPIError) as caught:
        BerthClient(url, tokens["admin"]).install("hello", options={"nope": 1})
    assert caught.value.status == 422 and caught.value.details
    with pytest.raises(BerthAPIError) as caught:
        BerthClient("http://127.0.0.1:9", "x", timeout=2).services()
    assert caught.value.status == 0 and caught.value.code == "unreachable"


def test_client_install_and_read_back(url: str, tokens: dict[str, str]) -> None:
    client = BerthClient(url, tokens["admin"])
    answer = client.install("hello", name="web", instances=2,
                            constraints=[["hostname", "UNIQUE"]])
    assert answer["deployment"]["status"] == "queued"
    assert client.deployment(answer["deployment"]["id"])["service"] == "web"
    assert [s["name"] for s in client.services()] == ["web"]
    assert client.service("web")["instances"] == 2


def test_cli_search_table_and_json(run: Any) -> None:
    table = run("search", "hello", role=None)
    assert table.exit_code == 0, table.output
    assert table.output.splitlines()[0].split() == ["NAME", "VERSION", "DESCRIPTION"]
    assert "hello" in table.output
    as_json = run("search", "hello", "--json", role=None)
    assert json.loads(as_json.output)["items"][0]["name"] == "hello"


def test_cli_install_status_and_deployments(run: Any) -> None:
    installed = run("install", "hello@1.0.0", "--name", "web", "--instances", "2",
                    "--set", "message=hi there", "--set", "resources.mem=32", "--json")
    assert installed.exit_code == 0, installed.output
    answer = json.loads(installed.output)
    assert answer["service"]["package"]["version"] == "1.0.0"
    status = run("status", "web")
    assert status.exit_code == 0 and "INSTANCE" in status.output
    listed = run("deployments", "--service", "web")
    assert answer["deployment"]["id"] in listed.output


def test_cli_errors_are_one_line_with_a_hint(run: Any) -> None:
    denied = run("install", "hello", role="viewer")
    assert denied.exit_code == 6
    assert denied.output.startswith("error: ") and "hint:" in denied.output
    assert "Traceback" not in denied.output
    missing = run("status", "no-such")
    assert missing.exit_code == 4 and missing.output.startswith("error: ")
    invalid = run("install", "hello", "--set", "nope=1")
    assert invalid.exit_code == 3 and "options" in invalid.output
    taken = [run("install", "hello", "--name", "dup") for _ in range(2)][1]
    assert taken.exit_code == 5


def test_cli_unreachable_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("BERTH_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    result = CliRunner().invoke(cli, ["services"])
    assert result.exit_code == 7 and "cannot reach" in result.output


def test_cli_login_saves_config(run: Any, url: str, tokens: dict[str, str],
                                tmp_path: Any) -> None:
    result = run("login", "--url", url, role=None, stdin=tokens["maintainer"] + "\n")
    assert result.exit_code == 0, result.output
    saved = tmp_path / "berth" / "config.json"
    assert json.loads(saved.read_text())["token"] == tokens["maintainer"]
    assert oct(saved.stat().st_mode & 0o777) == "0o600"
    assert BerthClient.from_env().whoami()["role"] == "maintainer"
    bad = run("login", "--url", url, "--token", "berth_x_y", role=None)
    assert bad.exit_code == 6


def test_parse_set_nests_and_parses_json() -> None:
    from server.client.cli.remote import parse_set

    assert parse_set(["a.b=3", "a.c=true", "d=text", 'e=["x"]']) == {
        "a": {"b": 3, "c": True}, "d": "text", "e": ["x"]}


def _end_deployments(app: Any, status: str, stop: threading.Event) -> None:
    """Play the worker: end every queued deployment with ``status``."""
    store = app.extensions["berth"].store
    while not stop.is_set():
        for deployment in store.deployments.list(limit=10):
            if deployment["status"] == "queued":
                store.deployments.update(deployment["id"], lambda d: {
                    **d, "status": status, "progress": {"total": 1, "healthy": 0},
                    "error": {"message": "no agent can take it"} if status == "failed" else None})
        stop.wait(0.05)


@pytest.mark.parametrize(("status", "code"), [("succeeded", 0), ("failed", 1)])
def test_cli_install_wait_exit_code_says_how_it_ended(app: Any, run: Any, status: str,
                                                      code: int) -> None:
    stop = threading.Event()
    worker = threading.Thread(target=_end_deployments, args=(app, status, stop), daemon=True)
    worker.start()
    try:
        result = run("install", "hello", "--name", f"wait-{status}", "--wait")
    finally:
        stop.set()
        worker.join(timeout=5)
    assert result.exit_code == code, result.output
    if status == "failed":
        assert "failed: no agent can take it" in result.output
    else:
        assert "succeeded" in result.output


def test_client_publishes_yanks_and_refreshes(url: str, tokens: dict[str, str],
                                              tmp_path: Any) -> None:
    """Scripts publish through the client as `berth publish` does; roles are enforced."""
    from catalog.bundle import build_bundle
    from tests.unit.catalog.catalog_testkit import write_package

    bundle = build_bundle(write_package(tmp_path, "scripted", "1.0.0"))
    with pytest.raises(BerthAPIError) as caught:
        BerthClient(url, tokens["viewer"]).publish(bundle)
    assert caught.value.status == 403
    maintainer = BerthClient(url, tokens["maintainer"])
    answer = maintainer.publish(bundle)
    assert (answer["name"], answer["version"]) == ("scripted", "1.0.0")
    with pytest.raises(BerthAPIError) as caught:
        maintainer.publish(bundle)
    assert caught.value.status == 409
    assert maintainer.yank("scripted", "1.0.0", "superseded")["yanked"] == "superseded"
    with pytest.raises(BerthAPIError) as caught:
        BerthClient(url, tokens["admin"]).refresh_repository("no-such-repo")
    assert caught.value.status == 404


def test_show_names_why_a_universe_package_cannot_run(make_app: Any, tokens: dict[str, str],
                                                      tmp_path: Any,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """`berth show` gives the format, the upstream version and every reason."""
    import shutil
    from pathlib import Path

    from catalog.dcos.loader import load_universe_dir
    from catalog.index import Catalog

    source = Path(__file__).resolve().parents[2] / "data" / "dcos-hello"
    shutil.copytree(source, tmp_path / "repo")
    meta = tmp_path / "repo" / "packages" / "D" / "dcos-hello" / "0" / "package.json"
    meta.write_text(meta.read_text().replace('"framework": false', '"framework": true'))
    app = meta.parent / "marathon.json.mustache"  # a flagged app that names ZooKeeper
    app.write_text(app.read_text().replace('"env": {', '"env": {"ZK": "zk://master.mesos:2181",'))
    repo, problems = load_universe_dir(tmp_path / "repo", name="dcos")
    assert not problems

    class Source:
        def get(self) -> Any:
            return Catalog([repo])

    with serving(make_app(CATALOG=Source())) as address:
        monkeypatch.setenv("BERTH_URL", address)
        monkeypatch.setenv("BERTH_TOKEN", tokens["viewer"])
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
        shown = CliRunner().invoke(cli, ["show", "dcos-hello"])
    assert shown.exit_code == 0, shown.output
    assert "format:       dcos (upstream version 1.0.0-dcos)" in shown.output
    assert "cannot run on Docker hosts:" in shown.output
    assert "framework" in shown.output.split("cannot run on Docker hosts:")[1]


def test_repo_add_sends_format_and_interval(make_app: Any, run: Any, tokens: dict[str, str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """`berth repo add --format dcos --interval N` reaches the API; an address the SSRF
    guard refuses is one line with the reason."""
    index = "http://127.0.0.1:9/repo-up-to-1.10.json"  # nothing listens on port 9
    refused = run("repo", "add", "community", index, "--format", "dcos")
    assert refused.exit_code != 0
    assert "loopback" in refused.output and "Traceback" not in refused.output
    bad = run("repo", "add", "community", "http://example.org/", "--format", "helm")
    assert bad.exit_code == 2 and "'helm' is not one of" in bad.output
    with serving(make_app(BERTH_REPOSITORY_ALLOW_LOOPBACK="1")) as address:
        monkeypatch.setenv("BERTH_URL", address)
        added = run("repo", "add", "community", index, "--format", "dcos",
                    "--interval", "600", "--priority", "300")
        assert added.exit_code == 0, added.output
        assert "repository community added; a worker fetches it now" in added.output
        listed = json.loads(run("repo", "list", "--json").output)
    row = next(r for r in listed if r["name"] == "community")
    assert (row["format"], row["interval"], row["priority"]) == ("dcos", 600, 300)


def test_package_owners_commands_and_a_refused_takeover(run: Any, tmp_path: Any) -> None:
    """`berth publish` of a name the universe serves is one line naming the owner and
    the admin's command; `berth package owners` shares it; `berth show` says where
    else the name is."""
    import json as json_module
    import shutil
    from pathlib import Path

    from server.client.cli.common import EXIT_CONFLICT

    folder = tmp_path / "postgres" / "99.0.0"
    shutil.copytree(Path(__file__).resolve().parents[3] / "universe" / "packages" / "hello"
                    / "1.0.0", folder)
    meta = json_module.loads((folder / "package.json").read_text())
    (folder / "package.json").write_text(json_module.dumps(
        {**meta, "name": "postgres", "version": "99.0.0"}))
    refused = run("publish", str(folder), role="maintainer")
    assert refused.exit_code == EXIT_CONFLICT, refused.output
    assert "package name 'postgres' belongs to repository 'universe'" in refused.output
    assert "berth package owners add postgres --token" in refused.output
    listed = run("package", "owners", "postgres", role="maintainer")
    assert listed.exit_code == 0 and "repositories: universe" in listed.output
    assert run("package", "owners", "add", "postgres", "--token", "unit-maintainer",
               role="maintainer").exit_code != 0
    shared = run("package", "owners", "add", "postgres", "--token", "unit-maintainer")
    assert shared.exit_code == 0, shared.output
    assert "universe, hosted" in shared.output and "(unit-maintainer)" in shared.output
    assert run("publish", str(folder), role="maintainer").exit_code == 0
    shown = run("show", "postgres", role="viewer")
    assert "repository:   hosted" in shown.output and "also in:      universe" in shown.output
    both = run("package", "owners", "add", "postgres", "--token", "x", "--user", "y")
    assert both.exit_code != 0 and "exactly one" in both.output
    moved = run("package", "owners", "transfer", "postgres", "--repository", "universe")
    assert moved.exit_code == 0 and "installs from: universe" in moved.output
    assert "repository:   universe" in run("show", "postgres", role="viewer").output


def test_upgrade_moves_repository_only_when_told(run: Any) -> None:
    assert run("install", "hello", "--name", "web").exit_code == 0
    stays = run("upgrade", "web", "--repository", "nowhere")
    assert stays.exit_code != 0 and "no package named 'hello' in repository 'nowhere'" in \
        stays.output and "Traceback" not in stays.output


def test_cli_install_with_a_newline_in_the_name_is_refused(run: Any) -> None:
    """No client-side name check: the server's whole-string rule refuses it, in one line."""
    refused = run("install", "hello", "--name", "web\n")
    assert refused.exit_code != 0 and refused.output.startswith("error: ")
    assert "invalid" in refused.output and "Traceback" not in refused.output
    assert run("status", "web").exit_code == 4  # nothing was installed under any name


def test_uninstall_delete_data_asks_first_and_says_so(run: Any, app: Any) -> None:
    assert run("install", "hello@1.0.0", "--name", "db", "--json").exit_code == 0
    store = app.extensions["berth"].store
    store.deployments.update(store.services.get("db")["deployment"],
                             lambda d: {**d, "status": "succeeded"})
    refused = run("uninstall", "db", "--delete-data", stdin="n\n")
    assert refused.exit_code != 0 and "DELETE ITS DATA" in refused.output
    assert store.services.get("db")["status"] != "deleting"
    gone = run("uninstall", "db", "--delete-data", "--yes", "--json")
    assert gone.exit_code == 0, gone.output
    answer = json.loads(gone.output)
    assert answer["delete_data"] is True and answer["volumes"] == []
    assert store.deployments.get(answer["deployment"]["id"])["delete_data"] is True


def test_uninstall_of_a_linked_service_names_the_dependents_unless_forced(
        run: Any, app: Any) -> None:
    assert run("install", "postgres", "--name", "pg", "--json").exit_code == 0
    linked = run("install", "adminer", "--name", "adm", "--set", "database=pg", "--json")
    assert linked.exit_code == 0, linked.output
    refused = run("uninstall", "pg", "--yes")
    assert refused.exit_code != 0 and "adm link to it" in refused.output
    assert "--force" in refused.output and "Traceback" not in refused.output
    forced = run("uninstall", "pg", "--yes", "--force", "--json")
    assert forced.exit_code == 0, forced.output


def test_volumes_lists_and_names_an_agent_that_does_not_answer(run: Any,
                                                               tmp_path: Any) -> None:
    added = run("agents", "add", f"unix://{tmp_path}/none.sock", "--id", "agent-away",
                "--cpus", "1", "--mem", "512", "--ports", "30000-30099")
    assert added.exit_code == 0, added.output
    listed = run("volumes", role="viewer")
    assert listed.exit_code == 0, listed.output
    assert "SERVICE" in listed.output and "agent agent-away did not answer" in listed.output
    as_json = json.loads(run("volumes", "--service", "db", "--json").output)
    assert as_json == {"volumes": [], "unreachable": ["agent-away"]}


def test_human_sizes() -> None:
    from server.client.cli.remote_cluster import human_size

    assert [human_size(None), human_size(0), human_size(1536), human_size(5 * 2**30)] == [
        "unknown", "0 B", "1.5 KiB", "5.0 GiB"]
