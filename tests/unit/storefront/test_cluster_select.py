"""The install form's cluster select: shown only with more than one cluster, carried
through the review, and a Swarm's refusal shown on the form; the service page names
the cluster."""

from __future__ import annotations

import json
from typing import Any

from .test_flows import form_fields


def test_no_select_with_only_berths_agents(admin: Any) -> None:
    html = admin.get("/packages/hello/install").get_data(as_text=True)
    assert 'name="cluster"' not in html


def test_a_swarm_adds_the_select_and_the_install_lands_on_it(admin: Any, app: Any) -> None:
    store = app.extensions["berth"].store
    store.clusters.add({"name": "sw", "kind": "swarm", "url": "swarm://127.0.0.1:1",
                        "port_range": [30000, 30999]})
    try:
        html = admin.get("/packages/hello/install").get_data(as_text=True)
        assert '<select id="cluster" name="cluster"' in html
        assert '<option value="sw">sw</option>' in html
        data = form_fields(html, "/packages/hello/install")
        data.update({"service_name": "onswarm", "cluster": "sw", "action": "review"})
        review = admin.post("/packages/hello/install", data=data)
        assert review.status_code == 200
        page = review.get_data(as_text=True)
        assert '<input type="hidden" name="cluster" value="sw">' in page
        data.update({"action": "install", "options_json": json.dumps({})})
        answer = admin.post("/packages/hello/install", data=data)
        assert answer.status_code == 302, answer.get_data(as_text=True)
        assert store.services.get("onswarm")["cluster"] == "sw"
        service = admin.get("/services/onswarm").get_data(as_text=True)
        assert "cluster sw" in service
    finally:
        store.clusters.remove("sw")
