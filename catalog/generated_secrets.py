"""Secret options whose value Berth generates: ``"x-generate": {"kind", "length"}``.

A secret option (``"x-secret": true``) may say how to make its value when the admin
leaves it empty::

    "password": {"type": "string", "x-secret": true, "default": "",
                 "x-generate": {"kind": "password", "length": 32}}

Kinds (:data:`KINDS`), each from the stdlib's :mod:`secrets` (the OS's CSPRNG):

- ``password``: ``length`` characters of ``A-Z a-z 0-9`` (no character a shell, a URL
  or a config file needs to quote), 8 to 1024, 32 by default;
- ``hex``: ``length`` random bytes as lower-case hex (twice as many characters), 8 to
  512, 32 by default;
- ``base64``: ``length`` random bytes in standard base64 with padding, 8 to 512, 32 by
  default;
- ``uuid``: a random UUID (version 4); no ``length``;
- ``rsa-key``: an RSA private key of ``length`` bits (2048, 3072 or 4096; 2048 by
  default) as unencrypted PKCS#8 PEM, made with ``cryptography``.

The value is made once, when a service is installed (or, for an option a new version
adds, at the upgrade that first has it), and kept: the server stores it sealed with the
service and reuses it whenever the option is empty again, so it is never regenerated.
This module only finds the options and makes values; it keeps nothing.

Only an option Berth can name has a value to make: ``x-generate`` must sit on the
same schema as ``"x-secret": true``, at a path without ``*`` (a pattern or an item has
no name to fill in), on a string option. :func:`generate_problems` reports every
misuse with its place in ``config.json``; load, lint and install refuse such schemas.
"""

from __future__ import annotations

import base64
import secrets
import string
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .errors import PackageInvalid
from .model import Package
from .options import deep_merge, defaults_of, resolve_options
from .schemas.validation import pointer, walk
from .secret_options import path_text, secret_nodes

__all__ = ["KINDS", "Generator", "generators", "generate_problems", "generate_value",
           "mark_problems", "resolve_generated",
           "fill_generated", "is_empty"]

MARK = "x-generate"
PASSWORD_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class Kind:
    """One kind of generated value: its ``length`` bounds (None: takes no length)."""

    make: Callable[[int], str]
    lengths: tuple[int, int] | None
    default: int = 0
    allowed: tuple[int, ...] = ()   # when only some lengths make sense (key sizes)
    unit: str = "characters"


def _password(length: int) -> str:
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))


def _hex(length: int) -> str:
    return secrets.token_hex(length)


def _base64(length: int) -> str:
    return base64.b64encode(secrets.token_bytes(length)).decode("ascii")


def _uuid(_length: int) -> str:
    return str(uuid.uuid4())


def _rsa_key(bits: int) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


KINDS: dict[str, Kind] = {
    "password": Kind(_password, (8, 1024), 32),
    "hex": Kind(_hex, (8, 512), 32, unit="random bytes"),
    "base64": Kind(_base64, (8, 512), 32, unit="random bytes"),
    "uuid": Kind(_uuid, None),
    "rsa-key": Kind(_rsa_key, (2048, 4096), 2048, allowed=(2048, 3072, 4096), unit="bits"),
}


@dataclass(frozen=True)
class Generator:
    """A secret option Berth fills: its path (``/auth/password``) and what to make."""

    path: str
    parts: tuple[str, ...]
    kind: str
    length: int

    def make(self) -> str:
        """A new value (each call a fresh one)."""
        return generate_value(self.kind, self.length)


def generate_value(kind: str, length: int | None = None) -> str:
    """A new random value of ``kind`` (``length`` as :data:`KINDS` says).

    >>> len(generate_value("password", 20)), len(generate_value("hex", 16))
    (20, 32)
    >>> generate_value("uuid")[14]
    '4'
    """
    spec = KINDS[kind]
    return spec.make(length if length is not None else spec.default)


def mark_problems(mark: Any) -> list[str]:
    """What is wrong with one ``x-generate`` value itself (kind, length, keys)."""
    if not isinstance(mark, Mapping):
        return ['must be an object like {"kind": "password", "length": 32}']
    found = [f"unknown key {key!r} (only kind and length)" for key in mark
             if key not in ("kind", "length")]
    kind = mark.get("kind")
    if kind not in KINDS:
        found.append(f"kind {kind!r} is not one of {', '.join(KINDS)}")
        return found
    spec, length = KINDS[kind], mark.get("length")
    if length is None:
        return found
    if spec.lengths is None:
        found.append(f"a {kind} has no length: leave length out")
    elif isinstance(length, bool) or not isinstance(length, int):
        found.append(f"length must be a whole number of {spec.unit}")
    elif spec.allowed and length not in spec.allowed:
        found.append(f"length of a {kind} must be one of "
                     f"{', '.join(map(str, spec.allowed))} ({spec.unit})")
    elif not spec.lengths[0] <= length <= spec.lengths[1]:
        found.append(f"length of a {kind} must be from {spec.lengths[0]} to "
                     f"{spec.lengths[1]} ({spec.unit})")
    return found


def _allows_string(schema: Mapping[str, Any]) -> bool:
    kind = schema.get("type", "string")
    return kind == "string" or (isinstance(kind, list) and "string" in kind)


def _marks(schema: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``(location, subschema)`` of every schema object that has ``x-generate``."""
    for path, sub in walk(schema):
        if MARK in sub:
            yield pointer(path), sub


def generate_problems(schema: Any) -> list[tuple[str, str]]:
    """``(location in the schema, reason)`` for every ``x-generate`` Berth cannot honour:
    a bad kind or length, a non-secret option, a non-string option, or an option whose
    path has ``*`` (no name to fill in)."""
    if not isinstance(schema, Mapping):
        return []
    secret_at: dict[str, list[tuple[str, ...]]] = {}
    for parts, loc, _node in secret_nodes(schema):
        secret_at.setdefault(loc, []).append(parts)
    found: list[tuple[str, str]] = []
    for loc, sub in _marks(schema):
        where = f"{loc}/{MARK}"
        found.extend((where, why) for why in mark_problems(sub[MARK]))
        if sub.get("x-secret") is not True:
            found.append((where, 'x-generate needs "x-secret": true on the same option: '
                                 "a generated value is a secret"))
        elif not _allows_string(sub):
            found.append((where, "a generated value is text: the option's type must be "
                                 "string"))
        elif any("*" in parts for parts in secret_at.get(loc, [])):
            found.append((where, "this option has no fixed name (it sits under a pattern, "
                                 "additionalProperties or items): Berth cannot know where "
                                 "to put a generated value"))
    return found


def generators(package: Package | Mapping[str, Any]) -> list[Generator]:
    """The generated secret options of a package (or a config schema), by path.

    :raises PackageInvalid: when an ``x-generate`` is misused (see
        :func:`generate_problems`).
    """
    schema = package.config_schema if isinstance(package, Package) else package
    problems = generate_problems(schema)
    if problems:
        name = package.name if isinstance(package, Package) else ""
        version = package.version if isinstance(package, Package) else ""
        raise PackageInvalid(f"{name}@{version} asks Berth to generate a secret it cannot",
                             package=name, version=version,
                             details=[{"path": "config.json#" + loc, "message": why}
                                      for loc, why in problems])
    found: dict[str, Generator] = {}
    for parts, _loc, node in secret_nodes(schema or {}):
        mark = node.get(MARK)
        if isinstance(mark, Mapping):
            kind = str(mark["kind"])
            length = mark.get("length")
            found.setdefault(path_text(parts), Generator(
                path_text(parts), parts, kind,
                int(length) if length is not None else KINDS[kind].default))
    return list(found.values())


def is_empty(value: Any) -> bool:
    """Whether an option value counts as "left empty" (absent, null or ``""``)."""
    return value is None or value == ""


def _get(options: Any, parts: tuple[str, ...]) -> Any:
    for part in parts:
        if not isinstance(options, Mapping):
            return None
        options = options.get(part)
    return options


def _put(options: dict[str, Any], parts: tuple[str, ...], value: str) -> bool:
    """Set ``value`` at ``parts``, making missing objects; False where a non-object
    value is in the way (the option cannot be there, so nothing is generated)."""
    node: Any = options
    for part in parts[:-1]:
        if node.get(part) is None:
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict):
            return False
    node[parts[-1]] = value
    return True


def fill_generated(package: Package | Mapping[str, Any], options: Mapping[str, Any],
                   kept: Mapping[str, str] | None = None, leave: Collection[str] = ()
                   ) -> tuple[dict[str, Any], dict[str, str]]:
    """``options`` with every empty generated secret filled in, and the values made now.

    A value in ``kept`` (what the service was given before, by path) is used again
    rather than a new one: a generated secret is made once per service. Paths in
    ``leave`` stay empty unless ``kept`` has them (an upgrade of a service that ran with
    the option empty before generation existed). The second item holds only the values
    made by this call (to store, and show once).

    >>> schema = {"properties": {"pw": {"type": "string", "x-secret": True,
    ...           "x-generate": {"kind": "hex", "length": 8}}}}
    >>> fill_generated(schema, {"pw": ""}, {"/pw": "0123456789abcdef"})
    ({'pw': '0123456789abcdef'}, {})
    >>> filled, made = fill_generated(schema, {})
    >>> list(made) == ["/pw"] and filled["pw"] == made["/pw"] and len(made["/pw"]) == 16
    True
    """
    filled: dict[str, Any] = copy_options(options)
    made: dict[str, str] = {}
    for gen in generators(package):
        if not is_empty(_get(filled, gen.parts)):
            continue
        reused = (kept or {}).get(gen.path)
        if not (isinstance(reused, str) and reused) and gen.path in leave:
            continue
        value = reused if isinstance(reused, str) and reused else gen.make()
        if _put(filled, gen.parts, value) and value is not reused:
            made[gen.path] = value
    return filled, made


def resolve_generated(package: Any, options: Mapping[str, Any],
                      kept: Mapping[str, str] | None = None, leave: Collection[str] = ()
                      ) -> tuple[dict[str, Any], dict[str, str]]:
    """``options`` (defaults merged) with every empty ``x-generate`` secret filled (a
    kept value first), then resolved and validated; and the values made now, by path.

    Filled before validation: an empty generated option may have a ``minLength`` its
    generated value meets.

    :raises PackageInvalid: for a misused ``x-generate``.
    :raises OptionsInvalid: for options that fail the package's schema.
    """
    if not isinstance(options, Mapping) or not generators(package):
        return resolve_options(package, options), {}   # (a non-object is refused there)
    filled, made = fill_generated(package, deep_merge(defaults_of(package), dict(options)),
                                  kept, leave)
    return resolve_options(package, filled), made


def copy_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of JSON options (objects and lists copied, leaves shared)."""
    def copy(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: copy(v) for k, v in value.items()}
        if isinstance(value, list):
            return [copy(v) for v in value]
        return value

    return dict(copy(dict(options)))
