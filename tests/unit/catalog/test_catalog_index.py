"""The catalog: search ranking, tags, featured, versions and resolution by priority."""

from __future__ import annotations

import pytest

from catalog import (
    Catalog,
    Package,
    PackageNotFound,
    Repository,
    VersionError,
    VersionNotFound,
    parse_version,
)


def _p(name: str, version: str, repo: str = "main", **kw: object) -> Package:
    return Package(name, version, semver=parse_version(version), repository=repo,
                   **kw)  # type: ignore[arg-type]


def _catalog() -> Catalog:
    main = Repository("main", priority=10, packages=(
        _p("redis", "7.2.7", tags=("cache", "database"), description="In-memory data store"),
        _p("redis", "7.4.2", tags=("cache", "database"), description="In-memory data store",
           featured=True),
        _p("redis-commander", "0.8.0", tags=("admin",), description="Redis web UI"),
        _p("keydb", "6.3.4", title="KeyDB", description="A faster redis fork",
           tags=("cache",)),
        _p("postgres", "16.6.0", tags=("database",), description="SQL database"),
        _p("postgres", "17.0.0-rc.1", tags=("database",), description="SQL database"),
        _p("cache-warmer", "1.0.0", description="Warms caches", tags=("tools",)),
        _p("old", "1.0.0", yanked="broken"),
        _p("old", "0.9.0"),
    ))
    extra = Repository("extra", priority=50, packages=(
        _p("redis", "9.0.0", "extra"), _p("nginx", "1.27.3", "extra", tags=("web",)),
        _p("postgres", "15.10.0", "extra", tags=("database",)),
    ))
    return Catalog([extra, main])


def test_ranking_exact_then_prefix_then_substring_then_text() -> None:
    names = [p.name for p in _catalog().search("redis").items]
    assert names == ["redis", "redis-commander", "keydb"]


def test_title_tags_and_description_are_searched() -> None:
    catalog = _catalog()
    assert [p.name for p in catalog.search("keydb").items] == ["keydb"]
    assert [p.name for p in catalog.search("cache").items][:1] == ["cache-warmer"]
    assert {p.name for p in catalog.search("cache").items} == {"cache-warmer", "redis", "keydb"}
    assert [p.name for p in catalog.search("SQL").items] == ["postgres"]
    assert [p.name for p in catalog.search("faster fork").items] == ["keydb"]


def test_search_shows_the_newest_installable_release_of_each_name() -> None:
    page = _catalog().search("")
    shown = {p.name: p.version for p in page.items}
    assert shown["redis"] == "7.4.2" and shown["postgres"] == "16.6.0" and shown["old"] == "0.9.0"
    assert page.total == 7


def test_filters_and_paging() -> None:
    catalog = _catalog()
    assert [p.name for p in catalog.search(tag="database").items] == ["postgres", "redis"]
    assert [p.name for p in catalog.search(repository="extra").items] == [
        "nginx", "postgres", "redis"]
    first, second = catalog.search(per_page=4), catalog.search(page=2, per_page=4)
    assert first.total == second.total == 7 and first.pages == 2
    assert len(first.items) == 4 and len(second.items) == 3
    assert catalog.search(per_page=10**6).per_page == 100
    assert catalog.search("zzz").total == 0


def test_tags_and_featured() -> None:
    catalog = _catalog()
    assert catalog.tags()[:2] == [("cache", 2), ("database", 2)]
    assert [p.name for p in catalog.featured()] == ["redis"]


def test_versions_come_from_the_winning_repository_newest_first() -> None:
    assert [p.version for p in _catalog().versions("redis")] == ["7.4.2", "7.2.7"]
    with pytest.raises(PackageNotFound):
        _catalog().versions("nope")


@pytest.mark.parametrize(("wanted", "version", "repo"), [
    (None, "7.4.2", "main"),
    ("7.2.7", "7.2.7", "main"),
    ("^7", "7.4.2", "main"),
    ("~7.2", "7.2.7", "main"),
    (">=7,<7.3", "7.2.7", "main"),
])
def test_resolve(wanted: str | None, version: str, repo: str) -> None:
    found = _catalog().resolve("redis", wanted)
    assert (found.version, found.repository) == (version, repo)


def test_resolve_faults_and_special_cases() -> None:
    catalog = _catalog()
    assert catalog.resolve("postgres").version == "16.6.0"
    assert catalog.resolve("postgres", "17.0.0-rc.1").version == "17.0.0-rc.1"
    assert catalog.resolve("redis", repository="extra").version == "9.0.0"
    assert catalog.resolve("old").version == "0.9.0"
    assert catalog.resolve("old", "1.0.0", include_yanked=True).version == "1.0.0"
    with pytest.raises(VersionNotFound) as info:
        catalog.resolve("old", "1.0.0")
    assert "available" in (info.value.hint or "")
    with pytest.raises(VersionNotFound):
        catalog.resolve("redis", "^10")
    with pytest.raises(VersionNotFound, match="in repository 'main'"):
        catalog.resolve("redis", "9.x")  # only "extra" has it: never a silent switch
    assert catalog.resolve("redis", "9.x", repository="extra").version == "9.0.0"
    with pytest.raises(VersionError):
        catalog.resolve("redis", "not a range")
    with pytest.raises(PackageNotFound):
        catalog.resolve("redis", repository="nowhere")


def test_unsupported_versions_show_but_installable_ones_win() -> None:
    repo = Repository("d", packages=(
        _p("app", "2.0.0", "d", unsupported=("needs Mesos",)), _p("app", "1.0.0", "d")))
    catalog = Catalog([repo])
    assert catalog.resolve("app").version == "1.0.0"
    assert catalog.search("app").items[0].version == "1.0.0"
    only = Catalog([Repository("d", packages=(_p("x", "1.0.0", "d", unsupported=("no",)),))])
    assert only.search("x").items[0].installable is False
