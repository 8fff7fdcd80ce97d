"""Loading and linting package folders: every problem at once, with file and path."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from catalog_testkit import GOOD_CONFIG

from catalog import (
    PackageInvalid,
    RepositoryError,
    lint_package_dir,
    lint_paths,
    load_package_dir,
    load_repository_dir,
)

Make = Callable[..., Path]


def _paths(problems: list[dict[str, str]]) -> list[str]:
    return [p["path"] for p in problems]


def _has(problems: list[dict[str, str]], path_end: str, words: str = "") -> bool:
    return any(p["path"].endswith(path_end) and words in p["message"] for p in problems)


def test_the_universe_lints_clean(universe_dir: Path) -> None:
    assert lint_paths([universe_dir]) == []


def test_the_universe_loads_every_version(universe_dir: Path) -> None:
    repo, problems = load_repository_dir(universe_dir, name="universe", priority=0,
                                         kind="builtin")
    assert problems == []
    names = {p.name for p in repo.packages}
    assert "hello" in names and len(repo.packages) >= len(names)
    assert all(p.repository == "universe" and p.semver is not None for p in repo.packages)


def test_a_good_package_loads_with_every_field(make_package: Make) -> None:
    folder = make_package("demo", "1.2.3", extra_meta={"upgradesFrom": "^1.0",
                                                       "featured": True})
    package = load_package_dir(folder, repository="local")
    assert (package.name, package.version, str(package.semver)) == ("demo", "1.2.3", "1.2.3")
    assert package.featured and package.upgrades_from == "^1.0"
    assert package.config_schema == GOOD_CONFIG
    assert package.images == {"app": "example/demo:1.2.3"}
    assert package.readme == "# demo\n" and package.path == folder
    assert package.read_file("icon.svg").startswith(b"<svg")
    assert package.read_file("../package.json") is None
    assert lint_package_dir(folder) == []


def test_several_independent_faults_are_reported_in_one_run(make_package: Make) -> None:
    folder = make_package(
        "demo", "1.0.0",
        meta={"name": "demo", "version": "1.0", "description": 5, "maintainer": "m",
              "tags": ["ok"], "colour": "red"},
        config={"type": "object", "properties": {
            "port": {"type": "integer", "default": "eighty"},
            "name": {"type": "string", "pattern": "^(a+)+\\1$"},
            "remote": {"$ref": "https://example.org/schema.json"},
            "kind": {"type": "strnig"}}},
        resource={"assets": {"container": {"docker": {"app": "nginx"}}}},
        template="{{ options.port | tojson }",
    )
    problems = lint_package_dir(folder)
    shown = str(folder)
    expected = [
        ("package.json#/version", "does not equal its folder name"),
        ("package.json#/version", "not a semantic version"),
        ("package.json#/description", "not of type 'string'"),
        ("package.json", "'colour'"),
        ("config.json#/properties/kind/type", ""),
        ("config.json#/properties/name/pattern", "not a supported regular expression"),
        ("config.json#/properties/remote/$ref", "only references inside this document"),
        ("resource.json#/assets/container/docker/app", "not pinned"),
    ]
    for end, words in expected:
        assert _has(problems, end, words), (end, problems)
    assert all(p["path"].startswith(shown) for p in problems)


def test_lint_adds_defaults_template_and_render_checks(make_package: Make) -> None:
    folder = make_package(config={"type": "object", "properties": {
        "port": {"type": "integer", "minimum": 1, "default": 0}}},
        template='{"image": {{ options.nope | tojson }}}',
        resource={"images": {"icon": "missing.svg"},
                  "assets": {"container": {"docker": {"app": "example/demo:1.0.0"}}}})
    assert load_package_dir(folder).name == "demo"  # serving does not render
    problems = lint_package_dir(folder)
    assert _has(problems, "config.json#/properties/port/default", "fails its own schema")
    assert _has(problems, "resource.json#/images/icon", "not a file in the package")


@pytest.mark.parametrize(("template", "words"), [
    ("{% for x in %}", "template syntax error"),
    ('{"image": {{ options.missing | tojson }}}', "UndefinedError"),
    ('{"image": {{ "".__class__ | string | tojson }}}', "SecurityError"),
    ('{"image": {{ "x" | attr("__class__") }}}', "No filter named 'attr'"),
    ('{"image": {{ "%s" | format(1) }}}', "No filter named 'format'"),
    ('{"image": {{ ("a" * 10**9) | tojson }}}', "exceed"),
    ("{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}",
     "the template ran"),
    ('{"image": "x:1", "cpus": "lots"}', "#/cpus"),
    ('{"image": "x:1", "privileged": true}', "privileged"),
    ("not json", "did not render valid JSON"),
])
def test_template_faults_are_precise_errors(make_package: Make, template: str,
                                            words: str) -> None:
    folder = make_package(template=template)
    started = time.monotonic()
    problems = lint_package_dir(folder)
    assert time.monotonic() - started < 30
    assert any(p["path"].startswith(f"{folder}/service.json.j2") for p in problems), problems
    assert any(words in p["message"] or words in p["path"] for p in problems), problems


def test_malformed_json_names_line_and_column(make_package: Make) -> None:
    folder = make_package(raw={"package.json": '{\n  "name": "demo",\n  oops\n}'})
    with pytest.raises(PackageInvalid) as info:
        load_package_dir(folder)
    assert info.value.details == [{"path": f"{folder}/package.json",
                                  "message": "malformed JSON at line 3, column 3: "
                                             "Expecting property name enclosed in double "
                                             "quotes"}]


def test_missing_files_and_oversized_files_are_problems(make_package: Make) -> None:
    folder = make_package(raw={"README.md": "x" * (300 * 1024)})
    os.remove(folder / "service.json.j2")
    problems = lint_package_dir(folder)
    assert _has(problems, "service.json.j2", "file is missing")
    assert _has(problems, "README.md", "larger than")


def test_symbolic_links_are_not_followed(make_package: Make, tmp_path: Path) -> None:
    folder = make_package()
    (tmp_path / "secret").write_text("{}")
    os.remove(folder / "config.json")
    os.symlink(tmp_path / "secret", folder / "config.json")
    problems = lint_package_dir(folder)
    assert _has(problems, "config.json", "symbolic link")


def test_a_schema_that_is_not_an_object_schema_is_refused(make_package: Make) -> None:
    folder = make_package(config={"type": "array"})
    assert _has(lint_package_dir(folder), "config.json#/type", "type 'object'")


def test_names_must_equal_their_folders(make_package: Make, tmp_path: Path) -> None:
    make_package("demo", "1.0.0", meta={"name": "other", "version": "1.0.0",
                                        "description": "d", "maintainer": "m", "tags": []})
    repo, problems = load_repository_dir(tmp_path, name="t")
    assert repo.packages == ()
    assert _has(problems, "packages/demo/1.0.0/package.json#/name", "package folder name")


def test_a_repository_skips_faulty_versions_and_keeps_good_ones(make_package: Make,
                                                                 tmp_path: Path) -> None:
    make_package("good", "1.0.0")
    make_package("good", "1.1.0")
    make_package("bad", "1.0.0", raw={"resource.json": "[]"})
    repo, problems = load_repository_dir(tmp_path, name="t", priority=5)
    assert sorted(p.version for p in repo.packages) == ["1.0.0", "1.1.0"]
    assert {p.name for p in repo.packages} == {"good"}
    assert _has(problems, "packages/bad/1.0.0/resource.json", "not of type 'object'")
    assert repo.priority == 5 and repo.problems == tuple(problems)


def test_lint_paths_accepts_version_package_and_repository_folders(make_package: Make,
                                                                   tmp_path: Path) -> None:
    folder = make_package("demo", "1.0.0", raw={"config.json": "{"})
    for path in (folder, folder.parent, tmp_path):
        problems = lint_paths([path])
        assert _paths(problems) == [f"{folder}/config.json",
                                    f"{folder}/service.json.j2"], path
        assert problems[1]["message"].startswith("not rendered: config.json"), problems
    assert lint_paths([tmp_path / "nowhere"])[0]["message"] == "no such folder"
    (tmp_path / "empty").mkdir()
    assert "not a package" in lint_paths([tmp_path / "empty"])[0]["message"]


def test_a_missing_repository_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(RepositoryError):
        load_repository_dir(tmp_path / "nope", name="x")


def test_unreadable_json_constants_and_deep_nesting_are_problems(make_package: Make) -> None:
    folder = make_package(raw={"config.json": '{"type": "object", "default": NaN}',
                               "resource.json": "[" * 100000 + "]" * 100000})
    problems = lint_package_dir(folder)
    assert _has(problems, "config.json", "NaN is not valid JSON")
    assert _has(problems, "resource.json", "malformed JSON")


def test_identical_option_schemas_are_shared_between_versions(make_package: Make,
                                                              tmp_path: Path) -> None:
    make_package("demo", "1.0.0")
    make_package("demo", "1.1.0")
    repo, _ = load_repository_dir(tmp_path, name="t")
    first, second = repo.packages
    assert first.config_schema is second.config_schema


def test_secret_marks_must_be_booleans(make_package: Make) -> None:
    config = json.loads(json.dumps(GOOD_CONFIG))
    config["properties"]["password"]["x-secret"] = "yes"
    folder = make_package(config=config)
    assert _has(lint_package_dir(folder), "config.json#/properties/password/x-secret",
                "true or false")


def test_a_secret_option_may_not_ship_a_value(make_package: Make) -> None:
    """Package schemas are public, so a secret's default would be readable by anyone."""
    config = json.loads(json.dumps(GOOD_CONFIG))
    assert config["properties"]["password"]["default"] == ""  # empty is fine
    assert not lint_package_dir(make_package(config=config))
    config["properties"]["password"]["default"] = "hunter2"
    folder = make_package("leaky", config=config)
    assert load_package_dir(folder).name == "leaky"  # serving keeps what is published
    assert _has(lint_package_dir(folder), "config.json#/properties/password/default",
                "must not ship a value")


def test_the_example_of_the_maintainer_guide_lints_clean(tmp_path: Path) -> None:
    import re

    guide = (Path(__file__).resolve().parents[3] / "docs" / "packages.md").read_text()
    example = guide[guide.index("## A small example"):]
    blocks = re.findall(r"```(?:json|jinja)\n(.*?)```", example, re.S)
    folder = tmp_path / "packages" / "whoami" / "1.0.0"
    folder.mkdir(parents=True)
    for name, text in zip(["package.json", "config.json", "resource.json", "service.json.j2"],
                          blocks, strict=True):
        (folder / name).write_text(text)
    (folder / "icon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    assert lint_paths([tmp_path]) == []


def test_without_the_accelerator_the_verdicts_are_the_same(
        monkeypatch: pytest.MonkeyPatch, make_package: Make, universe_dir: Path) -> None:
    from catalog.schemas import validation

    faulty = make_package(meta={"name": "demo", "version": "1.0.0", "tags": "x"},
                          config={"type": "object", "properties": {"a": {"type": "nope"}}})
    with_rs = lint_package_dir(faulty)
    monkeypatch.setattr(validation, "_rs", None)
    monkeypatch.setattr(validation, "_VALIDATORS",
                        {d: validation._IdentityCache(16) for d in validation._CLASSES})
    validation.builtin.cache_clear()
    try:
        assert lint_paths([universe_dir]) == []
        assert lint_package_dir(faulty) == with_rs
        assert _has(with_rs, "package.json#/tags", "not of type 'array'")
        assert _has(with_rs, "config.json#/properties/a/type")
    finally:
        validation.builtin.cache_clear()


def test_large_repositories_are_read_ahead_in_order(tmp_path: Path) -> None:
    from catalog_testkit import write_package

    names = [f"p{i:03d}" for i in range(300)]
    for name in names:
        write_package(tmp_path, name, "1.0.0")
    repo, problems = load_repository_dir(tmp_path, name="t")
    assert problems == [] and [p.name for p in repo.packages] == names


def test_a_read_ahead_failure_reaches_the_loading_thread(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from catalog import reading

    def boom(*args: object) -> None:
        raise MemoryError("no room")

    monkeypatch.setattr(reading, "read_folder", boom)
    with pytest.raises(MemoryError):
        list(reading.read_ahead([f"/nowhere/{i}" for i in range(300)]))


def _names(problems: list[dict[str, str]], file: str, words: str) -> bool:
    """A problem in ``file`` (any line or JSON path of it) whose message has ``words``."""
    return any(f"/{file}" in p["path"] and words in p["message"] for p in problems)


def test_three_independent_faults_in_three_files_are_all_reported_at_once(
        make_package: Make) -> None:
    """A missing description, a bad default the template does not use and an
    undefined name in the template: one lint run names all three."""
    folder = make_package(
        meta={"name": "demo", "version": "1.0.0", "maintainer": "m", "tags": ["demo"]},
        config={"type": "object", "properties": {
            "port": {"type": "integer", "minimum": 0, "maximum": 65535, "default": 0},
            "workers": {"type": "integer", "minimum": 1, "default": 0}}},
        template='{"image": {{ resource.assets.container.docker.app | tojson }}, '
                 '"env": {"X": {{ options.nope | tojson }}}}')
    problems = lint_package_dir(folder)
    assert _has(problems, "package.json", "'description' is a required property"), problems
    assert _has(problems, "config.json#/properties/workers/default",
                "fails its own schema"), problems
    assert _names(problems, "service.json.j2", "UndefinedError"), problems
    assert _names(problems, "service.json.j2", "'nope'"), problems


def test_a_required_option_without_default_is_rendered_with_a_placeholder(
        make_package: Make) -> None:
    """Lint cannot know the admin's value: a required option without a default gets
    a placeholder, so the template is still rendered and checked."""
    config = {"type": "object", "required": ["password"], "properties": {
        "password": {"type": "string", "minLength": 8, "x-secret": True}}}
    clean = make_package(config=config, template=(
        '{"image": {{ resource.assets.container.docker.app | tojson }}, '
        '"env": {"PASSWORD": {{ options.password | tojson }}}}'))
    assert lint_package_dir(clean) == []
    faulty = make_package("other", config=config, template=(
        '{"image": {{ resource.assets.container.docker.app | tojson }}, '
        '"env": {"PASSWORD": {{ options.pasword | tojson }}}}'))
    assert _names(lint_package_dir(faulty), "service.json.j2", "'pasword'")


def test_lint_says_why_it_did_not_render(make_package: Make) -> None:
    """When the template cannot be rendered at all, lint says so and why."""
    folder = make_package(template="{% for x in %}")
    problems = lint_package_dir(folder)
    assert _names(problems, "service.json.j2", "template syntax error"), problems
    assert _names(problems, "service.json.j2", "not rendered"), problems
    broken_schema = make_package("other", config={"type": "object", "properties": {
        "kind": {"type": "strnig"}}})
    problems = lint_package_dir(broken_schema)
    assert _names(problems, "service.json.j2", "not rendered: config.json"), problems


def test_without_a_package_json_the_other_files_are_still_linted(make_package: Make) -> None:
    folder = make_package(template='{"image": {{ options.nope | tojson }}}',
                          resource={"assets": {"container": {"docker": {"app": "x:latest"}}}})
    (folder / "package.json").unlink()
    problems = lint_package_dir(folder)
    assert _has(problems, "package.json", "file is missing"), problems
    assert _has(problems, "resource.json#/assets/container/docker/app", "not pinned")
    assert _names(problems, "service.json.j2", "'nope'"), problems
    (folder / "service.json.j2").unlink()
    problems = lint_package_dir(folder)
    assert _names(problems, "service.json.j2", "not rendered: service.json.j2"), problems
