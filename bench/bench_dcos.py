"""DC/OS Universe: load the whole real corpus (every revision of 130 packages).

Target (2 cores): loading the corpus into a repository <= 2 s (cold: the first load
of the run; warm: the best of the next three). Also timed, for information: rendering
and converting the default options of every installable-looking version.
The corpus folder is ``BERTH_DCOS_CORPUS`` or ``shared/corpus/dcos-universe`` beside the
checkout.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

CORPUS = Path(os.environ.get("BERTH_DCOS_CORPUS") or
              Path(__file__).resolve().parents[2] / "shared" / "corpus" / "dcos-universe")
TARGET_S = 2.0


def _load_once() -> tuple[float, Any, list[Any]]:
    from catalog.dcos.loader import load_universe_dir

    started = time.perf_counter()
    repo, problems = load_universe_dir(CORPUS, name="universe", priority=100)
    return time.perf_counter() - started, repo, problems


def _render_all(repo: Any) -> tuple[float, int]:
    """Render and convert the defaults of every version without a static reason."""
    from catalog.dcos.convert import analyze_app
    from catalog.dcos.options import cosmos_defaults
    from catalog.dcos.render import render_marathon
    from catalog.errors import CatalogError

    started, count = time.perf_counter(), 0
    for package in repo.packages:
        if package.unsupported:
            continue
        try:
            app = render_marathon(package.template, cosmos_defaults(package.config_schema),
                                  package.resource)
        except CatalogError:
            continue
        analyze_app(app)
        count += 1
    return time.perf_counter() - started, count


def run() -> dict[str, Any]:
    """Load the corpus (cold, then warm), render the runnable-looking part; the figures."""
    if not (CORPUS / "packages").is_dir():
        return {"skipped": f"no corpus at {CORPUS} (set BERTH_DCOS_CORPUS)"}
    cold, repo, problems = _load_once()
    warm = min(_load_once()[0] for _ in range(3))
    rendered_s, rendered = _render_all(repo)
    return {
        "revision folders": sum(1 for _ in CORPUS.glob("packages/*/*/*")),
        "packages offered": len(repo.packages),
        "problems": len(problems),
        "load cold s": round(cold, 3),
        "load warm s": round(warm, 3),
        "target s": TARGET_S,
        "within target": cold <= TARGET_S and warm <= TARGET_S,
        "targets": f"load (cold and warm) <= {TARGET_S} s",
        "render+convert s": round(rendered_s, 3),
        "rendered": rendered,
    }


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value}")
