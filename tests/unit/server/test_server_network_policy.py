"""The server refuses a host-network install unless the admin allows it (422)."""

from __future__ import annotations

import pytest

from server.auth import create_token
from server.settings import Settings, SettingsError


def _install(make_app, **settings):
    """POST an install of the universe's hello (it asks for the host network)."""
    app = make_app(**settings)
    _record, token = create_token(app.extensions["berth"].store, name="t", role="admin",
                                  created_by="tests")
    client = app.test_client()
    return client.post("/api/v1/services", json={"package": "hello", "name": "web"},
                       headers={"Authorization": f"Bearer {token}"})


def test_hello_on_the_host_network_is_refused_by_default(make_app):
    response = _install(make_app, BERTH_ALLOW_HOST_NETWORK="")
    assert response.status_code == 422, response.json
    assert response.json["error"] == "spec_refused"
    assert [d["path"] for d in response.json["details"]] == ["spec/network"]


def test_an_allow_list_naming_hello_lets_it_install(make_app):
    assert _install(make_app, BERTH_ALLOW_HOST_NETWORK="hello").status_code == 202


def test_a_bad_allowance_is_a_settings_error():
    with pytest.raises(SettingsError, match="BERTH_ALLOW_HOST_NETWORK"):
        Settings.from_env({"BERTH_ALLOW_HOST_NETWORK": "no such name!"})
    assert Settings.from_env({"BERTH_REFUSE_ROOT_USER": "true"}).container_policy \
        .refuse_root_user
