"""Berth's benchmarks: ``python -m bench [name...]`` runs ``bench/bench_<name>.py``.

Each module offers ``run() -> dict`` of figures (and states its targets in its
docstring). Figures are recorded in ``bench/RESULTS.md``; speed targets live here,
never in the tests.
"""
