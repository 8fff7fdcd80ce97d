"""Berth's modules import each other in one direction only: no import circles.

The graph is read from the source with :mod:`ast`, not by importing it, so a circle
held together by a function-level import (which Python tolerates at run time) counts
as much as one at the top of a file. Imports under ``if TYPE_CHECKING:`` are left out:
they never run, and a type annotation is not a dependency of behaviour.

Importing ``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``; those edges count,
except towards the importing module's own parent packages (a package's ``__init__``
re-exporting its submodules is how a package offers its public names, not a circle).
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("catalog", "server", "worker", "bench")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def berth_modules() -> dict[str, Path]:
    """Every module of Berth's packages, by dotted name."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, except those under ``if TYPE_CHECKING:``."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute name ``from <node.module> import …`` refers to inside ``module``."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _targets(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The Berth modules ``module`` imports (directly named or submodules imported)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    named: set[str] = set()
    for node in _import_nodes(tree):
        if isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
            continue
        target = _absolute(module, is_package, node)
        named.add(target)
        named.update(f"{target}.{alias.name}" for alias in node.names
                     if f"{target}.{alias.name}" in known)
    return {name for name in _with_parents(named, module) if name in known and name != module}


def _with_parents(names: set[str], module: str) -> set[str]:
    """Each name plus the packages importing it runs, minus ``module``'s own parents."""
    own_parents = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
    found: set[str] = set()
    for name in names:
        parts = name.split(".")
        found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return found - own_parents


def import_graph() -> dict[str, set[str]]:
    """module → the Berth modules it imports."""
    known = berth_modules()
    return {module: _targets(module, path, known) for module, path in known.items()}


def _components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def _path(graph: dict[str, set[str]], start: str, goal: str, inside: set[str]) -> list[str]:
    """The shortest import path ``start`` → … → ``goal`` among ``inside`` (BFS)."""
    came: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            break
        for child in sorted(graph[node] & inside):
            if child not in came:
                came[child] = node
                queue.append(child)
    path: list[str] = []
    step: str | None = goal
    while step is not None:
        path.append(step)
        step = came[step]
    return path[::-1]


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Circles covering every import edge inside each component, modules in order.

    For each edge ``a → b`` inside a component not covered yet, the circle is
    ``a → b → … → a`` along the shortest way back, so every edge that keeps a
    component together is shown at least once.
    """
    found: list[list[str]] = []
    for component in _components(graph):
        inside = set(component)
        covered: set[tuple[str, str]] = set()
        for start in component:
            for child in sorted(graph[start] & inside):
                if (start, child) in covered:
                    continue
                circle = [start] + _path(graph, child, start, inside)
                covered.update(zip(circle, circle[1:], strict=False))
                found.append(circle)
    return found


def test_graph_sees_relative_function_level_and_package_imports(tmp_path: Path) -> None:
    """The walker counts what a circle can hide behind: nested and relative imports."""
    tree = ast.parse("from typing import TYPE_CHECKING\n"
                     "if TYPE_CHECKING:\n    from . import hidden\n"
                     "def f():\n    from .dcos import options\n    import worker.x\n")
    names = [_absolute("catalog.options", False, n) if isinstance(n, ast.ImportFrom)
             else n.names[0].name for n in _import_nodes(tree)]
    assert sorted(names) == ["catalog.dcos", "typing", "worker.x"]
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c", "a"]]
    assert _with_parents({"catalog.dcos.options"}, "catalog.loader") == {
        "catalog.dcos", "catalog.dcos.options"}


def test_no_import_circles_among_berth_modules() -> None:
    """Any circle among Berth's modules fails, each shown as ``a → b → … → a``."""
    found = circles(import_graph())
    assert not found, "import circles:\n" + "\n".join(" → ".join(c) for c in found)


RUNTIME_PACKAGES = ("catalog", "server", "worker")


def _function_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Imports inside a function body (``if TYPE_CHECKING:`` blocks left out)."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield from _import_nodes(ast.Module(body=node.body, type_ignores=[]))


def _has_reason(lines: list[str], node: ast.stmt) -> bool:
    """A comment on the import's line or on the line just above it."""
    here = lines[node.lineno - 1]
    above = lines[node.lineno - 2].strip() if node.lineno > 1 else ""
    return "#" in here or above.startswith("#")


def test_function_level_imports_say_why() -> None:
    """An import inside a function carries a comment saying why it is not at the top."""
    found = []
    for module, path in sorted(berth_modules().items()):
        if not module.startswith(RUNTIME_PACKAGES):
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        tree = ast.parse("\n".join(lines), filename=str(path))
        found.extend(f"{path.relative_to(ROOT)}:{node.lineno}" for node in
                     {id(n): n for n in _function_imports(tree)}.values()
                     if not _has_reason(lines, node))
    assert not found, "function-level imports without a reason:\n" + "\n".join(found)


def _imported_names(node: ast.Try) -> set[str]:
    names: set[str] = set()
    for inner in _import_nodes(ast.Module(body=node.body, type_ignores=[])):
        if isinstance(inner, ast.Import):
            names.update(alias.name for alias in inner.names)
        else:
            names.add("." if inner.level else inner.module or "")
    return names


def _catches_import_error(node: ast.Try) -> bool:
    for handler in node.handlers:
        caught = handler.type
        kinds = caught.elts if isinstance(caught, ast.Tuple) else [caught]
        if any(isinstance(k, ast.Name) and k.id in ("ImportError", "ModuleNotFoundError")
               for k in kinds):
            return True
    return False


def test_no_import_error_fallback_for_berths_own_modules() -> None:
    """Berth's own modules always ship with it: importing them never needs a fallback."""
    found = []
    for module, path in sorted(berth_modules().items()):
        if not module.startswith(RUNTIME_PACKAGES):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Try) and _catches_import_error(node):
                own = {n for n in _imported_names(node)
                       if n == "." or n.split(".")[0] in PACKAGES}
                if own or _imports_by_name(node):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {sorted(own)}")
    assert not found, "ImportError fallbacks for Berth's own modules:\n" + "\n".join(found)


def _imports_by_name(node: ast.Try) -> bool:
    """``importlib.import_module("worker.x")`` inside the ``try``."""
    for call in ast.walk(ast.Module(body=node.body, type_ignores=[])):
        if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                and call.func.attr == "import_module" and call.args
                and isinstance(call.args[0], ast.Constant)
                and str(call.args[0].value).split(".")[0] in PACKAGES):
            return True
    return False
