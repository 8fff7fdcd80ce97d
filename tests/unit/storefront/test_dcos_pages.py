"""Every package of the DC/OS Universe corpus renders its page and install form.

The corpus (shared/corpus/dcos-universe, beside the repository) holds 130 real
packages with large draft-04 option schemas: a robustness check of the form
generator and the package page. Packages that cannot run on Docker hosts must list
their reasons and offer no install link.
"""

from __future__ import annotations

import html as html_module
import re
from typing import Any

import pytest

from tests.fixtures.corpus import require_corpus

from .conftest import StaticSource, login
from .htmlcheck import Page


@pytest.fixture(scope="module")
def dcos_catalog() -> Any:
    corpus = require_corpus()
    from catalog.dcos.loader import load_universe_dir
    from catalog.index import Catalog

    repo, _problems = load_universe_dir(corpus, name="dcos")
    return Catalog([repo])


def test_every_dcos_package_page_and_form_renders(dcos_catalog: Any, storefront_redis: str) -> None:
    from server.app import create_app

    app = create_app(
        {
            "BERTH_REDIS_URL": storefront_redis,
            "BERTH_SECRET_KEY": "dcos-pages",
            "CATALOG": StaticSource(dcos_catalog),
            "TESTING": True,
        }
    )
    client = app.test_client()
    login(client, app, "admin")
    names = list(dcos_catalog.names)
    assert len(names) > 100
    for name in names:
        newest = dcos_catalog.resolve(name)  # the newest installable one, if any
        page = client.get(f"/packages/{name}")
        assert page.status_code == 200, name
        html = page.get_data(as_text=True)
        assert Page(html).unsafe() == [], name
        if newest.unsupported:
            assert newest.unsupported[0] in html_module.unescape(html), name
            assert f"/packages/{name}/install" not in html, name
            continue
        form = client.get(f"/packages/{name}/install")
        assert form.status_code == 200, name
        assert Page(form.get_data(as_text=True)).unsafe() == [], name


def test_dcos_install_form_json_view_shows_the_defaults_the_server_resolves(
        storefront_redis: str) -> None:
    """The form's JSON view uses Cosmos's default rule for a DC/OS package, as installs do."""
    import dataclasses
    import json

    from catalog import resolve_options
    from catalog.index import Catalog
    from catalog.repository import Repository
    from server.app import create_app

    schema = {"type": "object", "properties": {
        "tls": {"type": "object", "default": {"on": True},
                "properties": {"on": {"type": "boolean"},
                               "port": {"type": "integer", "default": 443}}}}}
    base = next(p for p in _universe().packages if p.name == "hello")
    package = dataclasses.replace(base, name="split", format="dcos", config_schema=schema,
                                  unsupported=(), repository="dcos")
    app = create_app({"BERTH_REDIS_URL": storefront_redis, "BERTH_SECRET_KEY": "dcos-form",
                      "CATALOG": StaticSource(Catalog([Repository(
                          name="dcos", priority=100, kind="dcos", packages=(package,))])),
                      "TESTING": True})
    client = app.test_client()
    login(client, app, "admin")
    form = client.get("/packages/split/install")
    assert form.status_code == 200
    found = re.search(r'<textarea id="options_json"[^>]*>(.*?)</textarea>',
                      form.get_data(as_text=True), re.S)
    assert found is not None
    shown = json.loads(html_module.unescape(found.group(1)))
    assert shown == resolve_options(package, {}) == {"tls": {"on": True}}


def _universe() -> Any:
    from catalog.loader import load_repository_dir
    from tests.fixtures.corpus import ROOT

    return load_repository_dir(ROOT / "universe", name="universe", priority=100)[0]
