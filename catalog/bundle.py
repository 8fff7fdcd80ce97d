"""Package bundles: one package version as a ``.tar.gz`` with a manifest of digests.

A bundle holds the files of one version folder at its top level plus
``manifest.json``: ``{"bundleVersion": 1, "name", "version", "files": [{"path",
"size", "sha256"}]}``. :func:`build_bundle` makes one reproducibly (fixed times,
owners and modes). :func:`read_bundle` reads one that came from anybody, entirely in
memory, and trusts nothing: the compressed size, the decompressed size (counted while
it streams, so a gzip bomb stops at the cap), the file count and each file's size are
capped; only regular files and folders with plain relative names are accepted (no
links, devices, absolute paths or ``..``); every digest is checked and JSON nesting is
bounded. Every problem is collected and raised at once as :class:`BundleInvalid`.
Nothing touches the disk until a bundle is accepted; :func:`extracted` then writes it
into a fresh temporary folder that is removed afterwards.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from .errors import BundleInvalid, InvalidInput
from .loader import lint_package_dir, package_from_files
from .reading import loads_json

__all__ = ["BundleLimits", "build_bundle", "read_bundle", "extracted", "package_from_bundle",
           "lint_bundle", "json_depth", "MANIFEST", "BUNDLE_VERSION"]

MANIFEST = "manifest.json"
BUNDLE_VERSION = 1
_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_CHUNK = 64 * 1024
_STANDARD = {"package.json", "config.json", "resource.json", "service.json.j2", "README.md"}


@dataclass(frozen=True)
class BundleLimits:
    """The caps a bundle must stay under (bytes unless named otherwise)."""

    max_bundle: int = 16 * 1024 * 1024  # compressed body
    max_unpacked: int = 64 * 1024 * 1024  # the whole tar stream, decompressed
    max_file: int = 8 * 1024 * 1024  # one file
    max_files: int = 200  # files and folders
    max_depth: int = 4  # folder levels in a name
    max_json_depth: int = 64  # nesting of any .json file


class _Problems(list[dict[str, str]]):
    def add(self, path: str, message: str) -> None:
        self.append({"path": path, "message": message})


# building ------------------------------------------------------------------------------
def build_bundle(package_dir: str | os.PathLike[str]) -> bytes:
    """A reproducible bundle of one package version folder.

    :raises BundleInvalid: when the folder holds links or other non-regular files, or
        ``package.json`` does not name the package.
    """
    root = Path(package_dir)
    files = _collect(root)
    name, version = _identity(files.get("package.json"), str(root))
    entries = [{"path": p, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()}
               for p, d in sorted(files.items())]
    manifest = {"bundleVersion": BUNDLE_VERSION, "name": name, "version": version,
                "files": entries}
    files[MANIFEST] = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
    return _tar_gz(files)


def _collect(root: Path) -> dict[str, bytes]:
    """Every regular file under ``root`` by relative name (hidden names skipped).

    :raises BundleInvalid: on links, special files or names the reader would refuse.
    """
    if not root.is_dir():
        raise BundleInvalid(f"{root} is not a folder", path=str(root))
    problems, files = _Problems(), {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if any(part.startswith(".") for part in rel.split("/")):
            continue
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            problems.add(rel, "only regular files and folders can be bundled")
        elif path.is_file():
            if rel == MANIFEST or not _name_ok(rel, BundleLimits().max_depth):
                problems.add(rel, "file name not allowed in a bundle")
            else:
                files[rel] = path.read_bytes()
    if problems:
        raise BundleInvalid(f"{root} cannot be bundled", path=str(root), details=problems)
    return files


def _identity(raw: bytes | None, where: str) -> tuple[str, str]:
    """``name`` and ``version`` from package.json bytes.

    :raises BundleInvalid: when missing or unreadable.
    """
    try:
        meta = loads_json(raw or b"")
        return str(meta["name"]), str(meta["version"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleInvalid("package.json must be JSON with name and version", path=where,
                            details=[{"path": "package.json", "message": str(exc)}]) from exc


def _tar_gz(files: Mapping[str, bytes]) -> bytes:
    """A gzip'd tar of ``files`` with fixed metadata (same input, same bytes)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for folder in sorted({str(Path(p).parent) for p in files} - {"."}):
            tar.addfile(_info(folder, tarfile.DIRTYPE, 0, 0o755))
        for path, data in sorted(files.items()):
            tar.addfile(_info(path, tarfile.REGTYPE, len(data), 0o644), io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def _info(name: str, kind: bytes, size: int, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mode, info.mtime = kind, size, mode, 0
    info.uname = info.gname = ""
    return info


# reading -------------------------------------------------------------------------------
def read_bundle(data: bytes, *, limits: BundleLimits | None = None
                ) -> tuple[dict[str, bytes], dict[str, Any]]:
    """Validate a bundle in memory; returns ``(files, manifest)`` (manifest not in files).

    :raises BundleInvalid: with every problem found.
    """
    limits = limits or BundleLimits()
    problems = _Problems()
    if len(data) > limits.max_bundle:
        problems.add("", f"bundle is {len(data)} bytes; the limit is {limits.max_bundle}")
        _raise(problems)
    raw = _gunzip(data, limits.max_unpacked, problems)
    if raw is None:
        _raise(problems)
    files = _untar(raw, limits, problems)
    manifest = _manifest(files, limits, problems)
    for path, content in files.items():
        if path.endswith(".json") and path != MANIFEST:
            _check_json(path, content, limits.max_json_depth, problems)
    if problems:
        _raise(problems)
    files.pop(MANIFEST, None)
    return files, manifest


def _raise(problems: _Problems) -> NoReturn:
    raise BundleInvalid(f"the bundle was refused ({len(problems)} problem(s))",
                        details=problems, hint="build bundles with `berth package build DIR`")


def _gunzip(data: bytes, cap: int, problems: _Problems) -> bytes | None:
    """Decompress gzip, streaming, stopping as soon as the output passes ``cap``."""
    if data[:2] != b"\x1f\x8b":
        problems.add("", "not a gzip stream (a bundle is a .tar.gz)")
        return None
    inflater = zlib.decompressobj(wbits=31)
    out, pending = bytearray(), data
    try:
        while not inflater.eof:
            chunk = inflater.decompress(pending, _CHUNK)
            pending = inflater.unconsumed_tail
            out += chunk
            if len(out) > cap:
                problems.add("", f"bundle unpacks to more than {cap} bytes")
                return None
            if not chunk and not pending:
                break
    except zlib.error as exc:
        problems.add("", f"broken gzip stream: {exc}")
        return None
    if not inflater.eof:
        problems.add("", "the gzip stream is truncated")
        return None
    if inflater.unused_data.strip(b"\0"):
        problems.add("", "data after the end of the gzip stream")
        return None
    return bytes(out)


def _untar(raw: bytes, limits: BundleLimits, problems: _Problems) -> dict[str, bytes]:
    """Regular files of an in-memory tar by name, refusing every unsafe member."""
    files: dict[str, bytes] = {}
    seen: set[str] = set()
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            for count, member in enumerate(_members(tar), start=1):
                if count > limits.max_files:
                    problems.add("", f"more than {limits.max_files} entries in the bundle")
                    break
                name = _member_name(member, limits, problems, seen)
                if name is None or member.isdir():
                    continue
                if member.size > limits.max_file:
                    problems.add(name, f"file is {member.size} bytes; the limit is "
                                       f"{limits.max_file}")
                    continue
                handle = tar.extractfile(member)
                files[name] = handle.read() if handle else b""
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        problems.add("", f"broken tar archive: {exc}")
    return files


def _members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """Members one at a time (``getmembers`` would read a huge list before we count)."""
    while True:
        member = tar.next()
        if member is None:
            return
        yield member


def _member_name(member: tarfile.TarInfo, limits: BundleLimits, problems: _Problems,
                 seen: set[str]) -> str | None:
    """The member's safe name, or None (with a problem noted) when it must be refused."""
    name = member.name
    shown = name[:200]
    if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE):
        problems.add(shown, f"{_kind(member)} not allowed (only regular files and folders)")
        return None
    clean = name[:-1] if member.isdir() and name.endswith("/") else name
    if clean.startswith("./"):
        clean = clean[2:]
    if not _name_ok(clean, limits.max_depth):
        problems.add(shown, "unsafe or disallowed name (plain relative names of letters, "
                            "digits, '.', '_' and '-' only; no '..', no absolute paths)")
        return None
    if clean in seen:
        problems.add(shown, "appears twice in the bundle")
        return None
    seen.add(clean)
    return clean


def _kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return "symbolic link"
    if member.islnk():
        return "hard link"
    if member.ischr() or member.isblk():
        return "device file"
    if member.isfifo():
        return "FIFO"
    return f"member type {member.type!r}"


def _name_ok(name: str, max_depth: int) -> bool:
    """A relative name of plain parts, at most ``max_depth`` deep."""
    parts = name.split("/")
    return 0 < len(parts) <= max_depth and all(_PART.fullmatch(p) and ".." not in p
                                               for p in parts)


def _manifest(files: dict[str, bytes], limits: BundleLimits,
              problems: _Problems) -> dict[str, Any]:
    """Parse the manifest and check every digest and size against the files."""
    raw = files.get(MANIFEST)
    if raw is None:
        problems.add(MANIFEST, "missing (build bundles with `berth package build`)")
        return {}
    manifest = _check_json(MANIFEST, raw, limits.max_json_depth, problems)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        problems.add(MANIFEST, "must be an object with a 'files' list")
        return {}
    if manifest.get("bundleVersion") != BUNDLE_VERSION:
        problems.add(f"{MANIFEST}#/bundleVersion", f"must be {BUNDLE_VERSION}")
    listed = set()
    for i, entry in enumerate(manifest["files"]):
        listed.add(_check_entry(i, entry, files, problems))
    for path in sorted(set(files) - listed - {MANIFEST}):
        problems.add(path, "not listed in manifest.json")
    return manifest


def _check_entry(i: int, entry: Any, files: dict[str, bytes], problems: _Problems) -> str:
    """Check one manifest entry against the file it names; returns that name."""
    where = f"{MANIFEST}#/files/{i}"
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
        problems.add(where, "must be an object with path, size and sha256")
        return ""
    path: str = entry["path"]
    content = files.get(path)
    if content is None:
        problems.add(where, f"lists {path[:200]!r}, which is not in the bundle")
    elif entry.get("sha256") != hashlib.sha256(content).hexdigest():
        problems.add(path, "sha256 digest does not match manifest.json")
    elif entry.get("size") != len(content):
        problems.add(path, "size does not match manifest.json")
    return path


def _check_json(path: str, content: bytes, max_depth: int, problems: _Problems) -> Any:
    """Parse a JSON file after checking its nesting without recursion."""
    depth = json_depth(content)
    if depth > max_depth:
        problems.add(path, f"JSON nested {depth} levels deep; the limit is {max_depth}")
        return None
    try:
        return loads_json(content)
    except (ValueError, RecursionError) as exc:
        problems.add(path, f"not valid JSON: {exc}")
        return None


_JSON_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def json_depth(content: bytes) -> int:
    """The deepest nesting of arrays and objects in JSON text (strings skipped).

    A regular expression steps over whole strings, so the loop only visits strings
    and brackets, not every byte.
    """
    depth = deepest = 0
    for token in _JSON_TOKENS.finditer(content):
        char = token.group()[:1]
        if char in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        elif char in (b"]", b"}"):
            depth -= 1
    return deepest


# using an accepted bundle --------------------------------------------------------------
@contextlib.contextmanager
def extracted(files: Mapping[str, bytes], folder: tuple[str, ...] = ("package",)
              ) -> Iterator[Path]:
    """Write accepted files into a fresh private temporary folder, removed afterwards.

    ``folder`` names the sub-folders the files go in (e.g. ``(name, version)``, so a
    lint that compares folder names sees the usual layout); unsafe parts are replaced.
    """
    parts = [p if _PART.fullmatch(p) and ".." not in p else "package" for p in folder]
    with tempfile.TemporaryDirectory(prefix="berth-bundle-") as tmp:
        root = Path(tmp).joinpath(*parts)
        root.mkdir(mode=0o700, parents=True)
        for name, content in files.items():
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            with os.fdopen(os.open(target, flags, 0o600), "wb") as out:
                out.write(content)
        yield root


def lint_bundle(data: bytes, *, limits: BundleLimits | None = None
                ) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Read a bundle and lint its package as ``berth lint`` does.

    Returns ``(manifest, problems)``; problem paths are relative to the package
    (``config.json#/properties/port``).

    :raises BundleInvalid: when the bundle itself is unsafe or broken.
    """
    files, manifest = read_bundle(data, limits=limits)
    folder = (str(manifest.get("name") or "package"), str(manifest.get("version") or "0"))
    with extracted(files, folder) as root:
        problems = [_relative(p, root) for p in lint_package_dir(root)]
    meta = _check_json("package.json", files.get("package.json", b""), 64, _Problems())
    if isinstance(meta, dict):
        for key in ("name", "version"):
            if manifest.get(key) != meta.get(key):
                problems.append({"path": f"{MANIFEST}#/{key}",
                                 "message": f"does not match package.json ({meta.get(key)!r})"})
    return manifest, problems


def package_from_bundle(data: bytes, *, repository: str = "hosted",
                        limits: BundleLimits | None = None) -> Any:
    """Load the package of an accepted bundle, in memory (``path`` None).

    Top-level extra files (icons, screenshots) are kept in ``Package.files``.

    :raises BundleInvalid: when the bundle is unsafe or its files do not parse.
    """
    files, _manifest_ = read_bundle(data, limits=limits)
    problems = _Problems()
    docs = {}
    for name in ("package.json", "config.json", "resource.json"):
        docs[name] = _check_json(name, files.get(name, b"{}"), 64, problems)
    texts = {}
    for name in ("service.json.j2", "README.md"):
        try:
            texts[name] = files.get(name, b"").decode("utf-8")
        except UnicodeDecodeError:
            problems.add(name, "not UTF-8 text")
    if problems or not all(isinstance(d, dict) for d in docs.values()):
        problems.add("", "package files unreadable")
        _raise(problems)
    extra = {k: v for k, v in files.items() if k not in _STANDARD and "/" not in k}
    try:
        return package_from_files(docs["package.json"], docs["config.json"],
                                  docs["resource.json"], texts["service.json.j2"],
                                  texts["README.md"], repository=repository, path=None,
                                  files=extra)
    except (KeyError, TypeError, ValueError, InvalidInput) as exc:
        raise BundleInvalid(f"the bundle's package does not load: {exc}",
                            details=[{"path": "package.json", "message": str(exc)}]) from None


def _relative(problem: Mapping[str, Any], root: Path) -> dict[str, str]:
    """A problem whose path names a file of the temporary folder, made relative."""
    path = str(problem.get("path", ""))
    for prefix in (str(root) + os.sep, str(root)):
        if path.startswith(prefix):
            path = path[len(prefix):]
            break
    return {"path": path, "message": str(problem.get("message", ""))}
