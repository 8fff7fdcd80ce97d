"""The catalog page: a grid of package cards with search, tag and repository filters.

Search ranking is the catalog core's (``Catalog.search``), the same as the API's.
With ``?partial=1`` only the results block is sent: the search-as-you-type script
swaps it into the page.
"""

from __future__ import annotations

from typing import Any

from flask import render_template, request

from . import common
from .blueprint import bp

PER_PAGE = 24
MAX_QUERY = 200


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    try:
        value = int(request.args.get(name, default))
    except (TypeError, ValueError):
        return default
    return max(low, min(high, value))


@bp.get("/")
@common.needs("viewer")
def catalog() -> Any:
    """The catalog grid (search with ``q``, filter with ``tag`` and ``repo``, ``page``)."""
    cat = common.catalog()
    query = (request.args.get("q") or "").strip()[:MAX_QUERY]
    tag = (request.args.get("tag") or "").strip() or None
    repo = (request.args.get("repo") or "").strip() or None
    page_no = _int_arg("page", 1, 1, 100000)
    result = cat.search(query, tag=tag, repository=repo, page=page_no, per_page=PER_PAGE)
    pages = max(1, -(-result.total // PER_PAGE))
    context = {
        "query": query,
        "tag": tag,
        "repo": repo,
        "result": result,
        "pages": pages,
        "filtered": bool(query or tag or repo),
    }
    if request.args.get("partial") == "1":
        return render_template("storefront/_results.html", **context)
    featured = [] if context["filtered"] or page_no > 1 else list(cat.featured())[:8]
    return render_template(
        "storefront/catalog.html",
        featured=featured,
        tags=list(cat.tags())[:40],
        repositories=[r.name for r in cat.repositories],
        **context,
    )
