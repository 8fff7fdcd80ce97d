"""The built distribution carries what the server needs outside a checkout: the
store front's templates and assets and the catalog's JSON Schemas (the container
image installs the wheel, not the source tree)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA_DIRS = ("server/storefront/templates", "server/storefront/static", "catalog/schemas")


@pytest.mark.timeout(300)
def test_the_wheel_ships_every_template_asset_and_schema(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--wheel-dir", str(tmp_path), str(ROOT)],
                   check=True, cwd=tmp_path, capture_output=True)
    wheels = list(tmp_path.glob("berth-*.whl"))
    assert len(wheels) == 1, wheels
    shipped = set(zipfile.ZipFile(wheels[0]).namelist())
    wanted = {str(p.relative_to(ROOT)) for d in DATA_DIRS for p in (ROOT / d).rglob("*")
              if p.is_file() and "__pycache__" not in p.parts}
    assert any(w.endswith(".html") for w in wanted) and any(w.endswith(".json") for w in wanted)
    assert sorted(wanted - shipped) == []
