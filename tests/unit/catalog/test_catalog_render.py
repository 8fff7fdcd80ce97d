"""Rendering: the universe renders with its defaults; hostile templates fail fast."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from catalog import (
    Package,
    PackageInvalid,
    RenderError,
    SpecInvalid,
    SpecRefused,
    load_repository_dir,
    render_service,
)
from catalog.generated_secrets import resolve_generated
from catalog.lint import placeholders
from catalog.render import render_template
from catalog.sandbox import Limits

_UNIVERSE = Path(__file__).resolve().parents[3] / "universe"
_REPO, _ = load_repository_dir(_UNIVERSE, name="universe", priority=0, kind="builtin")


@pytest.mark.parametrize("package", _REPO.packages, ids=lambda p: f"{p.name}@{p.version}")
def test_every_universe_package_renders_with_its_defaults(package: Package) -> None:
    required = placeholders(package.config_schema)  # passwords the admin must give
    options, _made = resolve_generated(package, required)  # generated ones made, as at install
    spec = render_service(package, options, service_name="svc",
                          instances=2, constraints=[["hostname", "UNIQUE"]])
    assert spec["image"] and spec["instances"] == 2
    assert ["hostname", "UNIQUE"] in spec["constraints"]
    assert spec["privileged"] is False and spec["mem"] > 0 and spec["cpus"] > 0


def _package(template: str, **kw: object) -> Package:
    return Package("demo", "1.0.0", template=template,
                   resource={"assets": {"container": {"docker": {"app": "ex/demo:1.0"}}}},
                   **kw)  # type: ignore[arg-type]


def test_the_context_holds_options_resource_package_and_service() -> None:
    template = ('{"image": {{ resource.assets.container.docker.app | tojson }}, '
                '"env": {"N": {{ service | tojson }}, "M": {{ service.name | tojson }}, '
                '"P": {{ (package.name ~ "@" ~ package.version) | tojson }}, '
                '"O": {{ options.greeting | tojson }}}}')
    spec = render_service(_package(template), {"greeting": "hi"}, service_name="web")
    assert spec["env"] == {"N": "web", "M": "web", "P": "demo@1.0.0", "O": "hi"}
    assert spec["image"] == "ex/demo:1.0"


def test_values_with_quotes_cannot_break_out_of_json() -> None:
    template = '{"image": "ex/demo:1.0", "env": {"A": {{ options.text | tojson }}}}'
    hostile = '", "privileged": true, "x": "'
    spec = render_service(_package(template), {"text": hostile}, service_name="web")
    assert spec["env"]["A"] == hostile and spec["privileged"] is False


@pytest.mark.parametrize("template", [
    "{{ 'a' * 10**9 }}",
    "{{ 2 ** 100000000 }}",
    "{{ range(10**9) | list }}",
    "{% set l = range(10000) | list %}{% for a in l %}{% for b in l %}{% endfor %}{% endfor %}",
    "{% set ns = namespace(s='a') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
    "{% endfor %}",
    "{% set ns = namespace(s=['a']) %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}"
    "{% endfor %}",
    "{{ ('a' * 100000) | replace('a', 'b' * 100000) }}",
    "{% set big = 'x' * 900000 %}{{ [big] * 1000 }}",
    "{% set big = 'x' * 900000 %}{% set l = [big, big] %}{{ (l + l + l) | join(',') }}",
    "{{ '{0:>999999999}'.format(1) }}",
    "{{ '%0999999999d' % 1 }}",
    "{{ 'x'.ljust(10**9) }}",
    "{{ [1] | batch(10**9) | list }}",
    "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    "{% set ns = namespace(l=[]) %}{% for i in range(10000) %}"
    "{% set ns.l = ns.l + ['y' * 5000] %}{% endfor %}",
    "{{ ''.__class__.__mro__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ {'a': 1}.update({'b': 2}) }}",
    "{% include 'other' %}",
])
def test_hostile_templates_fail_fast_with_a_render_error(template: str) -> None:
    started = time.monotonic()
    with pytest.raises(RenderError) as info:
        render_template(template, {"options": {}})
    assert time.monotonic() - started < 10
    assert info.value.details[0]["path"].startswith("service.json.j2")


def test_the_deadline_stops_a_slow_template() -> None:
    slow = "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}"
    with pytest.raises(RenderError) as info:
        render_template(slow, {}, limits=Limits(seconds=0.05, max_steps=10**12))
    assert "longer than 0.05 s" in info.value.message


def test_output_is_capped() -> None:
    template = "{% for i in range(2000) %}{{ 'x' * 1000 }}{% endfor %}"
    with pytest.raises(RenderError) as info:
        render_template(template, {})
    assert "output is larger" in info.value.message


def test_errors_name_the_template_line() -> None:
    with pytest.raises(RenderError) as info:
        render_template("line one\n{{ nope }}\n", {})
    assert info.value.details[0]["path"] == "service.json.j2:2"


def test_a_tracer_already_installed_is_restored() -> None:
    import sys

    def tracer(frame: object, event: str, arg: object) -> None:
        return None

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        render_template("{{ 1 }}", {})
        assert sys.gettrace() is tracer
    finally:
        sys.settrace(previous)


def test_spec_faults_and_refusals_carry_the_package() -> None:
    with pytest.raises(SpecInvalid) as info:
        render_service(_package('{"image": "x:1", "mem": "lots"}'), {}, service_name="w")
    assert info.value.package == "demo" and info.value.details[0]["path"] == "spec/mem"
    refused = ('{"image": "x:1", "volumes": [{"containerPath": "/s", '
               '"hostPath": "/var/run/docker.sock"}]}')
    with pytest.raises(SpecRefused):
        render_service(_package(refused), {}, service_name="w")


def test_the_allowed_host_paths_can_be_widened() -> None:
    template = '{"image": "x:1", "volumes": [{"containerPath": "/d", "hostPath": "/data/x"}]}'
    with pytest.raises(SpecRefused):
        render_service(_package(template), {}, service_name="w")
    spec = render_service(_package(template), {}, service_name="w",
                          allowed_host_paths=("/data",))
    assert spec["volumes"][0]["hostPath"] == "/data/x"


def test_unsupported_packages_are_refused_with_their_reasons() -> None:
    package = _package('{"image": "x:1"}', unsupported=("needs Mesos frameworks",))
    with pytest.raises(PackageInvalid) as info:
        render_service(package, {}, service_name="w")
    assert info.value.details == [{"path": "package", "message": "needs Mesos frameworks"}]


def test_a_template_must_render_an_object() -> None:
    with pytest.raises(RenderError, match="JSON object"):
        render_service(_package("[1, 2]"), {}, service_name="w")


def test_everyday_template_features_still_work() -> None:
    template = (
        "{% macro kv(k, v) %}{{ k }}={{ v }}{% endmacro %}"
        "{% set ns = namespace(n=0) %}{% set c = cycler('a', 'b') %}"
        "{% for item in options.things | sort(attribute='name') %}"
        "{% set ns.n = ns.n + item.size %}{{ loop.cycle('x', 'y') }}{{ c.next() }}"
        "{% endfor %}|{{ ns.n }}|{{ options.things | map(attribute='name') | join(',') }}"
        "|{{ options.missing | default('d') }}|{{ kv('a', 1) }}|{{ 'A b'.lower().split() }}"
        "|{{ options.things | selectattr('size', 'gt', 1) | list | length }}"
        "|{{ ('x' ~ 1) | upper }}|{{ '5' | int * 2 }}|{{ {'k': [1, 2]} | tojson }}"
        "|{% for k, v in {'b': 2, 'a': 1} | dictsort %}{{ k }}{{ v }}{% endfor %}")
    items = [{"name": "q", "size": 1}, {"name": "p", "size": 2}]
    assert render_template(template, {"options": {"things": items}}) == (
        "xayb|3|q,p|d|a=1|['a', 'b']|1|X1|10|{\"k\": [1, 2]}|a1b2")
