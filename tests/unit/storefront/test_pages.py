"""Store-front pages through the real app: inert maintainer text, roles, CSRF, a11y basics."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import csrf_from
from .htmlcheck import Page

PAGES = [
    "/",
    "/?q=redis",
    "/?tag=database",
    "/?repo=lab",
    "/packages/hello",
    "/packages/hello?version=1.0.0",
    "/packages/xss-demo",
    "/packages/spark-like",
    "/login",
    "/services",
    "/agents",
    "/repositories",
    "/deployments",
    "/routes",
]
ADMIN_PAGES = [
    "/packages/hello/install",
    "/packages/postgres/install",
    "/packages/xss-demo/install",
]


def html_of(client: Any, url: str, status: int = 200) -> str:
    answer = client.get(url)
    assert answer.status_code == status, (url, answer.status_code)
    return answer.get_data(as_text=True)


def test_hostile_package_renders_inert(admin: Any) -> None:
    for url in ("/packages/xss-demo", "/?q=xss", "/packages/xss-demo/install"):
        html = html_of(admin, url)
        page = Page(html)
        assert page.unsafe() == [], url
        assert "alert(" not in "".join(e.attrs.get("href", "") for e in page.elements)
        assert "<b>demo</b>" not in html and "&lt;b&gt;demo&lt;/b&gt;" in html
    readme = Page(html_of(admin, "/packages/xss-demo"))
    assert [a.attrs.get("href") for a in readme.find("a") if a.text in ("safe", "hover")] == [
        "https://example.org/docs",
        "https://example.org/",
    ]
    shots = [e.attrs["src"] for e in readme.find("img") if "src" in e.attrs]
    assert "/packages/xss-demo/1.0.0/files/shot.png" in shots


def test_every_page_answers_with_the_csp_and_no_inline_script_or_style(admin: Any) -> None:
    for url in PAGES + ADMIN_PAGES:
        answer = admin.get(url)
        assert answer.status_code == 200, url
        assert "script-src 'self'" in answer.headers["Content-Security-Policy"]
        page = Page(answer.get_data(as_text=True))
        assert page.unsafe() == [], url
        assert page.find("style") == [], url
        for script in page.find("script"):
            assert script.attrs["src"].startswith("/assets/"), url


def test_svg_icons_are_served_so_they_cannot_run_script(client: Any) -> None:
    answer = client.get("/packages/xss-demo/1.0.0/icon")
    assert answer.status_code == 200
    assert answer.mimetype == "image/svg+xml"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    csp = answer.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert client.get("/packages/hello/1.0.0/icon").mimetype == "image/svg+xml"


def test_only_image_files_of_the_package_are_served(client: Any) -> None:
    assert client.get("/packages/xss-demo/1.0.0/files/shot.png").mimetype == "image/png"
    for name in (
        "package.json",
        "README.md",
        "../hello/1.0.0/icon.svg",
        "nope.png",
        "%2e%2e/%2e%2e/etc/passwd",
    ):
        assert client.get(f"/packages/xss-demo/1.0.0/files/{name}").status_code == 404, name


def labelled_ids(page: Page) -> set[str]:
    return {e.attrs["for"] for e in page.find("label") if e.attrs.get("for")}


def test_every_input_has_a_label(admin: Any) -> None:
    for url in PAGES + ADMIN_PAGES:
        page = Page(html_of(admin, url))
        labels = labelled_ids(page)
        for e in page.elements:
            if e.tag not in ("input", "select", "textarea"):
                continue
            if e.attrs.get("type") in ("hidden", "submit", "button"):
                continue
            named = (
                e.attrs.get("id") in labels
                or e.attrs.get("aria-label")
                or e.attrs.get("aria-labelledby")
                or "label" in e.parents
            )
            assert named, (url, e.tag, e.attrs)


def test_headings_are_in_order(admin: Any) -> None:
    for url in PAGES + ADMIN_PAGES:
        page = Page(html_of(admin, url))
        levels = [
            int(e.tag[1]) for e in page.elements if e.tag in ("h1", "h2", "h3", "h4", "h5", "h6")
        ]
        assert levels and levels[0] == 1 and levels.count(1) == 1, (url, levels)
        for before, after in zip(levels, levels[1:], strict=False):
            assert after <= before + 1, (url, levels)


def test_images_have_alt_text(admin: Any) -> None:
    for url in PAGES:
        for img in Page(html_of(admin, url)).find("img"):
            assert "alt" in img.attrs, (url, img.attrs)


def test_every_form_that_posts_carries_a_csrf_token(admin: Any) -> None:
    for url in PAGES + ADMIN_PAGES:
        page = Page(html_of(admin, url))
        forms = [e for e in page.elements if e.tag == "form"]
        tokens = [e for e in page.find("input", name="csrf_token")]
        posting = [f for f in forms if f.attrs.get("method", "get").lower() == "post"]
        assert len(tokens) >= len(posting), url


def test_a_form_without_its_csrf_token_is_refused(admin: Any) -> None:
    answer = admin.post("/packages/hello/install", data={"action": "review"})
    assert answer.status_code == 400
    assert "CSRF" in answer.get_data(as_text=True)
    answer = admin.post("/logout", data={"csrf_token": "forged"})
    assert answer.status_code == 400


@pytest.mark.parametrize("who", ["anonymous", "viewer"])
def test_viewers_see_no_working_install_button(request: Any, client: Any, who: str) -> None:
    if who == "viewer":
        request.getfixturevalue("viewer")
    page = Page(html_of(client, "/packages/hello"))
    assert not [a for a in page.find("a") if "/install" in a.attrs.get("href", "")]
    buttons = [b for b in page.find("button") if "Install" in b.text]
    assert buttons and all("disabled" in b.attrs for b in buttons)
    answer = client.get("/packages/hello/install")
    if who == "anonymous":
        assert answer.status_code == 302 and "/login" in answer.headers["Location"]
    else:
        assert answer.status_code == 403
    token = csrf_from(html_of(client, "/login"))
    posted = client.post("/packages/hello/install", data={"csrf_token": token, "action": "install"})
    assert posted.status_code in (302, 403)
    assert "/deployments/" not in posted.headers.get("Location", "")


def test_admins_get_a_working_install_button(admin: Any) -> None:
    page = Page(html_of(admin, "/packages/hello"))
    assert [
        a for a in page.find("a") if a.attrs.get("href", "").startswith("/packages/hello/install")
    ]


def test_search_ranks_like_the_catalog_and_partial_sends_the_results_only(client: Any) -> None:
    page = Page(html_of(client, "/?q=redis&partial=1"))
    titles = [a.text for a in page.find("a", class_="stretched")]
    assert titles and titles[0] == "Redis"
    assert page.find("header") == [] and page.find("h2")


def test_unknown_package_is_a_404_page(client: Any) -> None:
    html = html_of(client, "/packages/does-not-exist", 404)
    assert "Not found" in html and "<html" in html


def test_login_with_a_wrong_token_is_refused_in_the_page(client: Any) -> None:
    token = csrf_from(html_of(client, "/login"))
    answer = client.post("/login", data={"csrf_token": token, "token": "berth_x_y"})
    assert answer.status_code == 401
    assert "not valid" in answer.get_data(as_text=True)


def test_login_redirects_only_to_local_pages(client: Any, app: Any) -> None:
    from .conftest import token_for

    token = csrf_from(html_of(client, "/login"))
    answer = client.post(
        "/login",
        data={"csrf_token": token, "token": token_for(app, "viewer"), "next": "//evil.example/"},
    )
    assert answer.status_code == 302 and answer.headers["Location"] == "/"


def test_unsupported_packages_show_why_and_cannot_be_installed(admin: Any) -> None:
    page = Page(html_of(admin, "/packages/spark-like"))
    reasons = html_of(admin, "/packages/spark-like")
    assert "runs a Mesos framework scheduler" in reasons and "host volumes" in reasons
    buttons = [b for b in page.find("button") if "Install" in b.text]
    assert buttons and all("disabled" in b.attrs for b in buttons)
    assert not [a for a in page.find("a") if "/install" in a.attrs.get("href", "")]
    answer = admin.get("/packages/spark-like/install")
    assert answer.status_code == 302 and answer.headers["Location"].startswith(
        "/packages/spark-like"
    )
    token = csrf_from(html_of(admin, "/login"))
    posted = admin.post(
        "/packages/spark-like/install", data={"csrf_token": token, "action": "install"}
    )
    assert posted.status_code == 302 and "/deployments/" not in posted.headers["Location"]
    card = html_of(admin, "/?q=spark")
    assert "DC/OS only" in card


def test_login_with_user_name_and_password_then_logout(client: Any, app: Any) -> None:
    from server.auth import hash_password

    with app.app_context():
        store = app.extensions["berth"].store
        store.auth.add_user("ann", role="admin", password_hash=hash_password("correct horse"))
    token = csrf_from(html_of(client, "/login"))
    wrong = client.post(
        "/login", data={"csrf_token": token, "username": "ann", "password": "wrong"}
    )
    assert wrong.status_code == 401 and "wrong password" in wrong.get_data(as_text=True)
    right = client.post(
        "/login",
        data={"csrf_token": token, "username": "ann", "password": "correct horse", "next": "/x"},
    )
    assert right.status_code == 302 and right.headers["Location"] == "/x"
    page = html_of(client, "/")
    assert "ann" in page and "Log out" in page
    token = csrf_from(page)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert "Log in" in html_of(client, "/")


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/?repo=nope", 200),
        ("/?page=abc", 200),
        ("/?page=99999", 200),
        ("/?q=" + "x" * 5000, 200),
        ("/packages/hello?version=!!!", 422),
        ("/packages/hello?version=9.9.9", 404),
        ("/packages/hello/9.9.9/icon", 404),
        ("/packages/redis/7.4.2/files/..%2Fpackage.json", 404),
        ("/services/nope", 404),
        ("/services/nope/upgrade", 404),
        ("/services/nope/instances/x/logs", 200),
        ("/deployments/nope", 404),
        ("/packages/nope/install", 404),
    ],
)
def test_bad_input_gets_a_clear_page_never_a_500(admin: Any, url: str, status: int) -> None:
    answer = admin.get(url)
    assert answer.status_code == status, answer.get_data(as_text=True)[-800:]
    assert "<html" in answer.get_data(as_text=True)


@pytest.mark.parametrize("query", ["re", "data", "web", "sql", "hello"])
def test_search_as_you_type_ranks_exactly_like_the_api(client: Any, query: str) -> None:
    api = client.get(f"/api/v1/packages?q={query}").get_json()
    page = Page(html_of(client, f"/?q={query}&partial=1"))
    shown = [a.attrs["href"].rsplit("/", 1)[1] for a in page.find("a", class_="stretched")]
    assert shown == [item["name"] for item in api["items"]]
    assert shown, query


def test_the_package_page_says_which_volumes_are_replaceable(client: Any) -> None:
    html = html_of(client, "/packages/postgres")
    assert len(Page(html).find("dd", class_="volumes")) == 1
    listed = html.split('<dd class="volumes">', 1)[1].split("</dd>", 1)[0]
    assert "kept on its agent" in listed and "replaceable" not in listed
    assert '<dd class="volumes">' not in html_of(client, "/packages/hello")


def test_a_replaceable_volume_is_named_so_on_the_package_page(client: Any, monkeypatch) -> None:
    from server.application.services import ServiceManager

    real = ServiceManager.render

    def with_a_cache(self: Any, name: str, **kwargs: Any) -> dict[str, Any]:
        rendered = real(self, name, **kwargs)
        volumes = [*rendered["spec"].get("volumes", []),
                   {"containerPath": "/cache", "name": "pg-cache", "replaceable": True}]
        return {**rendered, "spec": {**rendered["spec"], "volumes": volumes}}

    monkeypatch.setattr(ServiceManager, "render", with_a_cache)
    html = html_of(client, "/packages/postgres")
    listed = html.split('<dd class="volumes">', 1)[1].split("</dd>", 1)[0]
    assert "pg-cache" in listed and "replaceable: may move to another agent empty" in listed
