"""Bounds on checking and reporting what a client sent: sizes first, few problems,
short echoes.

A body may hold a million wrong items, and ``jsonschema`` builds each error's message
in full (the ``repr`` of the instance included). So:

- sizes and counts (``maxItems``, ``maxLength``, ``maxProperties``) are checked first,
  top-down, never descending into what is too big (:func:`size_problems`);
- collecting stops after :data:`MAX_PROBLEMS`, with a final note
  (:func:`first_problems`, :func:`more_problems`);
- every value or key a message quotes is cut to :data:`MAX_ECHO` characters
  (:func:`message_of`, :func:`short_value`, :func:`short_pointer`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from jsonschema import ValidationError

__all__ = ["MAX_PROBLEMS", "MAX_ECHO", "size_problems", "first_problems", "more_problems",
           "message_of", "short_value", "short_pointer", "cut_parts", "pointer"]

MAX_PROBLEMS = 50  # problems listed per document; the rest are summed up in one note
MAX_ECHO = 80  # characters of a value (or a key) quoted back in a message
MAX_MESSAGE = 400


def pointer(parts: Iterable[Any]) -> str:
    """An RFC 6901 JSON pointer: ``['a', 0, 'b/c']`` → ``/a/0/b~1c``."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def short_value(value: Any) -> str:
    """``repr(value)``, cut to :data:`MAX_ECHO` characters (ending in ``…``)."""
    if isinstance(value, str) and len(value) > MAX_ECHO:
        value = value[:MAX_ECHO]  # no repr of a megabyte to cut it afterwards
    text = repr(value)
    return text if len(text) <= MAX_ECHO else text[: MAX_ECHO - 1] + "…"


def short_pointer(parts: Iterable[Any]) -> str:
    """:func:`pointer` with each part cut to :data:`MAX_ECHO` characters (for messages:
    a key can be as long as the body)."""
    return pointer(cut_parts(parts))


def message_of(error: ValidationError, message: str | None = None) -> str:
    """``error``'s message (or ``message``) with the echoed instance cut to
    :data:`MAX_ECHO` characters, and the whole to :data:`MAX_MESSAGE`."""
    text = error.message if message is None else message
    if len(text) > MAX_ECHO and isinstance(error.instance, str | int | float | list | dict):
        whole = repr(error.instance)
        if len(whole) > MAX_ECHO and whole in text:
            text = text.replace(whole, short_value(error.instance))
    if len(text) > MAX_MESSAGE:
        text = text[: MAX_MESSAGE - 1] + "…"
    return text


def first_problems(errors: Iterable[Any], limit: int = MAX_PROBLEMS) -> tuple[list[Any], bool]:
    """At most ``limit`` of ``errors`` (consumed lazily) and whether there were more."""
    taken: list[Any] = []
    for error in errors:
        if len(taken) == limit:
            return taken, True
        taken.append(error)
    return taken, False


def more_problems(path: str, limit: int = MAX_PROBLEMS) -> dict[str, str]:
    """The note that ends a list cut at ``limit`` problems.

    (It does not count the rest: counting would cost what the cut saves.)
    """
    return {"path": path, "message": f"… and more problems (only the first {limit} "
                                     "are listed)"}


def cut_parts(parts: Iterable[Any]) -> list[Any]:
    """Path parts with each cut to :data:`MAX_ECHO` characters."""
    return [p if len(str(p)) <= MAX_ECHO else str(p)[: MAX_ECHO - 1] + "…" for p in parts]


_SIZES = (("maxItems", list, "items"), ("maxLength", str, "characters"),
          ("maxProperties", dict, "properties"))


def size_problems(schema: Any, instance: Any, where: Any = short_pointer, *,
                  limit: int = MAX_PROBLEMS) -> list[dict[str, str]]:
    """Values longer than their schema's ``maxItems``/``maxLength``/``maxProperties``,
    found top-down before any deep validation, never descending into one that is too
    long; ``where(parts)`` names a path. Follows ``properties``, ``items``,
    ``additionalProperties`` and local ``$ref``; other keywords are left to the full
    validation. At most ``limit`` problems, then a note.
    """
    found: list[dict[str, str]] = []
    stack: list[tuple[Any, Any, tuple[Any, ...]]] = [(schema, instance, ())]
    while stack:
        sub, value, parts = stack.pop()
        sub = _deref(schema, sub)
        if not isinstance(sub, Mapping):
            continue
        problem = _too_long(sub, value)
        if problem:
            if len(found) == limit:
                return found + [more_problems(where(()), limit)]
            found.append({"path": where(cut_parts(parts)), "message": problem})
            continue
        stack.extend(_children(sub, value, parts))
    return found


def _deref(root: Any, sub: Any, hops: int = 8) -> Any:
    """``sub`` with a local ``$ref`` (``#/a/b``) followed, a few hops at most."""
    while hops and isinstance(sub, Mapping) and isinstance(sub.get("$ref"), str) \
            and sub["$ref"].startswith("#/") and isinstance(root, Mapping):
        node: Any = root
        for raw in sub["$ref"][2:].split("/"):
            part = raw.replace("~1", "/").replace("~0", "~")
            node = node.get(part) if isinstance(node, Mapping) else None
        sub, hops = node, hops - 1
    return sub


def _too_long(sub: Mapping[str, Any], value: Any) -> str | None:
    for keyword, kind, unit in _SIZES:
        bound = sub.get(keyword)
        if isinstance(value, kind) and isinstance(bound, int) and len(value) > bound:
            return f"at most {bound} {unit} (got {len(value)})"
    return None


def _children(sub: Mapping[str, Any], value: Any, parts: tuple[Any, ...]
              ) -> Iterator[tuple[Any, Any, tuple[Any, ...]]]:
    if isinstance(value, list) and isinstance(sub.get("items"), Mapping):
        for i in range(len(value) - 1, -1, -1):
            yield sub["items"], value[i], (*parts, i)
    elif isinstance(value, dict):
        properties = sub.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        extra = sub.get("additionalProperties")
        if not isinstance(extra, Mapping):  # only the declared keys: O(schema), not O(body)
            keys = [k for k in properties if k in value]
        else:
            keys = list(value)
        for key in reversed(keys):
            yield properties.get(key, extra), value[key], (*parts, key)
