"""The Python client of Berth's API (``requests``), used by the CLI and by scripts.

    from server.client import BerthClient
    client = BerthClient.from_env()          # BERTH_URL, BERTH_TOKEN or `berth login`
    answer = client.install("hello", instances=3)
    client.wait_for_deployment(answer["deployment"]["id"])

Every call goes through :meth:`BerthClient._raise_for_status`, which turns an error
body ``{"error", "message", "details"}`` (or a connection failure) into
:class:`BerthAPIError`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

DEFAULT_URL = "http://127.0.0.1:8080"
FINAL = ("succeeded", "failed", "cancelled")
SERVICES_PAGE = 500  # services asked for per request when listing them all


class BerthAPIError(Exception):
    """An error answer of the API, or no answer (``status`` 0)."""

    def __init__(self, code: str, message: str, details: list[dict[str, str]] | None = None,
                 status: int = 0, hint: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or []
        self.status = status
        self.hint = hint

    def __str__(self) -> str:
        lines = [f"{self.message} ({self.code})"]
        lines += [f"  {d.get('path', '')}: {d.get('message', '')}" for d in self.details]
        return "\n".join(lines)


def config_path() -> Path:
    """Where ``berth login`` keeps the URL and token (``$XDG_CONFIG_HOME/berth``)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "berth" / "config.json"


def load_config() -> dict[str, str]:
    """The saved login, or an empty dict."""
    try:
        data = json.loads(config_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def save_config(url: str, token: str) -> Path:
    """Save a login readable by the owner only."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"url": url, "token": token}, handle)
    return path


class BerthClient:
    """One Berth server: its URL, a token, a requests session."""

    def __init__(self, url: str | None = None, token: str | None = None, *,
                 timeout: float = 30.0, session: requests.Session | None = None) -> None:
        self.url = (url or DEFAULT_URL).rstrip("/")
        self.api = self.url + "/api/v1"
        self.token = token or None
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = "berth-client"
        if self.token:
            self.session.headers["Authorization"] = f"Bearer {self.token}"

    @classmethod
    def from_env(cls, **kwargs: Any) -> BerthClient:
        """``BERTH_URL`` / ``BERTH_TOKEN``, else the saved login, else the default URL."""
        saved = load_config()
        url = os.environ.get("BERTH_URL") or saved.get("url") or DEFAULT_URL
        token = os.environ.get("BERTH_TOKEN") or saved.get("token")
        return cls(url, token, **kwargs)

    # the one funnel --------------------------------------------------------------
    def request(self, method: str, path: str, *, json_body: Any = None,
                params: Mapping[str, Any] | None = None, stream: bool = False,
                timeout: float | None = None, data: bytes | None = None,
                content_type: str | None = None,
                headers: Mapping[str, str] | None = None) -> requests.Response:
        """Send one request (a JSON body, or raw ``data`` of ``content_type``) and
        return the response if it succeeded.

        :raises BerthAPIError: for an error answer or when the server cannot be reached.
        """
        query = {k: v for k, v in (params or {}).items() if v is not None}
        headers = {**(headers or {}), **({"Content-Type": content_type} if content_type
                                         else {})} or None
        try:
            response = self.session.request(
                method, self.api + path, json=json_body, params=query, stream=stream,
                timeout=timeout or self.timeout, data=data, headers=headers)
        except requests.Timeout as exc:
            raise BerthAPIError("timeout", f"{self.url} did not answer in time",
                                hint="is the server overloaded?") from exc
        except requests.RequestException as exc:
            raise BerthAPIError("unreachable", f"cannot reach {self.url}",
                                [{"path": "url", "message": str(exc)[:200]}],
                                hint="check BERTH_URL and that the server runs") from exc
        self._raise_for_status(response)
        return response

    @staticmethod
    def _raise_for_status(response: requests.Response) -> None:
        """Turn an error answer into :class:`BerthAPIError`.

        :raises BerthAPIError: when the status is 400 or above.
        """
        if response.status_code < 400:
            return
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "error" not in body:
            text = (response.text or response.reason or "").strip()[:200]
            raise BerthAPIError("http_error", f"HTTP {response.status_code}: {text}",
                                status=response.status_code)
        details = body.get("details") if isinstance(body.get("details"), list) else []
        raise BerthAPIError(str(body["error"]), str(body.get("message", "")), details,
                            response.status_code, body.get("hint"))

    def _get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params).json()

    def _send(self, method: str, path: str, body: Any = None) -> Any:
        response = self.request(method, path, json_body=body)
        return response.json() if response.content else None

    # catalog -----------------------------------------------------------------------
    def search(self, query: str = "", *, tag: str | None = None,
               repository: str | None = None, page: int = 1, per_page: int = 24) -> dict:
        return self._get("/packages", q=query or None, tag=tag, repository=repository,
                         page=page, per_page=per_page)

    def package(self, name: str) -> dict:
        return self._get(f"/packages/{_seg(name)}")

    def versions(self, name: str) -> list[dict]:
        return self._get(f"/packages/{_seg(name)}/versions")["items"]

    def package_version(self, name: str, version: str) -> dict:
        return self._get(f"/packages/{_seg(name)}/versions/{_seg(version)}")

    def render(self, name: str, *, version: str | None = None,
               options: Mapping[str, Any] | None = None, instances: int | None = None) -> dict:
        return self._send("POST", f"/packages/{_seg(name)}/render",
                          _drop_none(version=version, options=options, instances=instances))

    # services ----------------------------------------------------------------------
    def install(self, package: str, *, version: str | None = None, name: str | None = None,
                options: Mapping[str, Any] | None = None, instances: int | None = None,
                constraints: Sequence[Sequence[str]] | None = None,
                cluster: str | None = None, handover: Sequence[str] | None = None) -> dict:
        """Install a package (onto ``cluster``, default Berth's own agents); returns
        ``{"service", "deployment"}``. ``handover`` names the linked options whose
        credentials the admin confirms handing over."""
        body = _drop_none(package=package, version=version, name=name, options=options,
                          instances=instances, cluster=cluster,
                          handover=list(handover) if handover else None,
                          constraints=[list(c) for c in constraints] if constraints else None)
        return self._send("POST", "/services", body)

    def services(self) -> list[dict]:
        """Every service, page after page."""
        items: list[dict] = []
        page = 1
        while True:
            answer = self._get("/services", page=page, per_page=SERVICES_PAGE)
            items += answer["items"]
            if not answer["items"] or len(items) >= int(answer.get("total", 0)):
                return items
            page += 1

    def service(self, name: str) -> dict:
        return self._get(f"/services/{_seg(name)}")

    def history(self, name: str) -> list[dict]:
        return self._get(f"/services/{_seg(name)}/history")["items"]

    def secrets(self, name: str) -> dict:
        """A service's secret option values in clear (admin only; the server audits it)."""
        return self._get(f"/services/{_seg(name)}/secrets")

    def scale(self, name: str, instances: int) -> dict:
        return self._send("PATCH", f"/services/{_seg(name)}", {"instances": instances})

    def upgrade(self, name: str, *, version: str | None = None,
                options: Mapping[str, Any] | None = None,
                repository: str | None = None, backup: bool = False,
                handover: Sequence[str] | None = None) -> dict:
        """Upgrade within the service's own repository, or move it to ``repository``;
        with ``backup``, the service's volumes are backed up first; ``handover``
        confirms handing linked services' credentials over (by linked option)."""
        body = _drop_none(version=version, options=options, repository=repository) \
            or {"version": "*"}
        if backup:
            body["backup"] = True
        if handover:
            body["handover"] = list(handover)
        return self._send("PATCH", f"/services/{_seg(name)}", body)

    def rollback(self, name: str, generation: int | None = None, *,
                 restore_data: bool = False) -> dict:
        """Return to an earlier generation; with ``restore_data``, on the data of that
        generation's newest backup."""
        body = _drop_none(generation=generation)
        if restore_data:
            body["restore_data"] = True
        return self._send("POST", f"/services/{_seg(name)}/rollback", body)

    def restart(self, name: str) -> dict:
        return self._send("POST", f"/services/{_seg(name)}/restart", {})

    def uninstall(self, name: str, *, delete_data: bool = False, force: bool = False) -> dict:
        """Uninstall; the answer's ``volumes`` stay unless ``delete_data``; ``force``
        uninstalls a service other services link to."""
        body: dict[str, Any] | None = {k: True for k, on in (("delete_data", delete_data),
                                                              ("force", force)) if on} or None
        return self._send("DELETE", f"/services/{_seg(name)}", body)

    def volumes(self, service: str | None = None) -> dict:
        """``{"volumes": [...], "unreachable": [...]}``: Berth's named volumes."""
        return self._get("/volumes", service=service)

    def move(self, name: str, instance: str, to: str, *, accept_empty: bool = False) -> dict:
        """Move an instance to agent ``to`` with its data; ``{"deployment": …}``."""
        body = {"to": to, "acceptEmpty": True} if accept_empty else {"to": to}
        return self._send("POST", f"/services/{_seg(name)}/instances/{_seg(instance)}/move",
                          body)

    def prune_volumes(self, *, service: str | None = None, agent: str | None = None) -> dict:
        """Ask for the left-over volumes to be removed; ``{"prune": {"id", "status"}}``."""
        body = {k: v for k, v in (("service", service), ("agent", agent)) if v}
        return self._send("POST", "/volumes/prune", body)

    def prune(self, prune_id: str) -> dict:
        """A prune request: ``status`` (queued | done), ``removed``, ``kept``."""
        return self._get(f"/volumes/prune/{_seg(prune_id)}")

    def logs(self, name: str, instance: str, *, tail: int = 100,
             follow: bool = False) -> Iterator[bytes]:
        """An instance's output, chunk by chunk (forever with ``follow``)."""
        response = self.request("GET", f"/services/{_seg(name)}/instances/{_seg(instance)}/logs",
                                params={"tail": tail, "follow": 1 if follow else None},
                                stream=True, timeout=None if follow else self.timeout)
        return response.iter_content(chunk_size=None)

    # backups -----------------------------------------------------------------------
    def backups(self, service: str | None = None) -> list[dict]:
        """Backups, newest first (of one service when given)."""
        return self._get("/backups", service=service)["items"]

    def backup(self, backup_id: str) -> dict:
        return self._get(f"/backups/{_seg(backup_id)}")

    def create_backup(self, service: str, *, instance: str | None = None,
                      keep: int | None = None) -> dict:
        """``{"backup", "deployment"}``: the backup queued and the deployment taking it."""
        return self._send("POST", f"/services/{_seg(service)}/backups",
                          _drop_none(instance=instance, keep=keep))

    def restore_backup(self, backup_id: str, *, to: str | None = None,
                       agent: str | None = None) -> dict:
        """``{"deployment"}``: the restore of a backup into its service or ``to``, onto
        ``agent`` when given."""
        return self._send("POST", f"/backups/{_seg(backup_id)}/restore",
                          _drop_none(to=to, agent=agent))

    def delete_backup(self, backup_id: str) -> dict:
        return self._send("DELETE", f"/backups/{_seg(backup_id)}")

    def download_backup(self, backup_id: str) -> Iterator[bytes]:
        """The backup as ``.tar.gz``, chunk by chunk."""
        response = self.request("GET", f"/backups/{_seg(backup_id)}/download", stream=True,
                                timeout=None)
        return response.iter_content(chunk_size=1 << 20)

    # deployments -------------------------------------------------------------------
    def deployments(self, service: str | None = None, limit: int = 50) -> list[dict]:
        return self._get("/deployments", service=service, limit=limit)["items"]

    def deployment(self, deployment_id: str) -> dict:
        return self._get(f"/deployments/{_seg(deployment_id)}")

    def cancel_deployment(self, deployment_id: str) -> dict:
        return self._send("DELETE", f"/deployments/{_seg(deployment_id)}")

    def wait_for_deployment(self, deployment_id: str, *,
                            on_progress: Callable[[dict], None] | None = None,
                            timeout: float = 600.0, interval: float = 0.5) -> dict:
        """Poll a deployment until it ends; returns its final record.

        :raises BerthAPIError: ``timeout`` when it has not ended in time.
        """
        deadline = time.monotonic() + timeout
        while True:
            deployment = self.deployment(deployment_id)
            if on_progress:
                on_progress(deployment)
            if deployment.get("status") in FINAL:
                return deployment
            if time.monotonic() > deadline:
                raise BerthAPIError("timeout", f"deployment {deployment_id} did not end in "
                                    f"{timeout:.0f}s", hint="see `berth deployments`")
            time.sleep(interval)

    # agents and repositories ---------------------------------------------------------
    def agents(self) -> list[dict]:
        return self._get("/agents")["items"]

    def agent(self, agent_id: str) -> dict:
        return self._get(f"/agents/{_seg(agent_id)}")

    def add_agent(self, url: str, *, agent_id: str | None = None,
                  attributes: Mapping[str, str] | None = None,
                  capacity: Mapping[str, Any] | None = None,
                  port_range: Sequence[int] | None = None) -> dict:
        body = _drop_none(url=url, id=agent_id, attributes=dict(attributes or {}) or None,
                          capacity=capacity, port_range=list(port_range) if port_range else None)
        return self._send("POST", "/agents", body)

    def drain_agent(self, agent_id: str) -> dict:
        return self._send("POST", f"/agents/{_seg(agent_id)}/drain")

    def remove_agent(self, agent_id: str, *, force: bool = False) -> None:
        self.request("DELETE", f"/agents/{_seg(agent_id)}", params={"force": 1 if force else None})

    def clusters(self) -> list[dict]:
        """Berth's own agents (``default``) and every Swarm cluster."""
        return self._get("/clusters")["items"]

    def add_cluster(self, name: str, url: str, *, kind: str = "swarm",
                    port_range: Sequence[int] | None = None) -> dict:
        body = _drop_none(name=name, url=url, kind=kind,
                          port_range=list(port_range) if port_range else None)
        return self._send("POST", "/clusters", body)

    def remove_cluster(self, name: str) -> None:
        self.request("DELETE", f"/clusters/{_seg(name)}")

    def cluster_nodes(self) -> list[dict]:
        """Every Swarm's nodes, read from its manager."""
        return self._get("/clusters/nodes")["items"]

    def repositories(self) -> list[dict]:
        answer = self._get("/repositories")
        return answer["items"] if isinstance(answer, dict) else answer

    def add_repository(self, name: str, url: str, *, priority: int | None = None,
                       format: str | None = None, interval: float | None = None) -> dict:
        """Add a remote repository: ``format`` ``berth`` (default) or ``dcos`` (a
        Universe ``repo-up-to-*.json``); ``interval`` seconds between refreshes."""
        return self._send("POST", "/repositories", _drop_none(
            name=name, url=url, priority=priority, format=format, interval=interval))

    def remove_repository(self, name: str) -> None:
        self.request("DELETE", f"/repositories/{_seg(name)}")

    # image registries (admin) --------------------------------------------------------
    def registries(self) -> list[dict]:
        """Every image registry: host and username (never a password)."""
        answer = self._get("/registries")
        return answer["items"] if isinstance(answer, dict) else answer

    def add_registry(self, host: str, *, username: str | None = None,
                     password: str | None = None) -> dict:
        """Add an image registry, or replace its credentials; its view."""
        return self._send("POST", "/registries", {"host": host, "username": username,
                                                  "password": password})

    def remove_registry(self, host: str) -> None:
        self.request("DELETE", f"/registries/{_seg(host)}")

    # meta --------------------------------------------------------------------------
    def refresh_repository(self, name: str) -> dict:
        """Fetch a remote repository now; its state after (``stale``, ``error``)."""
        return self._send("POST", f"/repositories/{_seg(name)}/refresh")

    # publishing (maintainer) ------------------------------------------------------
    def publish(self, bundle: bytes) -> dict:
        """Publish a bundle (``berth package build`` output) to the hosted repository."""
        response = self.request("POST", "/packages", data=bundle,
                                content_type="application/gzip")
        return response.json()

    def yank(self, name: str, version: str, reason: str) -> dict:
        """Hide a published version from new installs and range resolution."""
        return self._send("POST", f"/packages/{_seg(name)}/versions/{_seg(version)}/yank",
                          {"reason": reason})

    # package name owners ------------------------------------------------------------
    def owners(self, name: str) -> dict:
        """The repositories and maintainers a package name belongs to."""
        return self._get(f"/packages/{_seg(name)}/owners")

    def add_owner(self, name: str, *, token: str | None = None, user: str | None = None,
                  repository: str | None = None) -> dict:
        """Share a name with a token (id or name), a user or a repository (admin)."""
        return self._send("POST", f"/packages/{_seg(name)}/owners",
                          _drop_none(token=token, user=user, repository=repository))

    def remove_owner(self, name: str, kind: str, value: str) -> dict:
        """Stop sharing a name; ``kind`` is ``token``, ``user`` or ``repository`` (admin)."""
        return self._send("DELETE", f"/packages/{_seg(name)}/owners/{_seg(kind)}/{_seg(value)}")

    def transfer_owner(self, name: str, repository: str) -> dict:
        """Give a name to one repository alone (admin)."""
        return self._send("POST", f"/packages/{_seg(name)}/owners/transfer",
                          {"repository": repository})

    # routing ------------------------------------------------------------------------
    def endpoints(self, name: str, *, wait: float | None = None,
                  etag: str | None = None) -> dict:
        """A service's healthy instances per port name (``etag`` + ``wait``: a long poll;
        the same ``etag`` back means nothing changed)."""
        response = self.request("GET", f"/services/{_seg(name)}/endpoints",
                                params={"wait": wait}, timeout=self.timeout + (wait or 0),
                                headers={"If-None-Match": etag} if etag else None)
        if response.status_code == 304:
            return {"service": name, "etag": etag, "unchanged": True}
        return dict(response.json())

    def routes(self) -> list[dict]:
        return list(self._get("/routes")["items"])

    def proxies(self) -> list[dict]:
        return list(self._get("/proxies")["items"])

    def add_proxy(self, name: str, *, kind: str, admin_url: str, listen: str,
                  group: str | None = None, listen_tls: str | None = None,
                  tls_issuer: str | None = None, acme_email: str | None = None) -> dict:
        return dict(self._send("POST", "/proxies", _drop_none(
            name=name, kind=kind, admin_url=admin_url, listen=listen, group=group,
            listen_tls=listen_tls, tls_issuer=tls_issuer, acme_email=acme_email)))

    def remove_proxy(self, name: str) -> None:
        self._send("DELETE", f"/proxies/{_seg(name)}")

    def whoami(self) -> dict:
        return self._get("/whoami")

    def health(self) -> dict:
        return self._get("/healthz")


def _seg(value: str) -> str:
    """A path segment, quoted (no ``/`` may slip through)."""
    return quote(str(value), safe="")


def _drop_none(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}
