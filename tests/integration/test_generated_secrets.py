"""Generated secrets on the real test bed (Redis, engines, worker, server).

A package published for the test (``hello`` with ``x-generate`` on its token; its
2.0.0 adds a generated ``api_key``) is installed with the token left empty. The token
is generated once and reaches the container; an upgrade keeps it and generates the
key; a rollback to 1.0.0 (which lacked the key) keeps the token; an upgrade again
brings back the very same key. Only an admin can reveal them (a viewer gets 403,
anonymous 401), each reveal is in the event stream, and neither value appears in any
other API answer, in the events, in any Redis key or in Redis's files (the AOF holds
every write since the bed started).
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from catalog.bundle import build_bundle
from server.client import BerthClient

pytestmark = pytest.mark.integration

HELLO = Path(__file__).resolve().parents[2] / "universe" / "packages" / "hello"


def _gen_version(root: Path, name: str, version: str) -> Path:
    """hello ``version`` renamed to ``name``, its token generated; 2.0.0 adds api_key."""
    folder = root / name / version
    shutil.copytree(HELLO / version, folder)
    meta = json.loads((folder / "package.json").read_text())
    meta.update(name=name, title=f"Generated {name}", featured=False)
    (folder / "package.json").write_text(json.dumps(meta))
    config = json.loads((folder / "config.json").read_text())
    auth = config["properties"]["auth"]["properties"]
    auth["token"].pop("x-secret-optional", None)   # generated, so never empty
    auth["token"]["x-generate"] = {"kind": "password", "length": 32}
    template = (folder / "service.json.j2").read_text()
    if version == "2.0.0":
        auth["api_key"] = {"title": "API key", "description": "A generated key.",
                           "type": "string", "x-secret": True, "default": "",
                           "x-generate": {"kind": "hex", "length": 20}}
        template = template.replace(
            '"HELLO_TOKEN": {{ options.auth.token | tojson }}',
            '"HELLO_TOKEN": {{ options.auth.token | tojson }},\n'
            '    "HELLO_API_KEY": {{ options.auth.api_key | tojson }}')
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "service.json.j2").write_text(template)
    return folder


@pytest.fixture
def published(live_server: Any, tmp_path: Path) -> str:
    """The package's name, both versions published to ``hosted`` by a maintainer."""
    name = f"gen-{uuid.uuid4().hex[:8]}"
    maintainer = live_server.make_token("maintainer")
    for version in ("1.0.0", "2.0.0"):
        bundle = build_bundle(_gen_version(tmp_path, name, version))
        answer = requests.post(live_server.url + "/api/v1/packages", data=bundle, timeout=60,
                               headers={"Authorization": f"Bearer {maintainer}",
                                        "Content-Type": "application/gzip"})
        assert answer.status_code == 201, answer.text
    return name


@pytest.fixture
def installed(live_server: Any, published: str) -> Iterator[tuple[BerthClient, str, str]]:
    """(admin client, service name, generated token) of an install with no options."""
    client = BerthClient(live_server.url, live_server.admin_token)
    service = f"gs-{uuid.uuid4().hex[:6]}"
    answer = client.install(published, version="1.0.0", name=service, instances=1)
    try:
        generated = answer["generated_secrets"]
        assert [g["path"] for g in generated] == ["/auth/token"]
        _settle(client, answer)
        yield client, service, generated[0]["value"]
    finally:
        removal = client.uninstall(service)
        client.wait_for_deployment(removal["deployment"]["id"], timeout=120)


def _settle(client: BerthClient, answer: dict[str, Any]) -> None:
    deployment = answer.get("deployment", answer)
    final = client.wait_for_deployment(deployment["id"], timeout=120)
    assert final["status"] == "succeeded", final.get("error")


def _env(testbed: Any, client: BerthClient, name: str) -> dict[str, str]:
    """The running container's environment (what the worker opened and passed)."""
    running = [i for i in client.service(name)["instances_list"] if i["state"] == "running"]
    assert len(running) == 1, running
    agent = testbed.agent(running[0]["agent"])
    raw = agent.api.inspect_container(running[0]["container_id"] or running[0]["container"])
    return dict(item.split("=", 1) for item in raw["Config"]["Env"])


def _everything_shown(live_server: Any, client: BerthClient, name: str) -> str:
    """Every view but the reveal, and the whole event stream, as one text."""
    return "\n".join([json.dumps(client.service(name)), json.dumps(client.services()),
                      json.dumps(client.history(name)),
                      json.dumps(client.deployments(service=name)),
                      *_all_events(live_server)])


def _all_events(live_server: Any) -> Iterator[str]:
    """Every page of ``/events`` from the start (the suite's bed holds thousands)."""
    since = "0"
    while True:
        page = requests.get(live_server.api + "/events", timeout=30,
                            params={"since": since, "timeout": 1, "limit": 1000},
                            headers=live_server.headers()).text
        ids = [line[4:] for line in page.splitlines() if line.startswith("id: ")]
        yield page
        if not ids:
            return
        since = ids[-1]


def _redis_text(redis: Any) -> bytes:
    """Every value in the bed's Redis (strings, lists, hashes, sets, streams)."""
    found: list[Any] = []
    for key in redis.scan_iter("*"):
        kind = redis.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind == "string":
            found.append(redis.get(key) or b"")
        elif kind == "list":
            found.extend(redis.lrange(key, 0, -1))
        elif kind == "hash":
            found.extend(redis.hgetall(key).values())
        elif kind == "set":
            found.extend(redis.smembers(key))
        elif kind == "stream":
            found.extend(v for _id, fields in redis.xrange(key) for v in fields.values())
    return b"\n".join(v if isinstance(v, bytes) else str(v).encode() for v in found)


def test_generated_once_kept_across_upgrade_and_rollback_and_revealed_to_admins(
        testbed: Any, live_server: Any, published: str,
        installed: tuple[BerthClient, str, str]) -> None:
    client, name, token = installed
    assert len(token) == 32
    assert _env(testbed, client, name)["HELLO_TOKEN"] == token

    _settle(client, client.upgrade(name, version="2.0.0"))
    upgraded = _env(testbed, client, name)
    key = upgraded["HELLO_API_KEY"]
    assert upgraded["HELLO_TOKEN"] == token and len(key) == 40

    _settle(client, client.rollback(name))                       # back to 1.0.0: no key
    rolled = _env(testbed, client, name)
    assert rolled["HELLO_TOKEN"] == token and "HELLO_API_KEY" not in rolled

    _settle(client, client.upgrade(name, version="2.0.0"))       # the same key again
    again = _env(testbed, client, name)
    assert (again["HELLO_TOKEN"], again["HELLO_API_KEY"]) == (token, key)

    url = f"{live_server.api}/services/{name}/secrets"
    assert requests.get(url, timeout=30).status_code == 401
    viewer = requests.get(url, timeout=30,
                          headers=live_server.headers(live_server.make_token("viewer")))
    assert viewer.status_code == 403 and token not in viewer.text
    assert client.secrets(name)["secrets"] == [
        {"path": "/auth/api_key", "value": key, "generated": True},
        {"path": "/auth/token", "value": token, "generated": True}]

    shown = _everything_shown(live_server, client, name)
    assert '"service.secrets_revealed"' in shown and f'"subject":"{name}"' in shown
    assert token not in shown and key not in shown
    redis = testbed.store().redis
    redis_text = _redis_text(redis)
    assert name.encode() in redis_text                    # the search sees record text
    assert token.encode() not in redis_text and key.encode() not in redis_text
    folder = Path(redis.config_get("dir")["dir"])          # and nothing ever written in clear
    written = b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())
    assert name.encode() in written
    assert token.encode() not in written and key.encode() not in written
