"""One error root: every Berth error is a ``BerthError`` with ``code``, ``message``,
``details`` and ``hint``; the server maps its class family to a status in one table."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import catalog
import server
import worker
from catalog import errors as ce
from catalog.errors import BerthError
from server import errors as se
from worker import errors as we
from worker.store.crypto import DataKeyError

ROOT = Path(__file__).resolve().parents[2]


def _berth_modules() -> Iterator[str]:
    for package in (catalog, server, worker):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not info.name.endswith(("__main__", ".wsgi")):
                yield info.name


def _error_classes() -> list[type[BaseException]]:
    """Every exception class Berth defines that carries an error ``code``."""
    found: list[type[BaseException]] = []
    for name in _berth_modules():
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (isinstance(value, type) and issubclass(value, BaseException)
                    and value.__module__ == name and "code" in vars(value)):
                found.append(value)
    return found


def test_every_error_with_a_code_derives_from_the_one_root() -> None:
    classes = _error_classes()
    assert len(classes) > 40
    assert [c.__qualname__ for c in classes if not issubclass(c, BerthError)] == []


def test_the_three_roots_share_one_shape_and_one_keyword() -> None:
    problem = [{"path": "options/port", "message": "not a port"}]
    for error in (ce.OptionsInvalid("bad options", details=problem, hint="fix them"),
                  we.InvalidRequest("bad count", details=problem, hint="fix them"),
                  se.Invalid("bad field", details=problem, hint="fix them")):
        assert isinstance(error, BerthError)
        assert error.to_dict() == {"error": error.code, "message": error.message,
                                   "details": problem, "hint": "fix them"}
        assert str(error) == f"{error.message}\n  options/port: not a port"
    with pytest.raises(TypeError):
        ce.OptionsInvalid("bad", errors=problem)  # type: ignore[call-arg]


@pytest.mark.parametrize(("error", "status"), [
    (ce.PackageNotFound("x"), 404), (we.ServiceNotFound("x"), 404),
    (ce.SpecRefused("x"), 422), (we.InvalidRequest("x"), 422),
    (ce.VersionExists("x"), 409), (we.ConcurrentChange("x"), 409),
    (ce.PlacementError("x"), 409), (we.HostPathUnsafe("x"), 409),
    (ce.RepositoryError("x"), 503), (we.AgentUnreachable("x"), 503),
    (we.ImageUnavailable("x"), 503), (we.ContainerError("x"), 502),
    (DataKeyError("x"), 503), (we.WorkerError("x"), 409), (ce.CatalogError("x"), 409),
    (se.Invalid("x"), 422), (se.ApiError("x", status=418), 418),
    (ConnectionError("down"), 503), (RuntimeError("bug"), 500),
])
def test_each_family_has_its_status(error: BaseException, status: int) -> None:
    assert se.status_for(error) == status


def test_every_error_class_has_a_family_in_the_table() -> None:
    """Only the roots (and the test bed's error, never answered by a server) fall back
    to the root's status."""
    on_the_root = set()
    for cls in _error_classes():
        family = next(f for f, _ in se.STATUS if issubclass(cls, f))
        if family is BerthError and not issubclass(cls, se.ApiError):
            on_the_root.add(cls.__qualname__)
    assert on_the_root == {"BerthError", "CatalogError", "WorkerError", "TestbedError"}


def test_the_error_handler_does_not_import_auth() -> None:
    """``server.auth`` → ``context`` → ``operations`` → ``errors`` → ``auth`` was a
    circle; the 401 → login redirect is the store front's now."""
    tree = ast.parse((ROOT / "server" / "errors.py").read_text("utf-8"))
    imported = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for a in node.names}
    assert not {m for m in imported if m in ("auth", "server.auth") or m.endswith(".auth")}
