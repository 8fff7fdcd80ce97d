"""Versions and ranges: parsing, SemVer ordering (doctests and properties), matching."""

from __future__ import annotations

import doctest

import pytest
import semver
from hypothesis import given
from hypothesis import strategies as st

import catalog.version
from catalog.errors import VersionError
from catalog.version import Version, parse_range, parse_version

_ident = st.from_regex(r"\A(?:0|[1-9][0-9]{0,3}|[a-z][a-z0-9-]{0,5})\Z")
versions = st.builds(
    lambda ma, mi, pa, pre, build: Version(ma, mi, pa, ".".join(pre) or None,
                                           ".".join(build) or None),
    st.integers(0, 30), st.integers(0, 30), st.integers(0, 30),
    st.lists(_ident, max_size=3), st.lists(st.from_regex(r"\A[a-z0-9]{1,4}\Z"), max_size=2))


def test_doctests_of_the_version_module_pass() -> None:
    result = doctest.testmod(catalog.version)
    assert result.attempted >= 8 and result.failed == 0


@given(versions)
def test_text_round_trips(v: Version) -> None:
    assert parse_version(str(v)) == v


@given(versions, versions)
def test_order_agrees_with_semver_precedence(a: Version, b: Version) -> None:
    expected = semver.Version.parse(str(a)).compare(str(b))
    ours = (a.precedence > b.precedence) - (a.precedence < b.precedence)
    assert ours == expected


@given(versions, versions, versions)
def test_order_is_total_and_transitive(a: Version, b: Version, c: Version) -> None:
    assert (a < b) + (a == b) + (a > b) == 1
    if a <= b and b <= c:
        assert a <= c


@given(versions)
def test_prerelease_sorts_before_its_release(v: Version) -> None:
    release = Version(v.major, v.minor, v.patch)
    if v.prerelease:
        assert v < release
    else:
        assert v.precedence == release.precedence


@pytest.mark.parametrize("text", ["1", "1.2", "1.2.3.4", "01.2.3", "abc", "", "1.2.3-", "v1.2.3"])
def test_invalid_versions_are_refused(text: str) -> None:
    with pytest.raises(VersionError) as info:
        parse_version(text)
    assert "semantic version" in info.value.message


@pytest.mark.parametrize(("rng", "inside", "outside"), [
    ("1.2.3", ["1.2.3"], ["1.2.4", "1.2.3-rc.1"]),
    ("^1.2", ["1.2.0", "1.9.9"], ["2.0.0", "1.1.9", "2.0.0-rc.1"]),
    ("^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0"]),
    ("^0.0.3", ["0.0.3"], ["0.0.4"]),
    ("~1.2.3", ["1.2.3", "1.2.9"], ["1.3.0", "1.2.2"]),
    ("~1.2", ["1.2.0", "1.2.7"], ["1.3.0"]),
    (">=1,<2", ["1.0.0", "1.99.0"], ["0.9.9", "2.0.0"]),
    (">= 1, < 2", ["1.5.0"], ["2.0.0"]),
    (">=1 <2", ["1.5.0"], ["2.1.0"]),
    ("1.x", ["1.0.0", "1.8.2"], ["2.0.0", "0.9.0"]),
    ("1.2.x", ["1.2.0", "1.2.8"], ["1.3.0"]),
    ("*", ["0.0.1", "99.0.0"], ["1.0.0-rc.1"]),
    ("<=1.2", ["1.2.9", "0.1.0"], ["1.3.0"]),
    (">1.2", ["1.3.0"], ["1.2.9"]),
    ("1.0.0 || ^3", ["1.0.0", "3.4.0"], ["2.0.0"]),
    (">=2.0.0-rc.1", ["2.0.0-rc.2", "2.0.0", "2.1.0"], ["2.0.0-beta", "2.1.0-rc.1"]),
])
def test_ranges_match_what_users_expect(rng: str, inside: list[str], outside: list[str]) -> None:
    parsed = parse_range(rng)
    assert all(parsed.contains(parse_version(v)) for v in inside)
    assert not any(parsed.contains(parse_version(v)) for v in outside)


@pytest.mark.parametrize("text", ["abc", ">=", "^x.1-rc", "1.2.3.4", ">=1,,<2 ||"])
def test_invalid_ranges_are_refused(text: str) -> None:
    with pytest.raises(VersionError):
        parse_range(text)


@given(st.integers(1, 50), st.integers(0, 50), st.integers(0, 50))
def test_caret_allows_minor_and_patch_updates_only(major: int, minor: int, patch: int) -> None:
    rng = parse_range(f"^{major}.{minor}.{patch}")
    assert rng.contains(Version(major, minor, patch))
    assert rng.contains(Version(major, minor + 1, 0))
    assert not rng.contains(Version(major + 1, 0, 0))
    assert not rng.contains(Version(major, minor, patch + 1, "rc.1"))


@given(st.integers(0, 50), st.integers(0, 50), st.integers(0, 50))
def test_tilde_allows_patch_updates_only(major: int, minor: int, patch: int) -> None:
    rng = parse_range(f"~{major}.{minor}.{patch}")
    assert rng.contains(Version(major, minor, patch + 1))
    assert not rng.contains(Version(major, minor + 1, 0))


def test_best_picks_the_highest_match() -> None:
    found = parse_range("^1").best([parse_version(v) for v in ["1.0.0", "1.4.0", "2.0.0"]])
    assert found == parse_version("1.4.0")
