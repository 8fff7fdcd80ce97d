"""Maintainer templates render in child processes, through every server path (item 6).

The render endpoint, installs and the publish-time lint all go through the render pool;
a template past the deadline is refused there with the sandbox's error.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from catalog.bundle import build_bundle

HELLO = Path(__file__).resolve().parents[3] / "universe" / "packages" / "hello" / "1.0.0"
SPLITS = " ~ ".join(["s.split(',')[0]"] * 400)
SLOW = ("{% set s = 'ab,' * 8000 %}{\"image\": {{ (" + SPLITS + ") | tojson }}}")


def _bundle(tmp_path: Path, template: str) -> bytes:
    folder = tmp_path / "slow" / "slow" / "1.0.0"
    shutil.copytree(HELLO, folder)
    meta = json.loads((folder / "package.json").read_text())
    meta.update(name="slow", version="1.0.0", featured=False)
    (folder / "package.json").write_text(json.dumps(meta))
    (folder / "service.json.j2").write_text(template)
    return build_bundle(folder)


def test_the_render_endpoint_renders_in_a_child_process(make_app: Any) -> None:
    app = make_app(BERTH_RENDER_WORKERS="1")
    answer = app.test_client().post("/api/v1/packages/hello/render", json={})
    assert answer.status_code == 200, answer.get_json()
    pool = app.extensions["berth"].renderer.__self__
    assert pool.pids() and os.getpid() not in pool.pids()


def test_publishing_a_template_past_the_deadline_is_refused(make_app: Any,
                                                            tmp_path: Path) -> None:
    """The 400-split expression, linted at publish time in a render process."""
    from server.auth import create_token

    app = make_app(BERTH_RENDER_WORKERS="1", BERTH_RENDER_SECONDS="0.01")
    token = create_token(app.extensions["berth"].store, name="m", role="maintainer")[1]
    answer = app.test_client().post(
        "/api/v1/packages", data=_bundle(tmp_path, SLOW),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/gzip"})
    body = answer.get_json()
    assert answer.status_code == 422 and body["error"] == "package_invalid"
    assert {"path": "service.json.j2:1", "message": "the template ran longer than 0.01 s"
            } in body["details"]


def test_rendering_in_process_is_a_setting(make_app: Any) -> None:
    app = make_app(BERTH_RENDER_WORKERS="0")
    assert app.extensions["berth"].renderer is None
    assert app.test_client().post("/api/v1/packages/hello/render", json={}).status_code == 200
