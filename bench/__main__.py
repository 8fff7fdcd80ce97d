"""Run the benchmarks and print their figures: ``python -m bench [name...]``.

Without names every ``bench/bench_*.py`` runs, in name order, except the long ones in
``ON_REQUEST`` (``scale``: 1,000 hollow agents, up to 20 minutes), which run only when
named; a name is the part after ``bench_`` (``python -m bench catalog``). The machine
is printed first, so figures can be copied into ``bench/RESULTS.md`` as they are.
"""

from __future__ import annotations

import datetime
import importlib
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ON_REQUEST = {"scale"}


def available() -> list[str]:
    """The benchmark names found in this folder."""
    return sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {"date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "nproc": os.cpu_count(), "arch": platform.machine(),
            "python": platform.python_version(), "load average": os.getloadavg()}


def run_one(name: str) -> dict[str, Any]:
    """Import ``bench.bench_<name>`` and return its ``run()`` figures."""
    module = importlib.import_module(f"bench.bench_{name}")
    started = time.perf_counter()
    figures = dict(module.run())
    figures["wall s"] = round(time.perf_counter() - started, 2)
    return figures


def main(argv: list[str]) -> int:
    """Run the named benchmarks (all by default); 2 for an unknown name."""
    names = argv or [n for n in available() if n not in ON_REQUEST]
    unknown = [n for n in names if n not in available()]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; have: {', '.join(available())}",
              file=sys.stderr)
        return 2
    print("## machine")
    for key, value in machine().items():
        print(f"- {key}: {value}")
    for name in names:
        print(f"\n## {name}")
        for key, value in run_one(name).items():
            print(f"- {key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
