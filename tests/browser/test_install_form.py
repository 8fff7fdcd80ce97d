"""The install form's JSON view in a real browser: switch views, edit, switch back, review.

Served by the real app factory on a loopback port (``local_store``); no test bed needed.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_json_view_and_form_stay_in_step(browser: Any, local_store: Any) -> None:
    base, token = local_store
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(base + "/login")
        page.get_by_label("API token").fill(token)
        page.get_by_role("button", name="Log in").click()
        page.goto(base + "/packages/hello/install?version=1.0.0")

        page.get_by_label("Message").fill("typed in the form")
        page.get_by_role("tab", name="JSON").click()
        editor = page.get_by_label("Options as JSON")
        expect(editor).to_be_visible()
        expect(page.get_by_label("Message")).to_be_hidden()
        options = json.loads(editor.input_value())
        assert options["message"] == "typed in the form"
        options["message"] = "edited as JSON"
        options["color"] = "green"
        editor.fill(json.dumps(options))
        page.get_by_role("tab", name="Form").click()
        expect(page.get_by_label("Message")).to_have_value("edited as JSON")
        expect(page.get_by_label("Colour")).to_have_value("green")

        page.get_by_role("tab", name="JSON").click()
        editor.fill("{broken")
        page.get_by_role("tab", name="Form").click()
        expect(page.get_by_role("alert")).to_contain_text("not valid")
        editor.fill(json.dumps({"message": "reviewed from JSON"}))
        page.get_by_role("button", name="Review").click()
        expect(page.get_by_role("heading", name="Review the install")).to_be_visible()
        expect(page.locator("pre.spec").first).to_contain_text("reviewed from JSON")
        assert errors == []
    finally:
        context.close()
