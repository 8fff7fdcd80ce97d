"""The template limits hold inside one expression and on method results (item 6).

Each test performs an attack that used to pass the in-process limits and shows it is
refused with a clear :class:`RenderError`.
"""

from __future__ import annotations

import pytest

from catalog import RenderError
from catalog.render import render_template
from catalog.sandbox import Limits


def test_the_deadline_fires_inside_one_long_expression() -> None:
    """400 ``s.split(',')[0]`` calls in one expression: one template line, so the line
    tracer alone never looked at the clock."""
    expression = " ~ ".join(["s.split(',')[0]"] * 400)
    template = "{% set s = 'ab,' * 8000 %}{{ " + expression + " }}"
    with pytest.raises(RenderError) as info:
        render_template(template, {}, limits=Limits(seconds=0.01))
    assert "longer than 0.01 s" in info.value.message


def test_the_call_budget_counts_calls_inside_one_expression() -> None:
    expression = " ~ ".join(["'a'.upper()"] * 300)
    with pytest.raises(RenderError) as info:
        render_template("{{ " + expression + " }}", {}, limits=Limits(max_steps=100))
    assert "more than 100 steps" in info.value.message


def test_a_split_into_too_many_pieces_is_refused() -> None:
    with pytest.raises(RenderError) as info:
        render_template("{% set s = ',' * 900000 %}{{ s.split(',') | length }}", {})
    assert "split() would make more than 10000 pieces" in info.value.message


@pytest.mark.parametrize("method", ["split()", "rsplit(',')", "splitlines()"])
def test_every_split_method_is_bounded_in_count(method: str) -> None:
    template = "{% set s = 'a,\\n ' * 20000 %}{{ s." + method + " | length }}"
    with pytest.raises(RenderError) as info:
        render_template(template, {})
    assert "would make more than 10000 pieces" in info.value.message


def test_retained_method_results_are_charged_to_the_render_budget() -> None:
    """Twenty retained splits of a big string: each result counts against max_total."""
    sets = "".join(f"{{% set r{i} = s.split(',') %}}" for i in range(20))
    template = "{% set s = ('x' * 99 ~ ',') * 9000 %}" + sets + "{{ r0 | length }}"
    with pytest.raises(RenderError) as info:
        render_template(template, {}, limits=Limits(max_total=5_000_000))
    assert "more than 5000000 characters/items in total" in info.value.message


def test_a_method_result_larger_than_a_value_is_refused() -> None:
    with pytest.raises(RenderError) as info:
        render_template("{% set u = ('ß' * 600000).upper() %}ok", {})
    assert "the result of upper() would exceed 1000000" in info.value.message


def test_bounded_methods_still_give_their_usual_results() -> None:
    template = ("{{ 'a,b,c'.split(',') }} {{ 'a b  c'.split() }} {{ 'a,b,c'.rsplit(',', 1) }}"
                " {{ 'x\\ny'.splitlines() }} {{ 'a,b'.split(',', 5) }}"
                " {{ ' Hi '.strip().lower() }}")
    assert render_template(template, {}) == (
        "['a', 'b', 'c'] ['a', 'b', 'c'] ['a,b', 'c'] ['x', 'y'] ['a', 'b'] hi")


def test_a_split_with_wrong_arguments_is_the_usual_type_error() -> None:
    with pytest.raises(RenderError) as info:
        render_template("{{ 'a,b'.split(',', 1, 2) }}", {})
    assert "TypeError" in info.value.message
