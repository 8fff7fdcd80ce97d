"""Semantic versions and version ranges: parsing, ordering, matching.

A :class:`Version` is a frozen, totally ordered value parsed by the ``semver``
library. Precedence follows SemVer 2.0 (a pre-release sorts before its release,
build metadata does not change precedence); build metadata only breaks ties so that
the order stays consistent with equality:

>>> parse_version("1.0.0-alpha") < parse_version("1.0.0-alpha.1") < parse_version("1.0.0-beta")
True
>>> v = parse_version
>>> v("1.0.0-rc.1") < v("1.0.0") < v("1.0.1") < v("1.10.0")
True
>>> sorted(parse_version(v) for v in ["2.0.0", "1.2.10", "1.2.9"])[0]
Version('1.2.9')
>>> parse_version("1.0.0-2") < parse_version("1.0.0-10") < parse_version("1.0.0-a")
True

A :class:`VersionRange` is what users type after ``@``: an exact version, ``^1.2``,
``~1.2.3``, ``>=1,<2`` (comma or space between comparators), ``1.x``, ``*``, and
``||`` between alternatives:

>>> r = parse_range("^1.2")
>>> [r.contains(parse_version(v)) for v in ["1.2.0", "1.9.9", "2.0.0", "1.1.0"]]
[True, True, False, False]
>>> parse_range(">=1, <2").contains(parse_version("1.5.0"))
True
>>> parse_range("~1.2.3").contains(parse_version("1.3.0"))
False

Pre-releases match a range only when a comparator names a pre-release of the same
``MAJOR.MINOR.PATCH`` (npm's rule), so ``*`` never picks a release candidate:

>>> parse_range("*").contains(parse_version("2.0.0-rc.1"))
False
>>> parse_range(">=2.0.0-rc.1").contains(parse_version("2.0.0-rc.2"))
True
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

import semver

from .errors import VersionError

__all__ = ["Version", "VersionRange", "parse_version", "parse_range"]

_PartKey = tuple[int, int | str]


def _prerelease_key(prerelease: str | None) -> tuple[Any, ...]:
    """Sort key of a pre-release: releases sort after every pre-release."""
    if not prerelease:
        return (1,)
    parts: list[_PartKey] = []
    for part in prerelease.split("."):
        parts.append((0, int(part)) if part.isdigit() else (1, part))
    return (0, tuple(parts))


@dataclass(frozen=True, slots=True)
class Version:
    """A semantic version; ordered by SemVer precedence, build metadata last."""

    major: int
    minor: int
    patch: int
    prerelease: str | None = None
    build: str | None = None
    key: tuple[Any, ...] = field(init=False, repr=False, compare=True, hash=True)

    def __post_init__(self) -> None:
        precedence = (self.major, self.minor, self.patch, _prerelease_key(self.prerelease))
        object.__setattr__(self, "key", (precedence, self.build or ""))

    @property
    def precedence(self) -> tuple[Any, ...]:
        """The SemVer precedence (ignores build metadata)."""
        precedence: tuple[Any, ...] = self.key[0]
        return precedence

    @property
    def is_prerelease(self) -> bool:
        """True for ``1.0.0-rc.1`` and the like."""
        return bool(self.prerelease)

    @property
    def release(self) -> tuple[int, int, int]:
        """``(major, minor, patch)``."""
        return (self.major, self.minor, self.patch)

    def to_semver(self) -> semver.Version:
        """The ``semver.Version`` this wraps."""
        return semver.Version(self.major, self.minor, self.patch, self.prerelease, self.build)

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += f"-{self.prerelease}"
        if self.build:
            text += f"+{self.build}"
        return text

    def __repr__(self) -> str:
        return f"Version({str(self)!r})"

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.key < other.key

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.key <= other.key

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.key > other.key

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.key >= other.key


@functools.lru_cache(maxsize=65536)
def parse_version(text: str) -> Version:
    """Parse ``MAJOR.MINOR.PATCH[-pre][+build]``.

    :raises VersionError: when ``text`` is not a semantic version.
    """
    if not isinstance(text, str) or len(text) > 256:
        raise VersionError(f"{text!r} is not a semantic version (MAJOR.MINOR.PATCH)")
    try:
        v = semver.Version.parse(text.strip())
    except (ValueError, TypeError):
        raise VersionError(
            f"{text!r} is not a semantic version (MAJOR.MINOR.PATCH)",
            hint="use three numbers such as 1.2.3, optionally -rc.1 or +build",
        ) from None
    return Version(v.major, v.minor, v.patch, v.prerelease, v.build)


# --- ranges -----------------------------------------------------------------------

_OPS = ("<=", ">=", "<", ">", "=", "^", "~")
_PARTIAL = re.compile(
    r"v?(?P<major>\d+|[xX*])(?:\.(?P<minor>\d+|[xX*]))?(?:\.(?P<patch>\d+|[xX*]))?"
    r"(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+(?P<build>[0-9A-Za-z.-]+))?"
)


@dataclass(frozen=True, slots=True)
class _Comparator:
    op: str  # one of <, <=, >, >=, =
    version: Version

    def test(self, v: Version) -> bool:
        a, b = v.precedence, self.version.precedence
        return {
            "<": a < b,
            "<=": a <= b,
            ">": a > b,
            ">=": a >= b,
            "=": a == b,
        }[self.op]


def _num(part: str | None) -> int | None:
    return None if part is None or part in "xX*" else int(part)


def _lower(parts: list[int | None], pre: str | None) -> Version:
    major, minor, patch = (p or 0 for p in parts)
    return Version(major, minor, patch, pre)


def _bump(parts: list[int | None]) -> Version:
    """The first version above a partial version (``1.2`` → ``1.3.0-0``)."""
    major, minor, _ = parts
    if minor is None:
        return Version((major or 0) + 1, 0, 0, "0")
    return Version(major or 0, minor + 1, 0, "0")


def _expand(op: str, text: str, whole: str) -> tuple[_Comparator, ...]:
    """One comparator token (``^1.2``, ``>=1``, ``1.x``) as plain comparators."""
    m = _PARTIAL.fullmatch(text)
    if not m:
        raise VersionError(f"{whole!r} is not a version range: bad version {text!r}",
                           hint="examples: 1.2.3, ^1.2, ~1.2.3, >=1,<2, 1.x, *")
    parts = [_num(m["major"]), _num(m["minor"]), _num(m["patch"])]
    for i in range(1, 3):  # a wildcard makes everything after it a wildcard
        if parts[i - 1] is None:
            parts[i] = None
    pre = m["pre"]
    if pre and None in parts:
        raise VersionError(f"{whole!r}: a pre-release needs a full version ({text!r})")
    lo = _lower(parts, pre)
    full = None not in parts
    if parts[0] is None:
        return () if op in ("", "=", "^", "~", ">=", "<=") else (
            (_Comparator("<", Version(0, 0, 0, "0")),) if op in ("<", ">") else ())
    if op in ("", "="):
        if full:
            return (_Comparator("=", lo),)
        return (_Comparator(">=", lo), _Comparator("<", _bump(parts)))
    if op == "^":
        major, minor, patch = parts
        if major:
            hi = Version(major + 1, 0, 0, "0")
        elif minor is None:
            hi = Version(1, 0, 0, "0")
        elif minor:
            hi = Version(0, minor + 1, 0, "0")
        elif patch is None:
            hi = Version(0, 1, 0, "0")
        else:
            hi = Version(0, 0, patch + 1, "0")
        return (_Comparator(">=", lo), _Comparator("<", hi))
    if op == "~":
        hi = _bump([parts[0], parts[1], None]) if parts[1] is not None else _bump(
            [parts[0], None, None])
        return (_Comparator(">=", lo), _Comparator("<", hi))
    if op == ">=" or full:
        return (_Comparator(op, lo),)
    if op == "<":
        return (_Comparator("<", Version(*lo.release, "0")),)
    if op == ">":
        return (_Comparator(">=", _bump(parts)),)
    return (_Comparator("<", _bump(parts)),)  # <= partial


def _split_tokens(text: str) -> list[str]:
    """``>= 1, <2`` → ``['>=1', '<2']`` (an operator may be followed by spaces)."""
    tokens: list[str] = []
    pending = ""
    for raw in re.split(r"[,\s]+", text.strip()):
        if not raw:
            continue
        if raw in _OPS:
            pending += raw
            continue
        tokens.append(pending + raw)
        pending = ""
    if pending:
        tokens.append(pending)
    return tokens


def _parse_token(token: str, whole: str) -> tuple[_Comparator, ...]:
    for op in _OPS:
        if token.startswith(op):
            return _expand(op, token[len(op):], whole)
    return _expand("", token, whole)


@dataclass(frozen=True, slots=True)
class VersionRange:
    """A set of versions: alternatives (``||``) of comparator sets (all must hold)."""

    text: str
    alternatives: tuple[tuple[_Comparator, ...], ...]
    exact: Version | None = None

    def contains(self, version: Version) -> bool:
        """True when ``version`` satisfies one of the alternatives."""
        if self.exact is not None:
            return version.precedence == self.exact.precedence
        return any(self._allows(alt, version) for alt in self.alternatives)

    __contains__ = contains

    @staticmethod
    def _allows(comparators: tuple[_Comparator, ...], version: Version) -> bool:
        if not all(c.test(version) for c in comparators):
            return False
        if not version.is_prerelease:
            return True
        return any(c.version.is_prerelease and c.version.release == version.release
                   and c.version.prerelease != "0" for c in comparators)

    def best(self, versions: list[Version]) -> Version | None:
        """The highest of ``versions`` in this range, or None."""
        matching = [v for v in versions if self.contains(v)]
        return max(matching) if matching else None

    def __str__(self) -> str:
        return self.text


@functools.lru_cache(maxsize=4096)
def parse_range(text: str) -> VersionRange:
    """Parse a version range such as ``^1.2``, ``~1.2.3``, ``>=1,<2``, ``1.x``, ``*``.

    :raises VersionError: when ``text`` is not a range.
    """
    if not isinstance(text, str) or len(text) > 256:
        raise VersionError(f"{text!r} is not a version range")
    stripped = text.strip()
    try:
        return VersionRange(text, (), parse_version(stripped))
    except VersionError:
        pass
    alternatives = []
    for alt in stripped.split("||"):
        tokens = _split_tokens(alt)
        if not tokens and stripped:
            raise VersionError(f"{text!r} is not a version range: empty alternative")
        comparators: tuple[_Comparator, ...] = ()
        for token in tokens:
            comparators += _parse_token(token, text)
        alternatives.append(comparators)
    return VersionRange(text, tuple(alternatives))
