"""The server's layers import in one direction: views → application → core.

The application modules (``server/application/``) hold the domain logic of the API
and the store front, so they import no Flask and no view module; the store front
calls the application layer, never an API module.
"""

from __future__ import annotations

import ast
from pathlib import Path

SERVER = Path(__file__).resolve().parents[3] / "server"


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved to ``server.…``."""
    package = ".".join(path.relative_to(SERVER.parent).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(filter(None, [base, node.module or ""]))
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _offending(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(f"{path.relative_to(SERVER.parent)} imports {name}"
                  for path in (SERVER / folder).rglob("*.py")
                  for name in _imports(path)
                  if name.split(".")[0] in forbidden or name.startswith(forbidden))


def test_the_application_layer_imports_no_flask_and_no_view() -> None:
    assert _offending("application", ("flask", "werkzeug", "server.api",
                                      "server.storefront")) == []


def test_the_store_front_imports_no_api_module() -> None:
    assert _offending("storefront", ("server.api",)) == []


def test_no_view_reaches_past_the_application_layer_to_write_state() -> None:
    """Views call ``server.application``; none calls the write path or the store."""
    found = []
    for folder in ("api", "storefront"):
        for path in (SERVER / folder).rglob("*.py"):
            text = path.read_text()
            for needle in (".store.repositories", ".store.hosted", ".store.owners",
                           ".operations"):
                if needle in text:
                    found.append(f"{path.relative_to(SERVER.parent)}: {needle}")
    assert found == []
