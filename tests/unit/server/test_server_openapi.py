"""Schemathesis against ``/api/v1/openapi.json``, in-process (WSGI).

Every operation is called with generated valid and invalid input (an admin token,
so the real handlers run, not only the auth check). It must never answer 500, and
every answer must match the document: status, content type, body schema.
Operations that reach outside the process (registering an agent connects to a
Docker URL, adding a repository fetches one), publishing (gzip bundles, which
schemathesis cannot generate; publishing's own tests send hostile bundles) and the
long-lived event stream are left out; their input checks are covered elsewhere.

The document is loaded when the module is imported, from an app whose Redis is
not there (serving the document needs none); each test then points the WSGI proxy
at the test's own app on the real Redis.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from server.app import create_app

MAX_EXAMPLES = 50
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


class AppProxy:
    """A WSGI app that forwards to whichever Flask app the current test set."""

    def __init__(self, target: Any) -> None:
        self.target = target

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        return self.target(environ, start_response)


PROXY = AppProxy(create_app({"BERTH_REDIS_URL": "redis://127.0.0.1:9/0",
                             "BERTH_SECRET_KEY": "document-only",
                             "BERTH_REDIS_TIMEOUT": "0.2"}))
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", PROXY)
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                                max_examples=MAX_EXAMPLES, deterministic=True)
schema = (schema.exclude(path="/events")
                .exclude(path="/agents", method="POST")
                .exclude(path="/packages", method="POST")
                .exclude(path_regex="^/repositories"))


@pytest.fixture
def admin_headers(app: Any, tokens: dict[str, str]) -> Any:
    """Point the proxy at this test's app; the admin token's header."""
    PROXY.target = app
    return {"Authorization": f"Bearer {tokens['admin']}"}


@schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
          deadline=None, database=None)
def test_api_matches_its_document(case: Any, admin_headers: dict[str, str]) -> None:
    case.call_and_validate(headers=admin_headers, checks=CHECKS)


def test_document_is_valid_openapi_3_1(client: Any) -> None:
    from jsonschema import Draft202012Validator

    doc = client.get("/api/v1/openapi.json").json
    assert doc["openapi"] == "3.1.0"
    for component in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(component)
    routes = {r.rule.removeprefix("/api/v1").replace("<", "{").replace(">", "}")
              for r in client.application.url_map.iter_rules() if r.rule.startswith("/api/v1")}
    renamed = {"{deployment_id}": "{id}", "{agent_id}": "{id}", "{instance_id}": "{instance}"}
    for old, new in renamed.items():
        routes = {r.replace(old, new) for r in routes}
    assert routes <= set(doc["paths"]), routes - set(doc["paths"])
