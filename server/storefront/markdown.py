"""Maintainer text (READMEs, notes) turned into safe HTML for the store front.

Markdown is rendered with markdown-it-py (CommonMark plus tables and strikethrough),
then sanitized with nh3 against an allow-list: no script, no event handlers, no
styles; links only to http, https, mailto or an anchor of the same page and always
``rel="noopener noreferrer nofollow"``; images only over https or from the package's
own files (served by the store front's file route). Nothing a maintainer writes can
run script in the page.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from urllib.parse import urlsplit

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

__all__ = ["render_markdown", "sanitize_html", "FileUrl"]

FileUrl = Callable[[str], str]
"""Maps a file name of the package to the URL the store front serves it at."""

ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl",
        "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li",
        "ol", "p", "pre", "s", "span", "strong", "sub", "summary", "sup", "table",
        "tbody", "td", "th", "thead", "tr", "ul",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"align"},
    "th": {"align"},
    "ol": {"start"},
    "code": {"class"},
}
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
DROPPED_WITH_CONTENT = frozenset({"script", "style", "iframe", "object", "embed", "template"})
LINK_REL = "noopener noreferrer nofollow"

_md = MarkdownIt("commonmark", {"html": True}).enable("table").enable("strikethrough")


def render_markdown(
    text: str | None,
    *,
    file_url: FileUrl | None = None,
    files: Collection[str] = (),
    heading_offset: int = 0,
) -> Markup:
    """Render maintainer Markdown to sanitized HTML, safe to put in a page.

    ``heading_offset`` moves headings down (``2``: ``# x`` becomes ``<h3>``) so that a
    README nests under the page's own headings.
    """
    if not text:
        return Markup("")
    html = _md.render(text)
    if heading_offset:
        html = _HEADING.sub(lambda m: f"<{m[1]}h{min(6, int(m[2]) + heading_offset)}", html)
    return sanitize_html(html, file_url=file_url, files=files)


_IMG_NO_ALT = re.compile(r"<img(?![^>]*\balt=)")
_HEADING = re.compile(r"<(/?)h([1-6])(?=[\s>])", re.IGNORECASE)


def sanitize_html(
    html: str, *, file_url: FileUrl | None = None, files: Collection[str] = ()
) -> Markup:
    """Clean an HTML fragment with the allow-list; relative images map to package files."""
    cleaned = nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_attribute_filter(file_url, frozenset(files)),
        url_schemes=set(LINK_SCHEMES),
        link_rel=LINK_REL,
        strip_comments=True,
    )
    # Images the maintainer left without alt text are decorative to a screen reader.
    cleaned = _IMG_NO_ALT.sub('<img alt=""', cleaned)
    return Markup(cleaned)  # noqa: S704 - nh3 output is the sanitized form


def _attribute_filter(file_url: FileUrl | None, files: frozenset[str]) -> Callable:
    """Build the nh3 hook that vets link targets, image sources and code classes."""

    def keep(tag: str, attr: str, value: str) -> str | None:
        if tag == "a" and attr == "href":
            return safe_link(value)
        if tag == "img" and attr == "src":
            return safe_image(value, file_url, files)
        if tag == "code" and attr == "class":
            return value if value.startswith("language-") and value.isprintable() else None
        return value

    return keep


def safe_link(href: str) -> str | None:
    """Keep ``href`` only when it is http(s), mailto or a same-page anchor."""
    href = href.strip()
    if href.startswith("#"):
        return href
    scheme = urlsplit(href).scheme.lower()
    return href if scheme in LINK_SCHEMES else None


def safe_image(src: str, file_url: FileUrl | None, files: frozenset[str]) -> str | None:
    """Keep ``src`` when it is https or names one of the package's own files."""
    src = src.strip()
    parts = urlsplit(src)
    if parts.scheme.lower() == "https" and parts.netloc:
        return src
    if parts.scheme or parts.netloc or file_url is None:
        return None
    name = parts.path.removeprefix("./")
    return file_url(name) if name in files else None
