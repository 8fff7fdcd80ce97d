"""A small HTML reader for the store front's tests (stdlib ``html.parser``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

UNSAFE_SCHEMES = ("javascript:", "data:", "vbscript:")


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""
    parents: list[str] = field(default_factory=list)


class Page(HTMLParser):
    """Every element with its attributes; text of labels, headings and buttons."""

    TEXT_TAGS = ("label", "h1", "h2", "h3", "h4", "h5", "h6", "button", "a", "legend", "option")
    VOID = ("input", "img", "br", "hr", "meta", "link", "source", "area", "col", "wbr")

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self._open: list[Element] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs}, parents=[e.tag for e in self._open])
        self.elements.append(element)
        if tag not in self.VOID:
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i].tag == tag:
                del self._open[i:]
                break

    def handle_data(self, data: str) -> None:
        for element in self._open:
            if element.tag in self.TEXT_TAGS:
                element.text += data

    def find(self, tag: str, **attrs: str) -> list[Element]:
        return [
            e
            for e in self.elements
            if e.tag == tag and all(e.attrs.get(k.rstrip("_")) == v for k, v in attrs.items())
        ]

    def unsafe(self) -> list[str]:
        """Everything that could run script: script elements, handlers, unsafe URLs."""
        found = []
        for e in self.elements:
            if e.tag in ("script", "iframe", "object", "embed") and not (
                e.tag == "script" and e.attrs.get("src", "").startswith("/")
            ):
                found.append(f"<{e.tag}>")
            for name, value in e.attrs.items():
                if name.startswith("on"):
                    found.append(f"{e.tag}[{name}]")
                if name in (
                    "href",
                    "src",
                    "action",
                    "formaction",
                    "xlink:href",
                ) and value.strip().lower().startswith(UNSAFE_SCHEMES):
                    found.append(f"{e.tag}[{name}={value}]")
                if name == "style":
                    found.append(f"{e.tag}[style]")
        return found
