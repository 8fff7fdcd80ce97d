"""Log in with an API token or a user name and password; log out.

The session keeps only the identity (see ``server.auth``); it is checked against
Redis on every request, so a revoked token or removed user is logged out at once.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for

from server import auth as server_auth

from . import common
from .blueprint import bp

MAX_FIELD = 500


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """The login form; on success go back where the user came from."""
    target = common.safe_next(request.values.get("next"), url_for("storefront.catalog"))
    error = None
    if request.method == "POST":
        token = (request.form.get("token") or "").strip()[:MAX_FIELD]
        name = (request.form.get("username") or "").strip()[:MAX_FIELD]
        password = (request.form.get("password") or "")[:MAX_FIELD]
        try:
            if token:
                who = server_auth.login_with_token(token)
            elif name and password:
                who = server_auth.login_with_password(name, password)
            else:
                raise server_auth.Unauthorized("enter a token, or a user name and password")
        except server_auth.Unauthorized as exc:
            error = exc.message
        else:
            flash(f"Logged in as {who.name or who.actor} ({who.role}).", "success")
            return redirect(target)
    status = 401 if error else 200
    return render_template(
        "storefront/login.html", next=target, error=error, username=request.form.get("username", "")
    ), status


@bp.post("/logout")
def logout() -> Any:
    """End the session."""
    server_auth.logout()
    flash("Logged out.", "info")
    return redirect(url_for("storefront.catalog"))
