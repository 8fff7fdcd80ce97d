"""Colour contrast of the store front's palette (WCAG AA: 4.5:1 for body text).

axe-core checks rendered pages in the browser tests; this checks the pairs the
stylesheet defines, so a palette change that breaks contrast fails fast.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CSS = Path(__file__).resolve().parents[3] / "server" / "storefront" / "static" / "berth.css"
PAIRS = [  # (foreground, background) as used together in the stylesheet
    ("--text", "--bg"),
    ("--text", "--surface"),
    ("--muted", "--surface"),
    ("--muted", "--bg"),
    ("--muted", "--surface-2"),
    ("--primary", "--surface"),
    ("--primary", "--bg"),
    ("#ffffff", "--primary"),
    ("#ffffff", "--primary-dark"),
    ("--primary-dark", "--primary-soft"),
    ("--ok", "--ok-soft"),
    ("--warn", "--warn-soft"),
    ("--bad", "--bad-soft"),
    ("#ffffff", "--bad"),
    ("#ffffff", "--ok"),
    ("#c5cfe6", "#111a2e"),
]


def palette() -> dict[str, str]:
    root = re.search(r":root\s*{([^}]*)}", CSS.read_text()).group(1)
    return dict(re.findall(r"(--[a-z0-9-]+):\s*(#[0-9a-fA-F]{6})", root))


def luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize(("fg", "bg"), PAIRS)
def test_text_colours_meet_wcag_aa(fg: str, bg: str) -> None:
    colours = palette()
    ratio = contrast(colours.get(fg, fg), colours.get(bg, bg))
    assert ratio >= 4.5, f"{fg} on {bg}: {ratio:.2f}:1"


def test_monogram_backgrounds_carry_white_letters() -> None:
    for colour in re.findall(r"\.hue-\d \{ background: (#[0-9a-f]{6}); \}", CSS.read_text()):
        assert contrast("#ffffff", colour) >= 4.5, colour
