"""Every package of the DC/OS Universe corpus renders its page and install form.

The corpus (shared/corpus/dcos-universe, beside the repository) holds 130 real
packages with large draft-04 option schemas: a robustness check of the form
generator and the package page. Packages that cannot run on Docker hosts must list
their reasons and offer no install link.
"""

from __future__ import annotations

import html as html_module
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
