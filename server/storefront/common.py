"""What every store-front view shares: the Berth context, who is asking, helpers.

Views stay thin: they parse input, call ``server.application``, and
render. Errors from the core are either shown in the page (forms) or left to the
server's one error handler, which renders ``storefront/error.html``.
"""

from __future__ import annotations

import functools
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from flask import abort, current_app, flash, g, redirect, request, url_for
from markupsafe import Markup
from werkzeug.wrappers import Response

from catalog.errors import CatalogError
from server.application import Application
from server.auth import current_identity
from server.errors import ApiError, handle, status_for
from worker.errors import WorkerError

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
RANK = {"none": 0, "viewer": 1, "maintainer": 2, "admin": 3}
ICON_KEYS = ("icon", "icon-large", "icon-medium", "icon-small")
SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
# Control characters, space and backslash: browsers strip or rewrite them in URLs.
_UNSAFE_URL_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
MAX_FILE = 4 * 1024 * 1024
IMAGE_TYPES = {
    "svg": "image/svg+xml",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
}


def berth() -> Any:
    """The server's :class:`server.context.Berth`."""
    return current_app.extensions["berth"]


def catalog() -> Any:
    """The current ``catalog.Catalog`` (read through the catalog domain)."""
    return application().catalog.catalog()


def application() -> Application:
    """The application layer (``server.application``): the one thing views call."""
    app: Application = berth().application
    return app


def identity() -> Any:
    """Who is asking (``server.auth.Identity``)."""
    return current_identity()


def can(role: str) -> bool:
    """True when the current identity has at least ``role``."""
    try:
        return bool(identity().allows(role))
    except Exception:  # noqa: BLE001 - a bad session is simply anonymous here
        return False


def needs(role: str) -> Callable[[F], F]:
    """Run the view only for ``role`` or better: anonymous → login, others → 403 page."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            who = identity()
            if who.allows(role):
                return view(*args, **kwargs)
            if not who.authenticated:
                flash(f"Log in as {_article(role)} {role} to do that.", "info")
                return redirect(url_for("storefront.login", next=_here()))
            abort(403, description=f"This needs the {role} role; you are {who.role}.")

        return wrapper  # type: ignore[return-value]

    return decorate


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _here() -> str:
    return request.full_path.rstrip("?") if request.method == "GET" else request.path


def handle_error(error: BaseException) -> Any:
    """The store front's error handler: a 401 (no or a bad session or token) sends the
    browser to the login page, to come back here; every other error is the server's one
    handler's (an HTML page)."""
    if status_for(error) == 401:
        return redirect(url_for("storefront.login", next=request.full_path.rstrip("?")))
    return handle(error)


def safe_next(target: str | None, default: str) -> str:
    r"""A local redirect target (a path on this site), else ``default``: never an open
    redirect, never a header that cannot be sent.

    Browsers drop tabs and newlines from URLs and read ``\`` as ``/``, so
    ``/\t/evil.com`` becomes ``//evil.com``: any control character, space or
    backslash (also percent-encoded in the path) refuses the target, as does anything with a
    scheme or a host.
    """
    if not target or len(target) > 2000:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    for form in (target, unquote(parts.path)):  # a query may carry encoded spaces
        if _UNSAFE_URL_CHARS.search(form) or not form.startswith("/") or form.startswith("//"):
            return default
    return target


def back(default_endpoint: str, **values: Any) -> Response:
    """Redirect to the page named by ``next`` in the form, else to ``default_endpoint``."""
    fallback = url_for(default_endpoint, **values)
    return redirect(safe_next(request.form.get("next"), fallback))


def error_message(error: BaseException) -> str:
    """A one-line message for any Berth error, for a flash."""
    message = getattr(error, "message", None) or str(error) or error.__class__.__name__
    details = getattr(error, "details", None) or []
    if details and isinstance(details, list):
        first = details[0]
        if isinstance(first, Mapping) and first.get("message"):
            where = f"{first.get('path')}: " if first.get("path") else ""
            message = f"{message} ({where}{first['message']})"
    return str(message)


def flash_error(error: BaseException) -> None:
    flash(error_message(error), "error")


def act(action: Callable[[], T], *, back_to: str, success: str | Callable[[T], str],
        then: Callable[[T], str] | None = None) -> Response:
    """Run a form's action the one way the store front does: flash, then redirect.

    When ``action`` raises a ``ValueError`` (a form field is wrong; its message names
    the field) or a Berth user error, the message is flashed as an error and the browser
    goes to ``back_to``. Else ``success`` (or ``success(result)``) is flashed and the
    browser goes to ``then(result)``, or to ``back_to``.
    """
    try:
        result = action()
    except ValueError as exc:
        flash(str(exc), "error")
        return redirect(back_to)
    except user_errors() as exc:
        flash_error(exc)
        return redirect(back_to)
    flash(success if isinstance(success, str) else success(result), "success")
    return redirect(then(result) if then else back_to)


# packages ------------------------------------------------------------------------
def images_of(package: Any) -> Mapping[str, Any]:
    """The ``images`` section of a package's resource (icon, screenshots)."""
    resource = getattr(package, "resource", None) or {}
    images = resource.get("images") if isinstance(resource, Mapping) else None
    return images if isinstance(images, Mapping) else {}


def icon_ref(package: Any) -> str | None:
    """The icon a package names: a file in its folder or an https URL."""
    images = images_of(package)
    for key in ICON_KEYS:
        value = images.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def own_file(package: Any, ref: str | None) -> str | None:
    """``ref`` when it names one of the package's own image files."""
    if not ref:
        return None
    name = ref.removeprefix("./")
    return name if name in image_files(package) else None


def image_files(package: Any) -> list[str]:
    """The image files a package carries (in its bundle, or in its folder)."""
    files = getattr(package, "files", None)
    if files:
        return [n for n in files if content_type(n)]
    folder = getattr(package, "path", None)
    if not folder or not os.path.isdir(folder):
        return []
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(
        n
        for n in names
        if SAFE_NAME.fullmatch(n) and content_type(n) and os.path.isfile(os.path.join(folder, n))
    )


def file_bytes(package: Any, name: str) -> bytes | None:
    """The bytes of one of the package's image files (None when it has no such file)."""
    if name not in image_files(package):
        return None
    files = getattr(package, "files", None)
    if files:
        return bytes(files[name])
    full = os.path.join(package.path, name)
    if os.path.getsize(full) > MAX_FILE:
        return None
    with open(full, "rb") as handle:
        return handle.read(MAX_FILE)


def content_type(name: str) -> str | None:
    """The image content type of a file name, or None when it is not an image."""
    return IMAGE_TYPES.get(name.rsplit(".", 1)[-1].lower()) if "." in name else None


def icon_url(package: Any) -> str | None:
    """Where the page loads the package's icon from (None: draw a monogram).

    Icons at outside URLs are not loaded: the CSP allows images from Berth only, and
    the store front makes no requests to third parties on its users' behalf.
    """
    if own_file(package, icon_ref(package)):
        return url_for("storefront.package_icon", name=package.name, version=package.version)
    return None


def file_url(package: Any) -> Callable[[str], str]:
    """A function mapping a file of the package to its store-front URL."""

    def url(name: str) -> str:
        return url_for(
            "storefront.package_file", name=package.name, version=package.version, filename=name
        )

    return url


def screenshots(package: Any) -> list[tuple[str, bool]]:
    """The package's screenshots as ``(url, own)``: own files are shown, https linked."""
    shots = images_of(package).get("screenshots") or []
    urls = []
    for ref in shots if isinstance(shots, list) else []:
        if not isinstance(ref, str):
            continue
        if own_file(package, ref):
            urls.append((file_url(package)(ref.removeprefix("./")), True))
        elif ref.startswith("https://"):
            urls.append((ref, False))
    return urls


def monogram(package: Any) -> str:
    """One or two letters standing in for a package without an icon."""
    words = (getattr(package, "title", None) or package.name).replace("-", " ").split()
    letters = "".join(w[0] for w in words[:2]) or package.name[:1]
    return letters.upper()


def hue(name: str) -> int:
    """A stable colour family (0..7) for a name, for monograms."""
    return sum(name.encode()) % 8


# time ----------------------------------------------------------------------------
def age(ts: Any, now: float | None = None) -> str:
    """A short age like ``42s``, ``5m``, ``3h``, ``2d`` for a UNIX time."""
    try:
        seconds = max(0.0, (now or time.time()) - float(ts))
    except (TypeError, ValueError):
        return "—"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def actor(value: Any) -> Markup:
    """Who asked, for people: ``token:ab12cd34`` becomes the token's name (the id in a
    tooltip, since names may be reused), ``user:ann`` becomes ``ann``. Token names
    are looked up once per request."""
    text = str(value or "")
    kind, _, ident = text.partition(":")
    if kind == "user" and ident:
        return Markup("{}").format(ident)
    if kind != "token" or not ident:
        return Markup("{}").format(text or "—")
    names = g.setdefault("berth_token_names", {})
    if ident not in names:
        try:
            record = berth().store.auth.get_token(ident)
        except Exception:  # noqa: BLE001 - Redis away: the id is still an answer
            record = None
        names[ident] = (record or {}).get("name") or ""
    if not names[ident]:
        return Markup("{}").format(text)
    return Markup('<span title="{}">{}</span>').format(text, f"{names[ident]} (token)")


def when(ts: Any) -> str:
    """A UTC timestamp for tables."""
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(ts)))
    except (TypeError, ValueError, OverflowError):
        return "—"


def percent(part: Any, whole: Any) -> int:
    """``part`` of ``whole`` as a whole percentage in 0..100."""
    try:
        value = float(part) / float(whole) * 100 if float(whole) > 0 else 0.0
    except (TypeError, ValueError):
        return 0
    return int(min(100, max(0, round(value))))


def first(items: Iterable[Any], default: Any = None) -> Any:
    return next(iter(items), default)


def user_errors() -> tuple[type[BaseException], ...]:
    """The errors a form shows in the page (the core's and the server's own)."""
    return (CatalogError, WorkerError, ApiError)


def problems_of(error: BaseException) -> list[dict[str, str]]:
    """An error's ``details`` as ``[{path, message}]`` (its message when it has none)."""
    details = list(getattr(error, "details", None) or [])
    if details:
        return [
            {"path": str(d.get("path", "")), "message": str(d.get("message", ""))}
            for d in details
            if isinstance(d, Mapping)
        ]
    return [{"path": "", "message": error_message(error)}]


def instances_of(status: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The instance records of a service status (``instances_list``, or a list ``instances``)."""
    listed = status.get("instances_list")
    if listed is None and isinstance(status.get("instances"), list):
        listed = status["instances"]
    return list(listed or [])
