"""Where a schema marks an option ``"x-secret": true``: its paths, masking, refusals.

A schema can hold an option's schema in many places, and each is followed from the
root: ``properties`` and the keywords that apply to the same value (``allOf``/``anyOf``/
``oneOf``, ``if``/``then``/``else``, ``not``, ``dependentSchemas``, draft-04
``dependencies``, a local ``$ref``) or to its members (``patternProperties``,
``additionalProperties``, ``unevaluatedProperties``, ``prefixItems``, ``items``,
``additionalItems``, ``unevaluatedItems``, ``contains``). A ``*`` step stands for any
key or item: it may cover more members than the keyword does (a pattern, the items
after ``prefixItems``), which only ever masks more.

A secret whose option path cannot be known (under a recursive ``$ref``, under
``propertyNames``, reached only through an anchor, or nested deeper than
:data:`MAX_DEPTH`) is a problem (:func:`secret_problems`): lint refuses the package and
:func:`package_secret_paths` refuses to install it, so nothing is ever half masked.
A service record keeps the paths as text (:func:`path_text`: ``/db/password``,
``/keys/*``), computed once from the package actually installed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from .errors import PackageInvalid
from .model import Package

__all__ = ["MASK", "secret_paths", "secret_nodes", "secret_problems", "package_secret_paths",
           "mask_secrets",
           "apply_at_paths", "values_at_paths", "path_text", "path_parts", "covers"]

MASK = "********"
MAX_DEPTH = 32

_SAME = ("allOf", "anyOf", "oneOf")
_SAME_ONE = ("if", "then", "else", "not")
_SAME_MAP = ("dependentSchemas", "dependencies")
_ANY_KEY_ONE = ("additionalProperties", "unevaluatedProperties", "additionalItems",
                "unevaluatedItems", "contains")
_DATA_KEYS = ("default", "const", "enum", "examples")
_MAX_VISITS = 20000


def _step(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _unstep(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")


def _ref_target(ref: Any, root: Mapping[str, Any]) -> tuple[str, Any] | None:
    """``(location, schema)`` of a local ``#/…`` reference, or None."""
    if not isinstance(ref, str) or not (ref == "#" or ref.startswith("#/")):
        return None
    node: Any = root
    for raw in ref[2:].split("/") if ref != "#" else []:
        part = _unstep(raw)
        if isinstance(node, Mapping):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return (ref[1:], node) if isinstance(node, Mapping) else None


class _SecretWalk:
    """Every option path marked ``x-secret``, where it was found, and what could not be
    known (a secret under a recursive ``$ref``, or nested deeper than Berth follows)."""

    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.paths: list[tuple[str, ...]] = []
        self.found: list[tuple[tuple[str, ...], str, Mapping[str, Any]]] = []
        self.reached: set[str] = set()
        self.problems: list[tuple[str, str]] = []
        self._seen: set[tuple[str, tuple[str, ...]]] = set()
        self._visits = 0

    def run(self) -> _SecretWalk:
        self.walk(self.root, "", (), ())
        return self

    def walk(self, node: Any, loc: str, path: tuple[str, ...], stack: tuple[str, ...]) -> None:
        if not isinstance(node, Mapping) or (loc, path) in self._seen:
            return
        self._seen.add((loc, path))
        self._visits += 1
        if len(stack) > MAX_DEPTH or self._visits > _MAX_VISITS:
            if _reaches_secret(node, self.root):
                self.problems.append((loc, "this schema nests deeper (or wider) than Berth "
                                           f"follows ({MAX_DEPTH} levels) above a secret "
                                           "option: flatten it"))
            return
        stack = (*stack, loc)
        target = _ref_target(node.get("$ref"), self.root)
        if target is not None:
            if target[0] in stack:
                if _reaches_secret(target[1], self.root):
                    self.problems.append((loc, f"a secret option sits under a recursive $ref "
                                               f"({node['$ref']}): its option paths have no "
                                               "bound, so Berth cannot know which values to "
                                               "hide"))
            else:
                self.walk(target[1], target[0], path, stack)
        if node.get("x-secret") is True:
            self.paths.append(path)
            self.found.append((path, loc, node))
            self.reached.add(loc)
            return
        self._members(node, loc, path, stack)
        self._applicators(node, loc, path, stack)

    def _members(self, node: Mapping[str, Any], loc: str, path: tuple[str, ...],
                 stack: tuple[str, ...]) -> None:
        """Keywords whose subschemas apply to a key or an item of the value."""
        props = node.get("properties")
        if isinstance(props, Mapping):
            for key, sub in props.items():
                self.walk(sub, f"{loc}/properties/{_step(str(key))}", (*path, str(key)), stack)
        patterns = node.get("patternProperties")
        if isinstance(patterns, Mapping):
            for key, sub in patterns.items():
                self.walk(sub, f"{loc}/patternProperties/{_step(str(key))}", (*path, "*"),
                          stack)
        for keyword in ("prefixItems", "items"):
            listed = node.get(keyword)
            if isinstance(listed, list):  # prefixItems, or draft-4 tuple ``items``
                for index, sub in enumerate(listed):
                    self.walk(sub, f"{loc}/{keyword}/{index}", (*path, str(index)), stack)
        for keyword in ("items", *_ANY_KEY_ONE):
            if isinstance(node.get(keyword), Mapping):
                self.walk(node[keyword], f"{loc}/{keyword}", (*path, "*"), stack)

    def _applicators(self, node: Mapping[str, Any], loc: str, path: tuple[str, ...],
                     stack: tuple[str, ...]) -> None:
        """Keywords whose subschemas apply to the value itself."""
        for keyword in _SAME:
            if isinstance(node.get(keyword), list):
                for index, sub in enumerate(node[keyword]):
                    self.walk(sub, f"{loc}/{keyword}/{index}", path, stack)
        for keyword in _SAME_ONE:
            self.walk(node.get(keyword), f"{loc}/{keyword}", path, stack)
        for keyword in _SAME_MAP:
            if isinstance(node.get(keyword), Mapping):
                for key, sub in node[keyword].items():
                    self.walk(sub, f"{loc}/{keyword}/{_step(str(key))}", path, stack)


def _reaches_secret(node: Any, root: Mapping[str, Any]) -> bool:
    """Whether ``x-secret: true`` is anywhere under ``node``, local ``$ref`` s followed."""
    seen: set[int] = set()
    todo = [node]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, Mapping):
            if current.get("x-secret") is True:
                return True
            target = _ref_target(current.get("$ref"), root)
            if target is not None:
                todo.append(target[1])
            todo.extend(v for k, v in current.items() if k not in _DATA_KEYS)
        elif isinstance(current, list):
            todo.extend(current)
    return False


def _secret_marks(node: Any, loc: str = "") -> Iterator[str]:
    """The location of every ``"x-secret": true`` in a schema document."""
    if isinstance(node, Mapping):
        if node.get("x-secret") is True:
            yield loc
        for key, sub in node.items():
            if key not in _DATA_KEYS:
                yield from _secret_marks(sub, f"{loc}/{_step(str(key))}")
    elif isinstance(node, list):
        for index, sub in enumerate(node):
            yield from _secret_marks(sub, f"{loc}/{index}")


def secret_nodes(schema: Mapping[str, Any]
                 ) -> list[tuple[tuple[str, ...], str, Mapping[str, Any]]]:
    """``(option path, location in the schema, the option's schema)`` of every secret
    option Berth can name (what :func:`secret_paths` lists, with where it was found)."""
    return _SecretWalk(schema).run().found if isinstance(schema, Mapping) else []


def secret_paths(schema: Mapping[str, Any]) -> Iterator[tuple[str, ...]]:
    """The option paths whose schema says ``"x-secret": true`` (``*`` = any key/item).

    >>> list(secret_paths({"properties": {"db": {"allOf": [{"$ref": "#/$defs/pw"}]}},
    ...                    "$defs": {"pw": {"properties": {"pw": {"x-secret": True}}}}}))
    [('db', 'pw')]
    """
    if isinstance(schema, Mapping):
        yield from dict.fromkeys(_SecretWalk(schema).run().paths)


def secret_problems(schema: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(location in the schema, reason)`` for every secret whose option path Berth
    cannot know: such a schema is refused (lint, install), never half masked."""
    if not isinstance(schema, Mapping):
        return []
    walk = _SecretWalk(schema).run()
    problems = list(dict.fromkeys(walk.problems))
    for mark in _secret_marks(schema):
        if not any(mark == r or mark.startswith(r + "/") for r in walk.reached) and not any(
                mark.startswith(loc) for loc, _ in walk.problems):
            problems.append((mark, "x-secret is in a place that holds no option Berth can "
                                   "name (only properties, the composition keywords and "
                                   "local $ref are followed from the root): move it onto "
                                   "the option's own schema"))
    return problems


def path_text(path: Sequence[str]) -> str:
    """A secret path as the service record keeps it: ``/db/password``, ``/keys/*``."""
    return "".join("/" + _step(part) for part in path)


def path_parts(text: str) -> tuple[str, ...]:
    """The steps of a path :func:`path_text` wrote."""
    return tuple(_unstep(part) for part in text.split("/")[1:]) if text else ()


def package_secret_paths(package: Package) -> list[str]:
    """The secret option paths of ``package`` as the service record keeps them.

    :raises PackageInvalid: when a secret's path cannot be known (see
        :func:`secret_problems`): Berth refuses to store values it could not hide.
    """
    problems = secret_problems(package.config_schema)
    if problems:
        raise PackageInvalid(
            f"{package.name}@{package.version} marks a secret option Berth cannot find",
            package=package.name, version=package.version,
            details=[{"path": "config.json#" + loc, "message": why} for loc, why in problems])
    return [path_text(p) for p in secret_paths(package.config_schema)]


def _mask_at(value: Any, path: tuple[str, ...], mask: Callable[[Any], Any]) -> Any:
    if not path:
        return mask(value) if value is not None else None
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        keys = list(value) if head == "*" else [head] if head in value else []
        for key in keys:
            value[key] = _mask_at(value[key], rest, mask)
    elif isinstance(value, list):
        if head == "*":
            indexes: Iterable[int] = range(len(value))
        else:
            indexes = [int(head)] if head.isdigit() and int(head) < len(value) else []
        for i in indexes:
            value[i] = _mask_at(value[i], rest, mask)
    return value


def apply_at_paths(options: Any, paths: Iterable[Sequence[str] | str],
                   change: Callable[[Any], Any]) -> Any:
    """A copy of ``options`` with ``change(value)`` at every path (text or steps)."""
    changed = copy.deepcopy(options)
    for path in paths:
        steps = path_parts(path) if isinstance(path, str) else tuple(path)
        changed = _mask_at(changed, steps, change)
    return changed


def values_at_paths(options: Any, paths: Iterable[Sequence[str] | str]) -> list[Any]:
    """Every non-null value found at ``paths`` in ``options``."""
    found: list[Any] = []

    def keep(value: Any) -> Any:
        found.append(value)
        return value

    apply_at_paths(options, paths, keep)
    return found


def mask_secrets(schema: Mapping[str, Any], options: Any,
                 paths: Iterable[Sequence[str] | str] | None = None) -> Any:
    """A copy of ``options`` with every secret value replaced by :data:`MASK`.

    The secret paths come from ``paths`` when given (a service record's own list),
    else from ``schema``.

    >>> mask_secrets({"properties": {"pw": {"type": "string", "x-secret": True}}},
    ...              {"pw": "hunter2", "port": 80})
    {'pw': '********', 'port': 80}
    """
    found = list(secret_paths(schema or {})) if paths is None else list(paths)
    return apply_at_paths(options, found, lambda _value: MASK)


def covers(secret: tuple[str, ...], parts: tuple[str, ...]) -> bool:
    """Whether the option at ``parts`` is (or is inside) the secret path ``secret``."""
    return len(parts) >= len(secret) and all(
        step in ("*", part) for step, part in zip(secret, parts, strict=False))
