"""marathon-lb labels (``HAPROXY_{n}_VHOST``, ``HAPROXY_GROUP`` …) become ``expose``."""

from __future__ import annotations

from typing import Any

from catalog.dcos.convert import analyze_app
from catalog.spec import validate_spec


def app(labels: dict[str, str]) -> dict[str, Any]:
    return {"id": "/web", "cmd": "httpd", "cpus": 0.1, "mem": 32, "instances": 2,
            "container": {"type": "DOCKER", "docker": {"image": "nginx:1"}},
            "portDefinitions": [{"port": 0, "name": "http"}, {"port": 0, "name": "admin"}],
            "labels": labels}


def test_vhost_group_and_path_labels_become_routes() -> None:
    conv = analyze_app(app({"HAPROXY_GROUP": "external",
                            "HAPROXY_0_VHOST": "Web.Example.com, www.example.com",
                            "HAPROXY_0_PATH": "/app", "HAPROXY_1_VHOST": "admin.example.com",
                            "HAPROXY_1_GROUP": "internal",
                            "HAPROXY_1_REDIRECT_TO_HTTPS": "true"}))
    assert conv.reasons == []
    assert conv.spec["expose"] == [
        {"portName": "http", "hosts": ["web.example.com", "www.example.com"],
         "pathPrefix": "/app", "tls": False, "group": "external"},
        {"portName": "admin", "hosts": ["admin.example.com"], "pathPrefix": "/", "tls": True,
         "group": "internal"}]
    assert validate_spec(conv.spec)["expose"] == conv.spec["expose"]
    assert conv.spec["labels"]["HAPROXY_GROUP"] == "external"   # the labels stay


def test_an_empty_or_disabled_vhost_gives_no_route() -> None:
    conv = analyze_app(app({"HAPROXY_0_VHOST": "", "HAPROXY_1_VHOST": "a.example.com",
                            "HAPROXY_1_ENABLED": "false"}))
    assert conv.reasons == [] and "expose" not in conv.spec


def test_a_bad_vhost_or_a_missing_port_is_a_reason_not_a_silent_drop() -> None:
    conv = analyze_app(app({"HAPROXY_0_VHOST": "a`) || Host(`b", "HAPROXY_5_VHOST": "x.test"}))
    paths = {r["path"] for r in conv.reasons}
    assert paths == {"marathon.json#/labels/HAPROXY_0_VHOST",
                     "marathon.json#/labels/HAPROXY_5_VHOST"}
