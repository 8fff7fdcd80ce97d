"""How service records are shown: secret values masked from the record's own paths.

Views never open a sealed value (``worker.store.crypto``) and never ask the catalog
which options are secret: the record says (``secret_paths``). A record from before
records kept their paths shows every option value masked. A mask sent back (a form
filled from a view) means "unchanged", never a new value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from catalog.errors import SpecRefused
from catalog.options import MASK, apply_at_paths, mask_secrets
from catalog.spec import secret_leaks, secret_texts
from worker.store.crypto import map_sealed

__all__ = ["masked_record", "mask_all", "unmasked", "union", "refuse_leaks"]


def masked_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """A service or generation record with secret option values masked.

    The secret paths are the record's own, written at install and at each upgrade
    from the package actually used; the catalog is never asked again, so a package
    published later under the same name and version changes nothing. Sealed values
    show as the mask; they are never opened for a view.
    """
    record = dict(record)
    if "generated_secrets" in record:  # the values Berth made: their paths show, never them
        record["generated_secrets"] = {path: MASK for path in record["generated_secrets"] or {}}
    options = record.get("options") or {}
    if "secret_paths" not in record:  # written before records kept their paths
        record["options"] = mask_all(options)
        if record.get("spec"):
            record["spec"] = _mask_spec_all(record["spec"])
        return record
    paths = list(record.get("secret_paths") or [])
    record["options"] = mask_secrets({}, map_sealed(options, _to_mask), paths)
    if record.get("spec"):
        record["spec"] = map_sealed(record["spec"], _to_mask)
    return record


def _to_mask(_sealed: Any) -> str:
    return MASK


def mask_all(options: Any) -> Any:
    """Every leaf value masked (a record that does not say which values are secret)."""
    if isinstance(options, Mapping):
        return {k: mask_all(v) for k, v in options.items()}
    if isinstance(options, list):
        return [mask_all(v) for v in options]
    return MASK if options is not None else None


def _mask_spec_all(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Every ``env``/``labels`` value, ``command`` and ``args`` item masked."""
    masked = dict(map_sealed(spec, _to_mask))
    for key in ("env", "labels"):
        if isinstance(masked.get(key), dict):
            masked[key] = {k: MASK for k in masked[key]}
    if masked.get("command"):
        masked["command"] = MASK
    if isinstance(masked.get("args"), list):
        masked["args"] = [MASK for _ in masked["args"]]
    return dict(masked)


def unmasked(options: Mapping[str, Any], service: Mapping[str, Any],
              paths: Sequence[str]) -> dict[str, Any]:
    """``options`` without the mask where a view showed one (a form sent back as shown):
    the mask means "unchanged", never the new value. Everywhere for a record that does
    not say which values are secret (its views mask every value)."""
    if "secret_paths" not in service:
        where: Sequence[str] | None = None
    else:
        where = union(paths, service.get("secret_paths"))
    return cast(dict[str, Any], _drop_mask(dict(options), where))


def _drop_mask(value: Any, paths: Sequence[str] | None) -> Any:
    if paths is not None:
        gone = object()
        marked = apply_at_paths(value, paths, lambda v: gone if v == MASK else v)
        return _drop_mask_marks(marked, gone)
    if isinstance(value, Mapping):
        return {k: _drop_mask(v, None) for k, v in value.items() if v != MASK}
    return value


def _drop_mask_marks(value: Any, gone: object) -> Any:
    if isinstance(value, Mapping):
        return {k: _drop_mask_marks(v, gone) for k, v in value.items() if v is not gone}
    if isinstance(value, list):
        return [_drop_mask_marks(v, gone) for v in value if v is not gone]
    return value


def union(paths: Sequence[str], more: Any) -> list[str]:
    return sorted(set(paths) | set(more or ()))


def refuse_leaks(package: Any, spec: Mapping[str, Any], options: Any,
                  paths: Sequence[str]) -> None:
    """Refuse a spec that puts a secret option's value where it cannot stay sealed.

    :raises SpecRefused: naming each such spec field.
    """
    leaks = secret_leaks(spec, secret_texts(options, paths))
    if leaks:
        raise SpecRefused(f"{package.name}@{package.version} puts a secret option's value "
                          "in a spec field Berth cannot keep sealed", package=package.name,
                          version=package.version, details=leaks)
