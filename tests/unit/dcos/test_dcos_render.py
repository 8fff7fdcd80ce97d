"""Mustache rendering as Cosmos did it (catalog.dcos.render)."""

from __future__ import annotations

import json

import pytest

from catalog.dcos.render import render_marathon
from catalog.errors import RenderError


def render(template: str, options: dict, resource: dict | None = None) -> dict:
    return render_marathon(template, options, resource)


def test_html_escaping_is_off() -> None:
    app = render('{"cmd": "{{c}} && {{{c}}}"}', {"c": "a<b>&'c"})
    assert app["cmd"] == "a<b>&'c && a<b>&'c"


def test_strings_are_json_escaped_so_quotes_stay_inside_the_literal() -> None:
    value = '[["hostname", "UNIQUE"]]'
    app = render('{"env": {"P": "{{{p}}}", "Q": "{{p}}"}}', {"p": value})
    assert app["env"] == {"P": value, "Q": value}


def test_backslashes_and_newlines_survive() -> None:
    value = "line1\nline2 \\ end"
    assert render('{"cmd": "{{v}}"}', {"v": value})["cmd"] == value


def test_whole_numbers_print_as_ints_and_others_as_doubles() -> None:
    app = render('{"mem": {{m}}, "cpus": {{c}}, "s": "{{m}}"}', {"m": 1024.0, "c": 0.5})
    assert app == {"mem": 1024, "cpus": 0.5, "s": "1024"}
    assert isinstance(app["mem"], int)


def test_booleans_print_as_json_and_null_as_nothing() -> None:
    app = render('{"a": {{t}}, "b": "{{f}}", "c": "{{n}}"}', {"t": True, "f": False, "n": None})
    assert app == {"a": True, "b": "false", "c": ""}


def test_sections_follow_mustache_java_truthiness() -> None:
    template = ('{"x": "{{#zero}}zero{{/zero}}{{#f}}f{{/f}}{{#empty}}e{{/empty}}'
                '{{^f}}not-f{{/f}}{{#s}}s{{/s}}"}')
    app = render(template, {"zero": 0, "f": False, "empty": "", "s": "yes"})
    assert app["x"] == "zeronot-fs"


def test_dotted_names_with_dashes_reach_the_resource() -> None:
    resource = {"assets": {"container": {"docker": {"nginx-docker": "bitnami/nginx:1"}}}}
    app = render('{"image": "{{resource.assets.container.docker.nginx-docker}}"}', {}, resource)
    assert app["image"] == "bitnami/nginx:1"


def test_resource_overrides_an_option_of_that_name() -> None:
    app = render('{"r": "{{resource.x}}"}', {"resource": {"x": "option"}}, {"x": "resource"})
    assert app["r"] == "resource"


def test_partials_are_never_read_from_disk() -> None:
    assert render('{"a": "{{> /etc/passwd}}"}', {}) == {"a": ""}


def test_output_that_is_not_json_names_line_and_column() -> None:
    with pytest.raises(RenderError) as info:
        render('{\n  "a": {{x}}\n}', {"x": "not json"})
    assert info.value.details[0]["path"].startswith("marathon.json.mustache:2:")


def test_output_must_be_an_object() -> None:
    with pytest.raises(RenderError, match="must be a JSON object"):
        render("[1, 2]", {})


def test_lists_iterate_with_the_item_in_context() -> None:
    app = render('{"uris": [{{#u}}"{{.}}",{{/u}}"last"]}', {"u": ["a", "b"]})
    assert app["uris"] == ["a", "b", "last"]


def test_a_huge_template_is_refused() -> None:
    with pytest.raises(RenderError, match="larger than"):
        render('{"a": "' + "x" * 1_100_000 + '"}', {})


def test_rendering_is_plain_json_roundtrip() -> None:
    options = {"o": {"name": "svc", "n": 3}}
    app = render('{"id": "/{{o.name}}", "instances": {{o.n}}}', options)
    assert json.dumps(app) == '{"id": "/svc", "instances": 3}'


def test_templates_written_for_raw_strings_still_render() -> None:
    # older Cosmos did not JSON-encode strings; such a template only works raw
    app = render('{"roles": [{{{roles}}}]}', {"roles": '"*", "slave_public"'})
    assert app["roles"] == ["*", "slave_public"]
