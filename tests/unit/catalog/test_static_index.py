"""Static repository indexes: small per-package documents plus a compact listing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from catalog.errors import RepositoryError
from catalog.model import Package
from catalog.static_index import (
    build_index,
    canonical,
    digest_of,
    packages_from_document,
    parse_listing,
    parse_package_document,
    write_index,
)
from catalog.version import parse_version

UNIVERSE = Path(__file__).resolve().parents[3] / "universe"


def _pkg(name: str, version: str, **fields: object) -> Package:
    base = {"description": f"{name} does things", "template": '{"image": "x"}',
            "config_schema": {"type": "object", "properties": {"port": {"default": 80}}},
            "resource": {"images": {"icon": "https://example.org/icon.png"}}}
    return Package(name=name, version=version, semver=parse_version(version),
                   **{**base, **fields})  # type: ignore[arg-type]


def test_listing_names_the_newest_installable_version_and_digests() -> None:
    packages = [_pkg("web", "1.0.0"), _pkg("web", "1.1.0", yanked="broken"),
                _pkg("db", "2.0.0", tags=("sql",))]
    listing, documents = build_index(packages)
    items = {i["name"]: i for i in parse_listing(listing)["packages"]}
    assert items["web"]["version"] == "1.0.0" and items["web"]["versions"] == 2
    assert items["db"]["tags"] == ["sql"]
    assert items["web"]["icon"] == "https://example.org/icon.png"
    for name, data in documents.items():
        assert items[name]["digest"] == digest_of(data)
    assert build_index(reversed(packages)) == (listing, documents)  # same input, same bytes


def test_documents_round_trip_every_field() -> None:
    original = _pkg("web", "1.2.3", yanked="leaks memory", post_install_notes="Hi",
                    readme="# Web", upgrades_from="^1.0", tags=("a", "b"), featured=True)
    _, documents = build_index([original])
    document = parse_package_document(documents["web"], name="web")
    [back] = packages_from_document(document, repository="mirror")
    assert back.repository == "mirror"
    for field in ("name", "version", "semver", "description", "template", "config_schema",
                  "resource", "yanked", "post_install_notes", "readme", "upgrades_from",
                  "tags", "featured", "format"):
        assert getattr(back, field) == getattr(original, field), field


def test_dcos_versions_keep_their_release_order() -> None:
    pkg = Package(name="kafka", version="2.3.0-1.1.0", order=7, format="dcos",
                  template="{}", unsupported=("needs Mesos frameworks",))
    _, documents = build_index([pkg])
    [back] = packages_from_document(json.loads(documents["kafka"]))
    assert back.order == 7 and back.format == "dcos"
    assert back.unsupported == ("needs Mesos frameworks",)


def test_write_index_touches_only_what_changed(tmp_path: Path) -> None:
    out = tmp_path / "index"
    first = write_index([_pkg("web", "1.0.0"), _pkg("db", "1.0.0")], out)
    assert first["packages"] == 2 and first["written"] == 3
    assert sorted(p.name for p in (out / "packages").iterdir()) == ["db.json", "web.json"]
    again = write_index([_pkg("web", "1.0.0"), _pkg("db", "1.0.0")], out)
    assert again["written"] == 0
    later = write_index([_pkg("web", "1.0.0"), _pkg("web", "1.0.1")], out)
    assert later == {"packages": 1, "written": 2, "removed": 1, "problems": []}
    listing = parse_listing((out / "index.json").read_bytes())
    assert [i["version"] for i in listing["packages"]] == ["1.0.1"]


def test_write_index_of_a_repository_folder(tmp_path: Path) -> None:
    summary = write_index(UNIVERSE, tmp_path / "out")
    listing = parse_listing((tmp_path / "out" / "index.json").read_bytes())
    names = {item["name"] for item in listing["packages"]}
    assert "hello" in names and summary["packages"] == len(names)
    hello = (tmp_path / "out" / "packages" / "hello.json").read_bytes()
    digest = next(i["digest"] for i in listing["packages"] if i["name"] == "hello")
    document = parse_package_document(hello, name="hello", digest=digest)
    assert all(p.template for p in packages_from_document(document))


@pytest.mark.parametrize(("data", "words"), [
    (b"not json", "not valid JSON"),
    (b"[" * 100 + b"]" * 100, "nested more than 64"),
    (canonical({"indexVersion": 2, "packages": "x"}), "does not match"),
])
def test_bad_listings_are_refused(data: bytes, words: str) -> None:
    with pytest.raises(RepositoryError, match=words):
        parse_listing(data)


def test_every_listing_problem_is_reported() -> None:
    bad = canonical({"indexVersion": 1, "packages": [
        {"name": "Bad Name", "version": "1.0.0", "digest": "sha256:00"},
        {"name": "ok", "version": 5, "digest": "x"}]})
    with pytest.raises(RepositoryError) as caught:
        parse_listing(bad)
    paths = {e["path"] for e in caught.value.details}
    assert {"index.json#/packages/0/name", "index.json#/packages/0/digest",
            "index.json#/packages/1/version", "index.json#/packages/1/digest"} <= paths


def test_duplicate_names_are_refused() -> None:
    item = {"name": "web", "version": "1.0.0", "digest": "sha256:" + "0" * 64}
    with pytest.raises(RepositoryError, match="twice"):
        parse_listing(canonical({"indexVersion": 1, "packages": [item, item]}))


def test_documents_are_checked_against_name_and_digest() -> None:
    _, documents = build_index([_pkg("web", "1.0.0")])
    data = documents["web"]
    with pytest.raises(RepositoryError, match="digest"):
        parse_package_document(data, name="web", digest="sha256:" + "0" * 64)
    with pytest.raises(RepositoryError, match="another package"):
        parse_package_document(data, name="db")
    broken = json.loads(data)
    del broken["versions"][0]["template"]
    with pytest.raises(RepositoryError) as caught:
        parse_package_document(canonical(broken))
    assert caught.value.details[0]["path"] == "package document#/versions/0"


def test_versions_that_are_not_semver_are_skipped_for_native_packages() -> None:
    document = json.loads(build_index([_pkg("web", "1.0.0")])[1]["web"])
    document["versions"].append({**document["versions"][0], "version": "latest"})
    assert [p.version for p in packages_from_document(document)] == ["1.0.0"]
