"""Bad input never crashes the conversion: any JSON in any Marathon field gives either a
spec or reasons (property-based)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.dcos.convert import analyze_app
from catalog.dcos.fields import HANDLED

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 70000) | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=3),
    max_leaves=8)
FIELDS = sorted(HANDLED | {"requirePorts", "id", "disk"})
CONTAINER_KEYS = ["type", "docker", "volumes", "portMappings"]
DOCKER_KEYS = ["image", "network", "portMappings", "parameters", "privileged", "pullConfig"]


@st.composite
def marathon_apps(draw: st.DrawFn) -> dict:
    app = draw(st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=6))
    if draw(st.booleans()):
        docker = draw(st.dictionaries(st.sampled_from(DOCKER_KEYS), JSON, max_size=4))
        container = draw(st.dictionaries(st.sampled_from(CONTAINER_KEYS), JSON, max_size=3))
        app["container"] = {**container, "docker": docker}
    return app


@settings(max_examples=300, deadline=None)
@given(marathon_apps())
def test_any_app_converts_or_gives_reasons(app: dict) -> None:
    conv = analyze_app(app)
    assert conv.reasons or conv.spec.get("image")
    for reason in conv.reasons:
        assert reason["path"].startswith("marathon.json#/") and reason["message"]


ENTRY_KEYS = ["packagingVersion", "name", "version", "releaseVersion", "tags", "licenses",
              "description", "maintainer", "selected", "upgradesFrom", "config", "resource",
              "marathon", "command", "preInstallNotes", "website", "scm"]


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(ENTRY_KEYS), JSON, max_size=10))
def test_any_index_entry_loads_or_is_a_problem(entry: dict) -> None:
    from catalog.dcos.loader import parse_repo_json

    repo, problems = parse_repo_json({"packages": [entry]}, name="fuzz")
    assert len(repo.packages) == 1 or problems
    for package in repo.packages:
        assert isinstance(package.tags, tuple) and isinstance(package.unsupported, tuple)
