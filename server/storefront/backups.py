"""The Backups section of a service's page: list, take, restore (typed confirmation),
delete, and the download link (admins).

The forms call :class:`server.application.backups.BackupManager` like the API does;
taking and restoring lead to the deployment's page, where their steps show. The
download is the API's streamed ``.tar.gz`` (the browser's session is an admin's).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import flash, redirect, request, url_for

from . import common
from .blueprint import bp

SHOWN = 20   # backups listed on a service's page


def service_backups(name: str) -> list[Mapping[str, Any]]:
    """The service's newest backups, for its page."""
    return list(common.application().backups.list(name, limit=SHOWN))


def _page(name: str) -> str:
    return url_for("storefront.service", name=name) + "#backups"


def _deployment_url(answer: Mapping[str, Any]) -> str:
    deployment = answer.get("deployment") or answer
    return url_for("storefront.deployment", deployment_id=deployment["id"])


@bp.post("/services/<name>/backups")
@common.needs("admin")
def backup_create(name: str) -> Any:
    """Take a backup now (``keep``: how many of the newest to keep, optional)."""
    raw = (request.form.get("keep") or "").strip()

    def create() -> Mapping[str, Any]:
        keep = None
        if raw:
            if not raw.isdigit():
                raise ValueError(f"Keep: {raw!r} is not a whole number.")
            keep = int(raw)
        return common.application().backups.create(common.identity().actor, name, keep=keep)

    return common.act(create, back_to=_page(name),
                      success=lambda done: f"Backing up {name}: {done['backup']['id']}.",
                      then=_deployment_url)


@bp.post("/services/<name>/backups/<backup_id>/restore")
@common.needs("admin")
def backup_restore(name: str, backup_id: str) -> Any:
    """Restore a backup into this service once its name is typed to confirm."""
    if (request.form.get("confirm_name") or "").strip() != name:
        flash(f"Type the service name “{name}” to confirm the restore: it replaces all "
              "of its data.", "error")
        return redirect(_page(name))
    return common.act(
        lambda: {"deployment": common.application().backups.restore(
            common.identity().actor, backup_id, to=name)},
        back_to=_page(name), success=f"Restoring {backup_id} into {name}.",
        then=_deployment_url)


@bp.post("/services/<name>/backups/<backup_id>/delete")
@common.needs("admin")
def backup_delete(name: str, backup_id: str) -> Any:
    """Delete a backup (its files, then its record)."""
    return common.act(lambda: common.application().backups.delete(common.identity().actor,
                                                                   backup_id),
                      back_to=_page(name), success=f"Deleting backup {backup_id}.")
