"""``docs/architecture.md`` stays true: its module tables and record shapes are checked.

- Each of the ``## catalog/``, ``## worker/`` and ``## server/`` sections has a module
  table whose first column names (in backticks) every module and subpackage of that
  folder, and nothing that is not there.
- Each record shown under "Records" has exactly the fields of its type in
  ``worker/records.py`` (required and optional alike).
"""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
PACKAGES = ("catalog", "worker", "server")
RECORDS = ("Service", "Generation", "Instance", "Deployment", "Agent")


def _sections(text: str) -> dict[str, str]:
    """The text under each ``## `` heading, by the heading's first word."""
    found: dict[str, str] = {}
    for block in re.split(r"^## ", text, flags=re.M)[1:]:
        heading, _, body = block.partition("\n")
        found[heading.split()[0]] = body
    return found


def documented_modules(section: str) -> set[str]:
    """The ``x.py`` and ``x/`` names in the first column of the section's tables."""
    names: set[str] = set()
    for line in section.splitlines():
        cells = line.split("|")
        if not line.startswith("|") or len(cells) < 3 or set(cells[1].strip()) <= {"-"}:
            continue
        names.update(n for n in re.findall(r"`([^`]+)`", cells[1])
                     if n.endswith((".py", "/")))
    return names


def real_modules(package: str) -> set[str]:
    """The modules and subpackages directly inside ``package``."""
    folder = ROOT / package
    modules = {p.name for p in folder.glob("*.py") if p.name != "__init__.py"}
    packages = {f"{p.parent.name}/" for p in folder.glob("*/__init__.py")}
    return modules | packages


@pytest.mark.parametrize("package", PACKAGES)
def test_module_table_names_every_module(package: str) -> None:
    section = _sections(DOC.read_text(encoding="utf-8"))[f"{package}/"]
    documented, real = documented_modules(section), real_modules(package)
    assert not real - documented, f"{package}/ modules missing from the table: " + ", ".join(
        sorted(real - documented))
    assert not documented - real, f"{package}/ table names modules that do not exist: " + (
        ", ".join(sorted(documented - real)))


def documented_fields(text: str, record: str) -> set[str]:
    """The top-level keys of the JSON shown after ``<record>:`` under "Records"."""
    records = text.split("### Records", 1)[1]
    found = re.search(rf"^{record}s?\b[^\n]*:\n```json\n(.*?)```", records, re.M | re.S)
    assert found is not None, f"no JSON example of the {record} record"
    keys: set[str] = set()
    depth = 0
    for token in re.finditer(r'[{}\[\]]|"([^"\\]*)"\s*:', found.group(1)):
        if token.group(0) in "{[":
            depth += 1
        elif token.group(0) in "}]":
            depth -= 1
        elif depth == 1:
            keys.add(token.group(1))
    return keys


@pytest.mark.parametrize("record", RECORDS)
def test_record_shapes_are_the_record_types(record: str) -> None:
    # imported here so the module tables are checked even while worker.records is absent
    from worker import records

    kind = getattr(records, record)
    fields = set(typing.get_type_hints(kind))
    shown = documented_fields(DOC.read_text(encoding="utf-8"), record)
    assert shown == fields, (f"{record}: missing from the doc {sorted(fields - shown)}, "
                             f"not in worker/records.py {sorted(shown - fields)}")


def test_the_checks_read_tables_and_json_as_written() -> None:
    """The readers above find what a table row and a record example hold."""
    table = "| module | offers |\n| --- | --- |\n| `a.py`, `b/` | `c.py` is not here |\n"
    assert documented_modules(table) == {"a.py", "b/"}
    text = ('### Records\n\nThing:\n```json\n{"a": 1, "b": {"c": 2}, "d": [{"e": 3}],\n'
            ' "f": "x"}\n```\n')
    assert documented_fields(text, "Thing") == {"a", "b", "d", "f"}
