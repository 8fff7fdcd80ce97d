"""Rendering in child processes: a memory limit and a hard kill at the deadline (item 6).

The attacks here get past the in-process checks on purpose — the sandbox is given
limits wide enough to stand in for a gap in its checks — and the pool must still stop
them, while the test process (standing in for the server) does not pay for them.
"""

from __future__ import annotations

import resource
from collections.abc import Iterator

import pytest

from catalog import RenderError
from catalog.render import render_template
from catalog.render_pool import PoolSettings, RenderPool
from catalog.sandbox import Limits

# 100 MB strings, three kept: 300 MB, past the child's 200 MB.
BOMB = ("{% set a = 'x' * 100000000 %}{% set b = a ~ 'y' %}{% set c = b ~ 'z' %}"
        "{{ [a, b, c] | map('length') | sum }}")
MEMORY_MB = 200
WIDE = Limits(max_value=10**9, max_total=10**10)


@pytest.fixture(scope="module")
def pool() -> Iterator[RenderPool]:
    pool = RenderPool(PoolSettings(workers=1, memory_mb=MEMORY_MB))
    yield pool
    pool.close()


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_a_normal_render_gives_the_same_text_as_in_process(pool: RenderPool) -> None:
    template = '{"name": {{ service | tojson }}, "n": {{ options.n * 2 }}}'
    context = {"service": "web", "options": {"n": 21}}
    assert pool.render(template, context) == render_template(template, context)


def test_template_errors_come_back_as_the_same_render_error(pool: RenderPool) -> None:
    with pytest.raises(RenderError) as here:
        render_template("line one\n{{ nope }}\n", {})
    with pytest.raises(RenderError) as there:
        pool.render("line one\n{{ nope }}\n", {})
    assert there.value.message == here.value.message
    assert there.value.details == here.value.details == [
        {"path": "service.json.j2:2", "message": "UndefinedError: 'nope' is undefined"}]


def test_a_memory_bomb_is_refused_and_costs_the_server_nothing() -> None:
    pool = RenderPool(PoolSettings(workers=1, memory_mb=MEMORY_MB, limits=WIDE))
    before = _peak_rss_mb()
    try:
        with pytest.raises(RenderError) as info:
            pool.render(BOMB, {})
        assert info.value.message == (
            f"service.json.j2: the template exceeded the memory limit of {MEMORY_MB} MB")
        assert _peak_rss_mb() - before < 50  # the 300 MB would have been the child's
        assert pool.render("{{ 1 + 1 }}", {}) == "2"  # a fresh child took its place
    finally:
        pool.close()


def test_a_render_past_the_deadline_is_killed() -> None:
    """The sandbox is told to allow a minute; the pool kills the child after 0.3 s."""
    lax = Limits(seconds=60, max_steps=10**12)
    pool = RenderPool(PoolSettings(workers=1, limits=lax), kill_after=0.3)
    slow = "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}"
    try:
        with pytest.raises(RenderError) as info:
            pool.render(slow, {})
        assert info.value.message == (
            "service.json.j2: the template ran longer than 60 s and was stopped")
        assert pool.render("{{ 'still' }}", {}) == "still"
    finally:
        pool.close()


def test_the_sandbox_deadline_still_answers_first_with_its_line(pool: RenderPool) -> None:
    expression = " ~ ".join(["s.split(',')[0]"] * 400)
    template = "{% set s = 'ab,' * 8000 %}\n{{ " + expression + " }}"
    quick = RenderPool(PoolSettings(workers=1, limits=Limits(seconds=0.01)), kill_after=30)
    try:
        with pytest.raises(RenderError) as info:
            quick.render(template, {})
        assert info.value.message == "service.json.j2: the template ran longer than 0.01 s"
        assert info.value.details[0]["path"] == "service.json.j2:2"
    finally:
        quick.close()
