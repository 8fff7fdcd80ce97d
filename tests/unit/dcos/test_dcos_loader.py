"""Reading the Universe layout and the built index (catalog.dcos.loader)."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest

from catalog.dcos.loader import (
    is_universe_dir,
    load_universe_dir,
    packages_from_universe_entries,
    parse_repo_json,
)

from .conftest import HELLO_REPO


def write_version(root: Path, name: str, revision: str, version: str, **files: object) -> Path:
    folder = root / "packages" / name[0].upper() / name / revision
    folder.mkdir(parents=True)
    package = {"packagingVersion": "3.0", "name": name, "version": version,
               "maintainer": "m", "description": "d", "tags": ["t"]}
    (folder / "package.json").write_text(json.dumps(package))
    for file, content in files.items():
        text = content if isinstance(content, str) else json.dumps(content)
        (folder / file.replace("_", ".")).write_text(text)
    return folder


def test_the_test_repository_loads_cleanly() -> None:
    repo, problems = load_universe_dir(HELLO_REPO, name="hello", priority=7)
    assert problems == []
    assert (repo.name, repo.priority, repo.kind) == ("hello", 7, "dcos")
    [package] = repo.packages
    assert (package.name, package.version, package.order) == ("dcos-hello", "1.0.0-dcos", 0)
    assert package.format == "dcos" and package.upstream_version == "1.0.0-dcos"
    assert str(package.semver) == "1.0.0-dcos"
    assert package.icon == "https://example.org/dcos-hello-medium.png"
    assert package.unsupported == ()
    assert is_universe_dir(HELLO_REPO)


def test_versions_order_by_revision_not_by_upstream_version(tmp_path: Path) -> None:
    write_version(tmp_path, "app", "0", "10.0-rc1")
    write_version(tmp_path, "app", "1", "9.1")
    write_version(tmp_path, "app", "2", "2.0.0-1.2")
    repo, _ = load_universe_dir(tmp_path, name="t")
    newest_first = sorted(repo.packages, key=lambda p: p.sort_key, reverse=True)
    assert [p.version for p in newest_first] == ["2.0.0-1.2", "9.1", "10.0-rc1"]
    assert [p.semver is not None for p in newest_first] == [True, False, False]


def test_a_broken_version_is_a_problem_and_the_rest_loads(tmp_path: Path) -> None:
    write_version(tmp_path, "good", "0", "1.0.0")
    bad = write_version(tmp_path, "bad", "0", "1.0.0")
    (bad / "package.json").write_text("{not json")
    worse = write_version(tmp_path, "worse", "0", "1.0.0", config_json="[1,")
    (worse / "marathon.json.mustache").write_text("{}")
    write_version(tmp_path, "nover", "0", "")
    repo, problems = load_universe_dir(tmp_path, name="t")
    assert sorted(p.name for p in repo.packages) == ["good", "worse"]
    paths = " ".join(p["path"] for p in problems)
    assert "bad/0/package.json" in paths and "worse/0/config.json" in paths
    assert "nover/0/package.json#/version" in paths
    worse_pkg = next(p for p in repo.packages if p.name == "worse")
    assert any("config.json" in r for r in worse_pkg.unsupported)


def test_the_newest_revision_of_a_repeated_version_wins(tmp_path: Path) -> None:
    write_version(tmp_path, "app", "3", "1.0")
    write_version(tmp_path, "app", "4", "1.0")
    repo, problems = load_universe_dir(tmp_path, name="t")
    assert [p.order for p in repo.packages] == [4]
    assert "superseded by revision 4" in problems[0]["message"]


def test_a_misfiled_package_and_missing_folder_are_problems(tmp_path: Path) -> None:
    folder = write_version(tmp_path, "app", "0", "1.0")
    shutil.move(str(folder.parent.parent), str(tmp_path / "packages" / "Z"))
    _, problems = load_universe_dir(tmp_path, name="t")
    assert "filed under 'Z'" in problems[0]["message"]
    _, problems = load_universe_dir(tmp_path / "nothing", name="t")
    assert problems[0]["message"] == "no packages/ folder"


def index_entry(folder: Path) -> dict:
    """The repo-up-to-*.json entry of a package folder, as Universe's build made it."""
    entry = json.loads((folder / "package.json").read_text())
    entry["releaseVersion"] = int(folder.name)
    entry["config"] = json.loads((folder / "config.json").read_text())
    entry["resource"] = json.loads((folder / "resource.json").read_text())
    template = (folder / "marathon.json.mustache").read_bytes()
    entry["marathon"] = {"v2AppMustacheTemplate": base64.b64encode(template).decode()}
    return entry


def test_the_built_index_gives_the_same_package_as_the_folder() -> None:
    folder = HELLO_REPO / "packages" / "D" / "dcos-hello" / "0"
    repo, problems = parse_repo_json({"packages": [index_entry(folder)]}, name="idx")
    assert problems == []
    from_dir = load_universe_dir(HELLO_REPO, name="idx")[0].packages[0]
    [from_index] = repo.packages
    for field in ("name", "version", "order", "template", "config_schema", "resource",
                  "unsupported", "tags", "description"):
        assert getattr(from_index, field) == getattr(from_dir, field), field
    assert from_index.path is None


def test_index_problems_are_reported_not_raised() -> None:
    entries = [{"name": "x"}, "junk", {"name": "y", "version": "1", "releaseVersion": 0,
                                       "marathon": {"v2AppMustacheTemplate": "@@@"}}]
    repo, problems = parse_repo_json({"packages": entries}, name="idx")
    assert [p.name for p in repo.packages] == ["y"]
    assert repo.packages[0].unsupported  # no usable template
    messages = " ".join(p["message"] for p in problems)
    assert "missing" in messages and "object" in messages and "base64" in messages
    assert parse_repo_json({"nope": 1}, name="idx")[1][0]["message"] == "no packages list"


@pytest.mark.parametrize("shape", ["index", "list", "one"])
def test_remote_documents_of_any_shape(shape: str) -> None:
    entry = index_entry(HELLO_REPO / "packages" / "D" / "dcos-hello" / "0")
    document = {"index": {"packages": [entry]}, "list": [entry], "one": entry}[shape]
    [package] = packages_from_universe_entries(document, repository="remote")
    assert (package.name, package.repository, package.format) == ("dcos-hello", "remote",
                                                                  "dcos")
