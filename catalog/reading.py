"""Reading package files from disk: bounded, no symbolic links, read ahead in a thread;
and parsing JSON strictly.

:func:`loads_json` is the one JSON parser for package files, bundles and indexes: it
refuses ``NaN``, ``Infinity`` and numbers that overflow to infinity (``1e999999``),
which Python's ``json`` accepts and later writes back as non-standard ``Infinity``.

Used by ``catalog.loader``. Raw ``os`` calls relative to an open folder, because this
runs 250,000 times for a large repository and ``open()`` with full paths costs several
times more; on large repositories a second thread reads while the loader parses.
"""

from __future__ import annotations

import errno
import json
import math
import os
import queue
import re
import threading
from collections.abc import Iterator
from typing import Any

from .errors import Problem

__all__ = ["LIMITS", "FILES", "REQUIRED", "read_folder", "read_ahead", "loads_json"]

LIMITS = {"json": 256 * 1024, "template": 64 * 1024, "readme": 256 * 1024,
          "image": 2 * 1024 * 1024}
FILES = {"package.json": "json", "config.json": "json", "resource.json": "json",
         "service.json.j2": "template", "README.md": "readme"}
REQUIRED = ("package.json", "resource.json", "service.json.j2")
OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)


class _NotFinite(ValueError):
    """A number JSON cannot carry; turned into a ``JSONDecodeError`` with its place."""

    def __init__(self, literal: str) -> None:
        super().__init__(literal)
        self.literal = literal


def _refuse_constant(name: str) -> Any:
    raise _NotFinite(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(text)
    return value


def loads_json(data: bytes | str) -> Any:
    """Parse JSON text, refusing numbers that are not finite.

    :raises json.JSONDecodeError: for malformed JSON, and for ``NaN``, ``Infinity``,
        ``-Infinity`` or a number too large for a float, with its line and column
        (so every caller's existing handling names the file and place).
    :raises UnicodeDecodeError: for bytes that are not text.
    :raises RecursionError: for nesting too deep for the parser.
    """
    text = data.decode(json.detect_encoding(data)) if isinstance(data, bytes) else data
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except _NotFinite as exc:
        shown = exc.literal if len(exc.literal) <= 40 else exc.literal[:37] + "..."
        raise json.JSONDecodeError(f"{shown} is not valid JSON: numbers must be finite",
                                   text, _position(text, exc.literal)) from None


def _position(text: str, literal: str) -> int:
    """Where ``literal`` first stands outside a string in ``text`` (0 if not found)."""
    tokens = re.compile(r'"(?:[^"\\]|\\.)*"|' + re.escape(literal), re.DOTALL)
    for found in tokens.finditer(text):
        if not found.group().startswith('"'):
            return found.start()
    return 0


def _problem(path: str, message: str) -> Problem:
    return {"path": path, "message": message}


def _read_file(name: str, limit: int, folder_fd: int) -> bytes:
    """Up to ``limit + 1`` bytes of a regular file, symbolic links refused."""
    fd = os.open(name, OPEN_FLAGS, dir_fd=folder_fd)
    try:
        return os.read(fd, limit + 1)
    finally:
        os.close(fd)


def read_folder(folder: str, shown: str, problems: list[Problem]) -> dict[str, bytes]:
    """The raw bytes of each known file present in ``folder``."""
    try:
        folder_fd = os.open(folder, DIR_FLAGS)
    except OSError as exc:
        problems.append(_problem(shown, f"not a readable folder ({exc.strerror})"))
        return {}
    try:
        return _read_all(folder_fd, shown, problems)
    finally:
        os.close(folder_fd)


def _read_all(folder_fd: int, shown: str, problems: list[Problem]) -> dict[str, bytes]:
    raw: dict[str, bytes] = {}
    for name, kind in FILES.items():
        try:
            data = _read_file(name, LIMITS[kind], folder_fd)
        except FileNotFoundError:
            if name in REQUIRED:
                problems.append(_problem(f"{shown}/{name}", "file is missing"))
            continue
        except OSError as exc:
            reason = "is a symbolic link" if exc.errno == errno.ELOOP else \
                f"cannot be read ({exc.strerror})"
            problems.append(_problem(f"{shown}/{name}", f"file {reason}"))
            continue
        if len(data) > LIMITS[kind]:
            problems.append(_problem(f"{shown}/{name}",
                                     f"file is larger than {LIMITS[kind] // 1024} KiB"))
            continue
        raw[name] = data
    return raw


def read_ahead(folders: list[str]) -> Iterator[tuple[dict[str, bytes], list[Problem]]]:
    """The files of each folder, read by a second thread while this one parses.

    File reads release the GIL, so on a large repository the kernel's work overlaps
    with JSON parsing and validation instead of adding to it.
    """
    if len(folders) < 256:
        for folder in folders:
            problems: list[Problem] = []
            yield read_folder(folder, folder, problems), problems
        return
    batches: queue.Queue[list[Any] | None] = queue.Queue(maxsize=32)
    stop = threading.Event()
    failed: list[BaseException] = []

    def hand_over(batch: list[Any] | None) -> None:
        while not stop.is_set():
            try:
                batches.put(batch, timeout=0.1)
                return
            except queue.Full:
                continue

    def reader() -> None:
        try:
            for start in range(0, len(folders), 128):
                batch = []
                for folder in folders[start:start + 128]:
                    problems: list[Problem] = []
                    batch.append((read_folder(folder, folder, problems), problems))
                hand_over(batch)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the loading thread
            failed.append(exc)
        finally:
            hand_over(None)

    thread = threading.Thread(target=reader, name="berth-read-ahead", daemon=True)
    thread.start()
    try:
        while (batch := batches.get()) is not None:
            yield from batch
        if failed:
            raise failed[0]
    finally:
        stop.set()
        thread.join(timeout=1)
