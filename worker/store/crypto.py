"""Secret option values sealed at rest with the data key (``BERTH_DATA_KEY``).

A service record and every generation keep each secret option value, and each spec
string that holds one (``env``/``labels`` values, ``command``, ``args`` items), as
``{"$sealed": "<Fernet token>"}``: AES-128-CBC with HMAC-SHA256 from ``cryptography``,
so neither Redis, its AOF nor an RDB dump ever holds the text. The server seals when
it writes; it opens the values in memory only to merge old options into an upgrade;
a worker opens them only when it builds a container's environment and command.

``BERTH_DATA_KEY`` holds one or more Fernet keys, comma-separated, newest first.
Sealing uses the first; opening tries each (:class:`cryptography.fernet.MultiFernet`),
so a new key can be put in front, every record re-sealed with it
(``python -m worker rotate-data-key``, :func:`rotate_store`), and the old key then
removed. Views never open a sealed value: they show :data:`catalog.options.MASK`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar, cast

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from ..errors import WorkerError
from ..records import JSON
from .base import Tx

if TYPE_CHECKING:  # the Store facade imports the sub-stores; this module sits beside them
    from . import Store

__all__ = ["DataKeys", "DataKeyError", "SEALED", "is_sealed", "has_sealed", "map_sealed",
           "generate_key", "rotate_store"]

SEALED = "$sealed"
DATA_KEY_VARIABLE = "BERTH_DATA_KEY"


class DataKeyError(WorkerError):
    """The data key is missing, malformed, or not the one a value was sealed with."""

    code = "data_key_error"
    status = 503


T = TypeVar("T")

def generate_key() -> str:
    """A new random Fernet key (URL-safe base64 text)."""
    return Fernet.generate_key().decode("ascii")


def is_sealed(value: object) -> bool:
    """Whether ``value`` is a sealed value (``{"$sealed": "<token>"}``)."""
    return isinstance(value, Mapping) and set(value) == {SEALED} and isinstance(
        value[SEALED], str)


def map_sealed(tree: T, change: Callable[[Mapping[str, str]], object]) -> T:
    """A copy of ``tree`` with every sealed value replaced by ``change(sealed)``.

    The copy has the tree's shape: a sealed value stands for the value it holds.
    """
    return cast(T, _map_sealed(tree, change))


def _map_sealed(tree: object, change: Callable[[Mapping[str, str]], object]) -> object:
    if isinstance(tree, Mapping):
        if is_sealed(tree):
            return change(tree)
        return {k: _map_sealed(v, change) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_map_sealed(v, change) for v in tree]
    return copy.deepcopy(tree)


def has_sealed(tree: object) -> bool:
    """Whether any sealed value is in ``tree``."""
    if is_sealed(tree):
        return True
    if isinstance(tree, Mapping):
        return any(has_sealed(v) for v in tree.values())
    if isinstance(tree, list):
        return any(has_sealed(v) for v in tree)
    return False


class DataKeys:
    """The data keys, newest first: seal with the newest, open with any."""

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        if not keys:
            raise DataKeyError(f"{DATA_KEY_VARIABLE} holds no key")
        fernets = []
        for index, key in enumerate(keys):
            try:
                fernets.append(Fernet(key))
            except (ValueError, TypeError):
                raise DataKeyError(
                    f"{DATA_KEY_VARIABLE}: key {index + 1} is not a Fernet key (32 bytes "
                    "of URL-safe base64)", hint="make one with `python -m worker "
                    "new-data-key`") from None
        self._keys = MultiFernet(fernets)

    @classmethod
    def from_setting(cls, text: str | None) -> DataKeys | None:
        """The keys in a ``BERTH_DATA_KEY`` value (comma-separated), None when empty.

        :raises DataKeyError: when a key is malformed.
        """
        parts = [p.strip() for p in (text or "").split(",") if p.strip()]
        return cls(parts) if parts else None

    def seal(self, value: JSON) -> JSON:
        """``value`` (any JSON value) sealed; a sealed or null value stays as it is."""
        if value is None or is_sealed(value):
            return value
        token = self._keys.encrypt(json.dumps(value, separators=(",", ":")).encode())
        return {SEALED: token.decode("ascii")}

    def open(self, sealed: Mapping[str, str]) -> JSON:
        """The value a sealed value holds.

        :raises DataKeyError: when none of the keys sealed it.
        """
        try:
            value: JSON = json.loads(self._keys.decrypt(sealed[SEALED].encode("ascii")))
            return value
        except (InvalidToken, ValueError, TypeError):
            raise DataKeyError(
                "a secret value was sealed with a data key this process does not have",
                hint=f"put every key still in use in {DATA_KEY_VARIABLE}, newest first"
            ) from None

    def open_tree(self, tree: T) -> T:
        """A copy of ``tree`` with every sealed value opened (in memory only)."""
        return map_sealed(tree, self.open)

    def reseal(self, sealed: Mapping[str, str]) -> dict[str, str]:
        """The same value sealed with the newest key.

        :raises DataKeyError: when none of the keys sealed it.
        """
        try:
            return {SEALED: self._keys.rotate(sealed[SEALED].encode("ascii")).decode("ascii")}
        except (InvalidToken, ValueError, TypeError):
            raise DataKeyError(
                "a secret value was sealed with a data key this process does not have",
                hint=f"put every key still in use in {DATA_KEY_VARIABLE}, newest first"
            ) from None


def require_keys(keys: DataKeys | None, what: str) -> DataKeys:
    """``keys``, or a clear refusal naming what needed them.

    :raises DataKeyError: when no data key is configured.
    """
    if keys is None:
        raise DataKeyError(f"{DATA_KEY_VARIABLE} is not set: Berth cannot {what}",
                           hint="set it to a key from `python -m worker new-data-key` "
                                "(make run keeps one in var/data.key)")
    return keys


def rotate_store(store: Store, keys: DataKeys, names: Iterable[str] | None = None) -> int:
    """Re-seal every sealed value of every service and generation (and, unless
    ``names`` picks services, every registry password) with the newest key.

    Each service is rewritten in one transaction with its history, so a change made at
    the same time is never lost (the transaction is recomputed). Returns the number of
    services rewritten.

    :raises DataKeyError: when a value was sealed with a key not in ``keys``.
    """
    count = 0
    for name in list(names) if names is not None else store.services.names():
        if _rotate_service(store, keys, name):
            count += 1
    if names is None:   # every record: the registry passwords too
        count += _rotate_registries(store, keys)
    return count


def _rotate_registries(store: Store, keys: DataKeys) -> int:
    """Re-seal every registry password with the newest key; how many."""
    count = 0
    for record in store.registries.list():
        sealed = record.get("password")
        if is_sealed(sealed) and store.registries.replace_password(
                str(record["host"]), keys.reseal(cast(dict[str, str], sealed))):
            count += 1
    return count


def _rotate_service(store: Store, keys: DataKeys, name: str) -> bool:
    service_key = store.services.key(name)
    history_key = store.state.key("service", name, "generations")

    def change(tx: Tx) -> bool:
        service = tx.get(service_key)
        history = tx.get_list(history_key)
        if service is None or not (has_sealed(service) or has_sealed(history)):
            return False
        tx.put(service_key, map_sealed(service, keys.reseal))
        tx.call("delete", history_key)
        if history:
            tx.call("rpush", history_key, *[tx.dumps(map_sealed(entry, keys.reseal))
                                            for entry in history])
        return True

    return bool(store.state.transact(change))
