"""The server checks host-path mounts against BERTH_ALLOWED_HOST_PATHS, as workers do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.unit.catalog.catalog_testkit import GOOD_TEMPLATE, write_package


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}

TEMPLATE = GOOD_TEMPLATE.replace(
    '"volumes": [{"containerPath": "/data", "name": {{ (service ~ "-data") | tojson }}}]',
    '"volumes": [{"containerPath": "/data", "hostPath": "/data/berth/media"}]')


class StaticSource:
    def __init__(self, catalog: Any) -> None:
        self.catalog = catalog

    def get(self) -> Any:
        return self.catalog


@pytest.fixture
def host_path_catalog(tmp_path: Path) -> Any:
    from catalog.index import Catalog
    from catalog.loader import load_repository_dir

    assert TEMPLATE != GOOD_TEMPLATE
    write_package(tmp_path, "media", template=TEMPLATE)
    repo, problems = load_repository_dir(tmp_path, name="local")
    assert not problems
    return StaticSource(Catalog([repo]))


def _render(make_app: Any, catalog: Any, **settings: str) -> Any:
    app = make_app(CATALOG=catalog, **settings)
    from server.auth import create_token

    token = create_token(app.extensions["berth"].store, name="t", role="admin")[1]
    return app.test_client().post("/api/v1/packages/media/render", json={},
                                  headers=bearer(token))


def test_a_host_path_outside_the_default_allow_list_is_refused(make_app: Any,
                                                                host_path_catalog: Any) -> None:
    response = _render(make_app, host_path_catalog)
    assert response.status_code == 422, response.get_json()
    assert "outside the allowed host paths" in response.get_data(as_text=True)


def test_the_admin_allow_list_admits_the_host_path(make_app: Any, host_path_catalog: Any) -> None:
    response = _render(make_app, host_path_catalog,
                       BERTH_ALLOWED_HOST_PATHS="/srv/berth:/data/berth")
    assert response.status_code == 200, response.get_json()
    volumes = response.get_json()["spec"]["volumes"]
    assert volumes[0]["hostPath"] == "/data/berth/media"


def test_a_nested_host_path_is_refused_naming_the_field(make_app: Any,
                                                        host_path_catalog: Any) -> None:
    """``/data/berth/media`` under the root ``/data`` goes through ``/data/berth``, a
    folder a service mounting ``/data/berth`` could have turned into a link."""
    response = _render(make_app, host_path_catalog, BERTH_ALLOWED_HOST_PATHS="/srv/berth:/data")
    assert response.status_code == 422, response.get_json()
    details = {d["path"]: d["message"] for d in response.get_json()["details"]}
    assert "not directly inside /data" in details["spec/volumes/0/hostPath"]


def test_nested_allowed_roots_are_refused_at_start(make_app: Any) -> None:
    from server.settings import SettingsError

    with pytest.raises(SettingsError, match="BERTH_ALLOWED_HOST_PATHS.*nest"):
        make_app(BERTH_ALLOWED_HOST_PATHS="/srv/berth:/srv/berth/a")


def test_installing_a_nested_host_path_is_refused_and_writes_nothing(
        make_app: Any, host_path_catalog: Any) -> None:
    app = make_app(CATALOG=host_path_catalog, BERTH_ALLOWED_HOST_PATHS="/data")
    from server.auth import create_token

    token = create_token(app.extensions["berth"].store, name="t", role="admin")[1]
    client = app.test_client()
    response = client.post("/api/v1/services", json={"package": "media", "name": "b"},
                           headers=bearer(token))
    assert response.status_code == 422, response.get_json()
    body = response.get_json()
    assert body["error"] == "spec_refused"
    assert body["details"][0]["path"] == "spec/volumes/0/hostPath"
    assert "'/data/berth/media' is not directly inside /data" in body["details"][0]["message"]
    assert client.get("/api/v1/services/b", headers=bearer(token)).status_code == 404
