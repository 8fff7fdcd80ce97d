"""Links between services on the real test bed: ``linkprobe`` (``tests/data``) links to
a real testdb.

- It installs with the link recorded in its spec and the database's current address
  in its container's environment, and the database answers there from inside it.
- ``berth uninstall`` of the database is refused while the link exists, naming it.
- When the database moves to another agent (``berth move``'s deployment), the probe is
  restarted and its new container has the new address.
- A probe whose link asks for the database's password (published for the test) gets it
  in its container only when the admin confirmed the handover, and authenticates with
  it; without the confirmation its field is empty. The password is in no API answer,
  no event, no Redis value and no file Redis wrote.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cluster_support import Cluster, until
from stateful_support import remove_volumes, testdb, unique

from catalog.bundle import build_bundle
from catalog.loader import load_package_dir
from catalog.options import resolve_options
from catalog.render import render_service
from server.client import BerthClient

pytestmark = pytest.mark.integration

PROBE = Path(__file__).parents[1] / "data" / "linkprobe" / "packages" / "linkprobe" / "1.0.0"


@pytest.fixture
def cluster(testbed: Any) -> Iterator[Cluster]:
    c = Cluster(testbed)
    yield c
    c.created.reverse()   # the dependent first
    c.uninstall_all()
    remove_volumes([c.docker(a.id) for a in testbed.agents], [f"{n}-data" for n in c.created])


def healthy(cluster: Cluster, name: str) -> dict[str, Any] | None:
    found = [i for i in cluster.instances(name)
             if i["state"] == "running" and i["health"] == "healthy"]
    return found[0] if len(found) == 1 else None


def deployed(cluster: Cluster, name: str, spec: dict[str, Any], package: dict[str, Any]
             ) -> dict[str, Any]:
    cluster.created.append(name)
    deployment = cluster.ops.install(name, spec, package=package, actor="test")["deployment"]
    done = cluster.wait(deployment, timeout=90)
    assert done["status"] == "succeeded", done["error"]
    return until(lambda: healthy(cluster, name), 30, f"{name} healthy")


def environment(cluster: Cluster, instance: dict[str, Any]) -> dict[str, str]:
    """The container's environment as the engine has it."""
    raw = cluster.docker(instance["agent"]).api.inspect_container(instance["container_id"])
    return dict(item.split("=", 1) for item in raw["Config"]["Env"])


def reaches_database(cluster: Cluster, instance: dict[str, Any]) -> bool:
    """A PING from inside the probe's container to the linked address is answered
    (NOAUTH is an answer: the probe has no password)."""
    result = cluster.docker(instance["agent"]).exec_check(
        instance["container_id"],
        ["sh", "-c", 'redis-cli -h "$DB_HOST" -p "$DB_PORT" ping 2>&1 | grep -Eq "PONG|NOAUTH"'],
        timeout=10)
    return result.ok


def berth(live_server: Any, *args: str) -> subprocess.CompletedProcess[str]:
    command = "from server.client.cli import main; main()"
    return subprocess.run([sys.executable, "-c", command, *args],
                          env=live_server.cli_env(None), capture_output=True, text=True,
                          timeout=240, check=False)


def test_a_linked_probe_follows_its_database_and_holds_it_installed(
        cluster: Cluster, testbed: Any, live_server: Any) -> None:
    db, probe = unique("linkdb"), unique("probe")
    identity, spec = testdb("1.0.0", db, secrets.token_urlsafe(16))
    first_db = deployed(cluster, db, spec, identity)

    package = load_package_dir(PROBE)
    probe_spec = render_service(package, resolve_options(package, {"database": db}),
                                service_name=probe)
    assert probe_spec["links"] == [{"option": "database", "service": db, "port": "redis",
                                    "onLinkChange": "restart"}]
    first = deployed(cluster, probe, probe_spec,
                     {"name": "linkprobe", "version": "1.0.0", "repository": "tests"})
    env = environment(cluster, first)
    assert (env["DB_HOST"], env["DB_PORT"]) == (first_db["address"],
                                                str(first_db["ports"]["redis"]))
    assert env["DB_ADDRESS"] == f"{first_db['address']}:{first_db['ports']['redis']}"
    assert reaches_database(cluster, first)

    refused = berth(live_server, "uninstall", db, "--yes")
    assert refused.returncode != 0
    assert probe in refused.stderr + refused.stdout
    assert cluster.store.services.require(db)["status"] != "deleting"

    target = next(a.id for a in testbed.agents if a.id != first_db["agent"])
    moving = cluster.ops.move(db, first_db["id"], target, actor="test")
    assert cluster.wait(moving, timeout=120)["status"] == "succeeded"
    moved_db = until(lambda: healthy(cluster, db), 30, f"{db} healthy on {target}")
    assert (moved_db["address"], moved_db["ports"]["redis"]) != (
        first_db["address"], first_db["ports"]["redis"])

    def relinked() -> dict[str, Any] | None:
        now = healthy(cluster, probe)
        return now if now is not None and now["id"] != first["id"] else None

    second = until(relinked, 60, f"{probe} restarted after {db} moved")
    env = environment(cluster, second)
    assert (env["DB_HOST"], env["DB_PORT"]) == (moved_db["address"],
                                                str(moved_db["ports"]["redis"]))
    assert reaches_database(cluster, second)
    kinds = [d["kind"] for d in cluster.store.deployments.list(service=probe)]
    assert "restart" in kinds


def _credential_probe(live_server: Any, root: Path) -> str:
    """linkprobe renamed, its link asking for the testdb's password, published to
    ``hosted`` by a maintainer; returns its name."""
    name = f"credprobe-{uuid.uuid4().hex[:6]}"
    folder = root / name / "1.0.0"
    shutil.copytree(PROBE, folder)
    meta = json.loads((folder / "package.json").read_text())
    meta.update(name=name, title="Credential probe", featured=False)
    (folder / "package.json").write_text(json.dumps(meta))
    config = json.loads((folder / "config.json").read_text())
    config["properties"]["database"]["x-berth-service"]["credentials"] = {
        "password": "/auth/password"}
    (folder / "config.json").write_text(json.dumps(config))
    template = (folder / "service.json.j2").read_text().replace(
        '"DB_NAME": {{ links.database.name | tojson }}',
        '"DB_NAME": {{ links.database.name | tojson }},\n'
        '          "DB_PASSWORD": {{ links.database.credentials.password | tojson }}')
    (folder / "service.json.j2").write_text(template)
    answer = requests.post(live_server.url + "/api/v1/packages", data=build_bundle(folder),
                           timeout=60, headers={
                               "Authorization": f"Bearer {live_server.make_token('maintainer')}",
                               "Content-Type": "application/gzip"})
    assert answer.status_code == 201, answer.text
    return name


def _installed(client: BerthClient, cluster: Cluster, package: str, name: str,
               **kwargs: Any) -> dict[str, Any]:
    cluster.created.append(name)
    answer = client.install(package, name=name, instances=1, **kwargs)
    done = client.wait_for_deployment(answer["deployment"]["id"], timeout=120)
    assert done["status"] == "succeeded", done.get("error")
    return until(lambda: healthy(cluster, name), 30, f"{name} healthy")


def _authenticates(cluster: Cluster, instance: dict[str, Any]) -> bool:
    """From inside the probe: a PING with the handed-over password is answered PONG."""
    result = cluster.docker(instance["agent"]).exec_check(
        instance["container_id"],
        ["sh", "-c", 'redis-cli -h "$DB_HOST" -p "$DB_PORT" -a "$DB_PASSWORD" '
                     '--no-auth-warning ping | grep -q PONG'], timeout=10)
    return result.ok


def _redis_holds(redis: Any, needle: bytes) -> bool:
    """Whether any key's serialized value, or any file in Redis's folder, has ``needle``."""
    if any(needle in (redis.dump(key) or b"") for key in redis.scan_iter("*")):
        return True
    folder = Path(redis.config_get("dir")["dir"])
    return any(needle in p.read_bytes() for p in folder.rglob("*") if p.is_file())


def test_credentials_reach_the_dependent_only_when_the_admin_confirmed_it(
        cluster: Cluster, live_server: Any, tmp_path: Path) -> None:
    client = BerthClient(live_server.url, live_server.admin_token)
    probe = _credential_probe(live_server, tmp_path)
    db, password = unique("creddb"), secrets.token_urlsafe(18)
    _installed(client, cluster, "testdb", db, version="1.0.0",
               options={"auth": {"password": password}})

    plain = _installed(client, cluster, probe, unique("plain"), options={"database": db})
    assert environment(cluster, plain)["DB_PASSWORD"] == ""
    assert not _authenticates(cluster, plain)

    given_name = unique("given")              # through the CLI: the admin's confirmation
    cluster.created.append(given_name)
    done = berth(live_server, "install", probe, "--name", given_name, "--instances", "1",
                 "--set", f"database={db}", "--hand-over-credentials", "database", "--wait")
    assert done.returncode == 0, done.stderr
    given = until(lambda: healthy(cluster, given_name), 30, f"{given_name} healthy")
    assert environment(cluster, given)["DB_PASSWORD"] == password
    assert _authenticates(cluster, given)
    [link] = client.service(given_name)["spec"]["links"]
    assert link["credentials"] == {"password": "/auth/password"}
    assert link["handover"]["by"] and link["handover"]["at"] > 0

    events = cluster.store.state.read_events("0-0", 100000)
    handed = [e for e in events if e["type"] == "service.credentials_handed_over"
              and e["subject"] == given_name]
    assert [e["data"]["service"] for e in handed] == [db]
    shown = json.dumps([client.service(n) for n in (db, plain["service"], given_name)]
                       + [client.services(), client.history(given_name), events,
                          client.deployments(service=given_name)])
    assert password not in shown
    assert not _redis_holds(cluster.store.redis, password.encode())
