"""Maintainer Markdown renders to inert HTML: no script, handlers, or unsafe links."""

from __future__ import annotations

from server.storefront.markdown import render_markdown, sanitize_html

from .htmlcheck import Page

HOSTILE = """# Title

<script>alert('x')</script>

[click](javascript:alert(1)) and [data](data:text/html;base64,PHNjcmlwdD4=)
[vb](  JaVaScRiPt:alert(2))

<a href="https://ok.example/" onclick="alert(3)">ok</a>
<img src="x.png" onerror="alert(4)">
<img src="http://plain.example/a.png">
<img src="https://cdn.example/b.png" alt="b">
<iframe src="https://evil.example/"></iframe>
<div style="position:fixed" onmouseover="alert(5)">styled</div>
<svg onload="alert(6)"><circle r="1"/></svg>
<form action="https://evil.example/"><input name="q"></form>
"""


def files_url(name: str) -> str:
    return f"/packages/p/1.0.0/files/{name}"


def test_script_handlers_and_bad_links_are_removed() -> None:
    html = str(render_markdown(HOSTILE, file_url=files_url, files=["x.png"]))
    page = Page(html)
    assert page.unsafe() == []
    for tag in ("script", "iframe", "svg", "form", "input"):
        assert page.find(tag) == [], tag
    assert "alert('x')" not in html  # script content is dropped, not shown
    assert [a.attrs["href"] for a in page.find("a") if "href" in a.attrs] == ["https://ok.example/"]
    assert [e.attrs["src"] for e in page.find("img") if "src" in e.attrs] == [
        "/packages/p/1.0.0/files/x.png",
        "https://cdn.example/b.png",
    ]
    assert page.find("h1")[0].text == "Title"


def test_links_get_rel_and_keep_http_https_mailto_and_anchors() -> None:
    html = str(
        render_markdown(
            "[a](https://a.example/) [b](http://b.example/) [c](mailto:x@y.example) [d](#top) "
            "[e](docs/readme.md) [f](ftp://f.example/)"
        )
    )
    assert 'href="https://a.example/"' in html
    assert 'href="http://b.example/"' in html
    assert 'href="mailto:x@y.example"' in html
    assert 'href="#top"' in html
    assert "docs/readme.md" not in html and "ftp:" not in html
    assert html.count('rel="noopener noreferrer nofollow"') == html.count("<a ")


def test_images_only_from_own_files_or_https() -> None:
    html = str(
        render_markdown(
            "![own](shot.png) ![gone](missing.png) ![web](https://cdn.example/a.png) "
            "![plain](http://cdn.example/b.png) ![up](../../etc/passwd)",
            file_url=files_url,
            files=["shot.png"],
        )
    )
    assert 'src="/packages/p/1.0.0/files/shot.png"' in html
    assert 'src="https://cdn.example/a.png"' in html
    assert "missing.png" not in html and "http://cdn" not in html and "passwd" not in html


def test_empty_text_renders_nothing() -> None:
    assert str(render_markdown(None)) == ""
    assert str(render_markdown("")) == ""


def test_sanitize_keeps_code_language_class_only() -> None:
    html = str(
        sanitize_html('<pre><code class="language-sh">ls</code></pre><code class="evil x">y</code>')
    )
    assert 'class="language-sh"' in html
    assert "evil" not in html


def test_headings_move_down_under_the_page_headings() -> None:
    html = str(render_markdown("# Top\n\n## Sub\n\n<h6>deep</h6>", heading_offset=2))
    assert "<h3>Top</h3>" in html and "<h4>Sub</h4>" in html and "<h6>deep</h6>" in html
