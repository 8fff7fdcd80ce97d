"""A name resolves to one repository: its owner's, consistently, with no fallback."""

from __future__ import annotations

import pytest

from catalog import Catalog, Package, PackageNotFound, Repository, VersionNotFound, parse_version
from catalog.owners import first_claims


def _p(name: str, version: str, repo: str, **kw: object) -> Package:
    return Package(name, version, semver=parse_version(version), repository=repo,
                   **kw)  # type: ignore[arg-type]


HOSTED = Repository("hosted", priority=50, kind="hosted", packages=(
    _p("hello", "9.0.0", "hosted", yanked="takeover"), _p("hello", "9.1.0", "hosted",
                                                         yanked="takeover"),
    _p("mine", "1.0.0", "hosted")))
UNIVERSE = Repository("universe", priority=100, kind="builtin", packages=(
    _p("hello", "1.0.0", "universe"), _p("hello", "2.0.0", "universe")))
ACME = Repository("acme", priority=200, kind="remote", packages=(
    _p("hello", "3.0.0", "acme"), _p("tool", "1.0.0", "acme")))


def test_a_name_nobody_owns_is_claimed_by_the_first_non_hosted_repository() -> None:
    claims = first_claims([HOSTED, UNIVERSE, ACME], {"tool"})
    assert claims == {"hello": "universe", "mine": "hosted"}


def test_the_owner_wins_over_a_lower_priority_number() -> None:
    catalog = Catalog([HOSTED, UNIVERSE, ACME], owners={"hello": ["universe"]})
    assert catalog.origin("hello") == "universe"
    assert catalog.resolve("hello").version == "2.0.0"
    assert [p.version for p in catalog.versions("hello")] == ["2.0.0", "1.0.0"]
    assert catalog.also_in("hello") == ["hosted", "acme"]
    assert [p.repository for p in catalog.search("hello").items] == ["universe"]
    assert catalog.resolve("hello", "9.0.0", repository="hosted",
                           include_yanked=True).repository == "hosted"


def test_every_version_yanked_keeps_page_versions_and_resolve_in_one_repository() -> None:
    catalog = Catalog([HOSTED, UNIVERSE], owners={"hello": ["universe", "hosted"]})
    assert catalog.origin("hello") == "hosted"
    assert catalog.newest("hello").version == "9.1.0"
    assert {p.repository for p in catalog.versions("hello")} == {"hosted"}
    with pytest.raises(VersionNotFound, match="in repository 'hosted'") as info:
        catalog.resolve("hello")
    assert "9.1.0 (yanked)" in (info.value.hint or "")


def test_an_owner_that_lost_the_name_says_where_else_it_is() -> None:
    catalog = Catalog([HOSTED, ACME], owners={"hello": ["universe"]})
    assert "hello" not in catalog and "hello" not in catalog.names
    with pytest.raises(PackageNotFound, match="belongs to repository 'universe'") as info:
        catalog.versions("hello")
    assert "transfer hello --repository hosted" in (info.value.hint or "")
    with pytest.raises(PackageNotFound, match="in repository 'universe'") as info:
        catalog.resolve("hello", repository="universe")
    assert info.value.hint == "it is in: hosted, acme"


def test_without_owner_records_the_priority_rule_stands() -> None:
    catalog = Catalog([UNIVERSE, ACME])
    assert catalog.origin("hello") == "universe" and catalog.origin("tool") == "acme"


def test_names_lists_only_names_that_resolve() -> None:
    catalog = Catalog([HOSTED, ACME], owners={"hello": ["universe"]})
    assert catalog.names == ["mine", "tool"]
    assert all(catalog.versions(name) for name in catalog.names)
