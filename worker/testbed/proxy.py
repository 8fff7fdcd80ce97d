"""Bed parts for reaching services: a real Caddy and a real Prometheus on loopback.

Both come from Debian's packages (``caddy`` 2.6, ``prometheus`` 2.42) and run as child
processes of the test or benchmark that starts them, logging to files, stopped by pid.
Lane ``L`` keeps side-by-side runs apart:

===========================  ===================================================
Caddy admin API              ``127.0.0.1:(12019 + 10*L)`` (``admin_url``)
Caddy routes (Berth's)       ``127.0.0.1:(12018 + 10*L)`` (``listen``)
Prometheus                   ``127.0.0.1:(12017 + 10*L)`` (``url``)
Caddy HTTPS routes (Berth's) ``127.0.0.1:(12016 + 10*L)`` (``listen_tls``)
===========================  ===================================================

Caddy starts with nothing but its admin address in its config (``--config``, never
``--resume``), so a restart forgets what Berth loaded, as a real restart without
persistence does; the proxy sync has to load it again. The config also tells Caddy's
local CA not to install its root into this machine's trust stores
(``install_trust: false``): a test trusts that root explicitly (:meth:`root_ca`).
"""

from __future__ import annotations

import json
from pathlib import Path

import requests

from worker.testbed import processes as proc

__all__ = ["CaddyProcess", "PrometheusProcess", "caddy_ports", "caddy_tls_port",
           "prometheus_port"]


def caddy_ports(lane: int) -> tuple[int, int]:
    """(admin port, routes port) of the lane's Caddy."""
    return 12019 + 10 * lane, 12018 + 10 * lane


def caddy_tls_port(lane: int) -> int:
    """The port of the lane's Caddy HTTPS routes."""
    return 12016 + 10 * lane


def prometheus_port(lane: int) -> int:
    return 12017 + 10 * lane


class CaddyProcess:
    """One ``caddy run`` with its admin API on the lane's loopback port."""

    def __init__(self, folder: Path, lane: int) -> None:
        self.folder = Path(folder)
        admin, listen = caddy_ports(lane)
        self.admin_url = f"http://127.0.0.1:{admin}"
        self.listen = f"127.0.0.1:{listen}"
        self.url = f"http://{self.listen}"
        self.https_port = caddy_tls_port(lane)
        self.listen_tls = f"127.0.0.1:{self.https_port}"
        self.config = self.folder / "caddy.json"
        self.log = self.folder / "caddy.log"
        self.pid: int | None = None

    def start(self) -> CaddyProcess:
        """Start Caddy with only its admin address configured; wait for the admin API.

        :raises TestbedError: when it does not answer (naming its log).
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config.write_text(json.dumps(
            {"admin": {"listen": self.admin_url.removeprefix("http://")},
             "apps": {"pki": {"certificate_authorities": {"local": {"install_trust": False}}}}}))
        # HOME and XDG folders inside the bed: Caddy keeps its data and autosave there
        env = {"HOME": str(self.folder), "XDG_DATA_HOME": str(self.folder / "data"),
               "XDG_CONFIG_HOME": str(self.folder / "config"), "PATH": "/usr/bin:/bin"}
        self.pid = proc.spawn(["caddy", "run", "--config", str(self.config)], self.log,
                              env=env)
        proc.wait_for(self.answers, what="caddy", pid=self.pid, log=self.log, timeout=20)
        return self

    def answers(self) -> bool:
        try:
            return requests.get(self.admin_url + "/config/", timeout=1).ok
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if self.pid is not None:
            proc.terminate(self.pid, grace=5)
            self.pid = None

    def restart(self) -> None:
        """Stop and start again: Berth's routes are gone until the sync loads them."""
        self.stop()
        self.start()

    def root_ca(self) -> Path:
        """The root certificate of Caddy's local CA (``GET /pki/ca/local``), as a PEM file.

        :raises TestbedError: when the admin API does not have it.
        """
        response = requests.get(self.admin_url + "/pki/ca/local", timeout=5)
        if not response.ok or "root_certificate" not in (response.json() or {}):
            raise proc.TestbedError(f"caddy has no local CA root: {response.status_code} "
                               f"{response.text[:200]}")
        path = self.folder / "root.crt"
        path.write_text(response.json()["root_certificate"])
        return path

    def upstreams(self, route_handler: str) -> list[str] | None:
        """The dial addresses Caddy has for a Berth route handler (None when missing)."""
        response = requests.get(f"{self.admin_url}/id/{route_handler}/upstreams", timeout=2)
        if response.status_code == 404:
            return None
        return [u["dial"] for u in response.json() or []]


class PrometheusProcess:
    """One ``prometheus`` scraping the targets of one HTTP SD URL."""

    def __init__(self, folder: Path, lane: int, *, sd_url: str, token: str,
                 refresh: str = "2s", scrape: str = "1s") -> None:
        self.folder = Path(folder)
        self.port = prometheus_port(lane)
        self.url = f"http://127.0.0.1:{self.port}"
        self.sd_url, self.token = sd_url, token
        self.refresh, self.scrape = refresh, scrape
        self.log = self.folder / "prometheus.log"
        self.pid: int | None = None

    def _config(self) -> str:
        token_file = self.folder / "token"
        token_file.write_text(self.token)
        token_file.chmod(0o600)
        return json.dumps({  # YAML is a superset of JSON
            "global": {"scrape_interval": self.scrape, "scrape_timeout": self.scrape},
            "scrape_configs": [{
                "job_name": "berth", "metrics_path": "/metrics",
                "http_sd_configs": [{"url": self.sd_url, "refresh_interval": self.refresh,
                                     "authorization": {"type": "Bearer",
                                                       "credentials_file": str(token_file)}}],
            }]})

    def start(self) -> PrometheusProcess:
        """Start Prometheus (data in the folder); wait until it is ready.

        :raises TestbedError: when it does not become ready.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "prometheus.yml"
        config.write_text(self._config())
        self.pid = proc.spawn(["prometheus", f"--config.file={config}",
                               f"--storage.tsdb.path={self.folder / 'data'}",
                               f"--web.listen-address=127.0.0.1:{self.port}"], self.log,
                              cwd=self.folder)
        proc.wait_for(lambda: proc.http_answers(self.url + "/-/ready"), what="prometheus",
                      pid=self.pid, log=self.log, timeout=30)
        return self

    def targets(self) -> list[dict[str, object]]:
        """The active targets Prometheus has (``/api/v1/targets``)."""
        answer = requests.get(self.url + "/api/v1/targets?state=active", timeout=5).json()
        return list(answer["data"]["activeTargets"])

    def stop(self) -> None:
        if self.pid is not None:
            proc.terminate(self.pid, grace=5)
            self.pid = None
