"""The install form generated from a config schema, and the posted form read back."""

from __future__ import annotations

from catalog.options import deep_merge
from server.storefront import form_builder, form_parser

SCHEMA = {
    "type": "object",
    "required": ["name", "mode"],
    "properties": {
        "name": {
            "type": "string",
            "title": "Site name",
            "description": "Shown in the title.",
            "default": "demo",
        },
        "mode": {"type": "string", "enum": ["fast", "safe"], "default": "safe"},
        "level": {"enum": [1, 2, 3]},
        "debug": {"type": "boolean", "default": True},
        "dbPassword": {"type": "string", "x-secret": True, "default": "changeme"},
        "hosts": {"type": "array", "items": {"type": "string"}, "default": ["a", "b"]},
        "ports": {"type": "array", "items": {"type": "integer"}},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "web": {
            "type": "object",
            "title": "Web server",
            "required": ["port"],
            "properties": {
                "port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 8080},
                "ratio": {"type": "number", "minimum": 0, "maximum": 1, "multipleOf": 0.05},
                "tls": {"type": "object", "properties": {"enabled": {"type": "boolean"}}},
            },
        },
    },
}


def by_path(fields: list[form_builder.FormField]) -> dict[tuple[str, ...], form_builder.FormField]:
    return {f.path: f for f in form_builder.iter_fields(fields)}


def test_nested_objects_become_groups_with_legends() -> None:
    fields = by_path(form_builder.build_form(SCHEMA))
    web = fields[("web",)]
    assert web.kind == "group" and web.label == "Web server"
    assert [c.path[-1] for c in web.children] == ["port", "ratio", "tls"]
    assert fields[("web", "tls")].kind == "group"
    assert fields[("web", "tls", "enabled")].kind == "checkbox"


def test_enums_become_selects_with_the_default_selected() -> None:
    fields = by_path(form_builder.build_form(SCHEMA))
    mode = fields[("mode",)]
    assert mode.kind == "select" and mode.value == "safe" and mode.required
    assert [c[0] for c in mode.choices] == ["fast", "safe"]
    level = fields[("level",)]
    assert [c[0] for c in level.choices] == ["", "1", "2", "3"]  # optional: "not set" first


def test_numbers_carry_bounds_and_steps() -> None:
    fields = by_path(form_builder.build_form(SCHEMA))
    port = fields[("web", "port")]
    assert (port.kind, port.minimum, port.maximum, port.step, port.value) == (
        "number",
        1,
        65535,
        "1",
        "8080",
    )
    assert port.required
    ratio = fields[("web", "ratio")]
    assert (ratio.minimum, ratio.maximum, ratio.step, ratio.value) == (0, 1, "0.05", "")


def test_secrets_are_password_inputs_never_filled_back_unless_asked() -> None:
    shown = by_path(form_builder.build_form(SCHEMA, {"dbPassword": "s3cret"}))[("dbPassword",)]
    assert shown.kind == "password" and shown.value == "" and shown.placeholder == "unchanged"
    kept = by_path(form_builder.build_form(SCHEMA, {"dbPassword": "s3cret"}, keep_secrets=True))
    assert kept[("dbPassword",)].value == "s3cret"


def test_labels_help_required_and_defaults() -> None:
    fields = by_path(form_builder.build_form(SCHEMA))
    name = fields[("name",)]
    assert (name.label, name.help, name.required, name.value) == (
        "Site name",
        "Shown in the title.",
        True,
        "demo",
    )
    assert name.described_by == name.help_id
    assert fields[("dbPassword",)].label == "Db Password"  # from the key when no title
    assert fields[("debug",)].value is True
    assert fields[("hosts",)].kind == "lines" and fields[("hosts",)].value == "a\nb"
    assert fields[("labels",)].kind == "json"


def test_ids_are_unique_and_names_round_trip() -> None:
    fields = list(form_builder.iter_fields(form_builder.build_form(SCHEMA)))
    assert len({f.id for f in fields}) == len(fields)
    assert by_path(fields)[("web", "port")].name == "opt:web/port"
    assert form_builder.field_name(["a/b", "c~d"]) == "opt:a~1b/c~0d"


def test_posted_form_is_read_back_with_types() -> None:
    posted = {
        "opt:name": "shop",
        "opt:mode": "fast",
        "opt:level": "2",
        "opt:debug": "true",
        "opt:dbPassword": "pw",
        "opt:hosts": "x\n\n y \n",
        "opt:ports": "80\n443",
        "opt:labels": '{"team": "web"}',
        "opt:web/port": "9000",
        "opt:web/ratio": "0.5",
        "opt:web/tls/enabled": "true",
    }
    options, problems = form_parser.parse_form(SCHEMA, posted)
    assert problems == []
    assert options == {
        "name": "shop",
        "mode": "fast",
        "level": 2,
        "debug": True,
        "dbPassword": "pw",
        "hosts": ["x", "y"],
        "ports": [80, 443],
        "labels": {"team": "web"},
        "web": {"port": 9000, "ratio": 0.5, "tls": {"enabled": True}},
    }


def test_empty_inputs_are_left_out_and_unchecked_boxes_are_false() -> None:
    options, problems = form_parser.parse_form(SCHEMA, {"opt:name": "", "opt:web/port": " "})
    assert problems == []
    assert "name" not in options and "port" not in options.get("web", {})
    assert options["debug"] is False and options["web"]["tls"] == {"enabled": False}


def test_values_that_do_not_parse_are_problems_at_their_path() -> None:
    options, problems = form_parser.parse_form(
        SCHEMA,
        {
            "opt:web/port": "80.5",
            "opt:web/ratio": "lots",
            "opt:labels": "{bad",
            "opt:mode": "turbo",
            "opt:ports": "1\ntwo",
        },
    )
    paths = {p["path"]: p["message"] for p in problems}
    assert set(paths) == {
        "options/web/port",
        "options/web/ratio",
        "options/labels",
        "options/mode",
        "options/ports",
    }
    assert "whole number" in paths["options/web/port"]
    assert "JSON" in paths["options/labels"]


def test_server_problems_are_attached_beside_their_fields() -> None:
    fields = form_builder.build_form(SCHEMA)
    loose = form_parser.attach_errors(
        fields,
        [
            {"path": "options/web/port", "message": "70000 is greater than the maximum of 65535"},
            {"path": "options/web", "message": "'port' is a required property"},
            {"path": "options.name", "message": "too short"},
            {"path": "options/nope/deeper", "message": "unknown"},
            {"path": "spec/env", "message": "elsewhere"},
        ],
    )
    found = by_path(fields)
    assert found[("web", "port")].errors == [
        "70000 is greater than the maximum of 65535",
        "'port' is a required property",
    ]
    assert found[("name",)].errors == ["too short"]
    assert found[("web", "port")].described_by.endswith(found[("web", "port")].error_id)
    assert loose == ["options/nope/deeper: unknown", "spec/env: elsewhere"]


def test_draft04_exclusive_flags_and_defaults_helper() -> None:
    schema = {
        "properties": {
            "n": {"type": "number", "minimum": 1, "exclusiveMinimum": True},
            "o": {"type": "object", "properties": {"x": {"default": 1}}},
        }
    }
    field = by_path(form_builder.build_form(schema))[("n",)]
    assert field.minimum == 1
    assert form_parser.defaults(schema) == {"o": {"x": 1}}
    assert deep_merge({"o": {"x": 1, "y": 2}}, {"o": {"x": 3}}) == {"o": {"x": 3, "y": 2}}


def test_local_refs_are_followed_and_recursion_stops() -> None:
    schema = {
        "$defs": {
            "port": {"type": "integer", "minimum": 1, "default": 80},
            "node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/node"}}},
        },
        "properties": {
            "http": {"$ref": "#/$defs/port", "title": "HTTP port"},
            "tree": {"$ref": "#/$defs/node"},
        },
    }
    fields = by_path(form_builder.build_form(schema))
    assert (fields[("http",)].kind, fields[("http",)].minimum, fields[("http",)].label) == (
        "number",
        1,
        "HTTP port",
    )
    assert max(len(p) for p in fields) <= 10
    assert form_parser.defaults(schema) == {"http": 80}
