"""The test bed (worker/testbed/) stays out of what the worker runs in production."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
WORKER = ROOT / "worker"


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_no_runtime_module_imports_the_testbed() -> None:
    offenders = []
    for path in sorted(WORKER.rglob("*.py")):
        if (WORKER / "testbed") in path.parents:
            continue
        bad = sorted(m for m in _imports(path)
                     if m == "worker.testbed" or m.startswith("worker.testbed."))
        if bad:
            offenders.append(f"{path.relative_to(ROOT)}: {', '.join(bad)}")
    assert not offenders, offenders


def test_importing_the_worker_loads_no_testbed_module() -> None:
    script = textwrap.dedent("""
        import importlib, pathlib, sys
        for path in sorted(pathlib.Path("worker").rglob("*.py")):
            name = ".".join(path.with_suffix("").parts).removesuffix(".__init__")
            if name.startswith("worker.testbed") or name == "worker.__main__":
                continue
            importlib.import_module(name)
        loaded = sorted(m for m in sys.modules if m.startswith("worker.testbed"))
        assert not loaded, loaded
        print("ok", len([m for m in sys.modules if m.startswith("worker.")]))
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok ")
