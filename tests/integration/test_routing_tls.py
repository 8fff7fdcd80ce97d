"""TLS routes through a real Caddy (Debian's), kept in sync by the bed's worker: a
``hello`` exposed with ``tls: true`` is reached over HTTPS on Caddy's TLS listener, with
a certificate from Caddy's local CA (verified against the root its admin API hands out,
``/pki/ca/local``), and plain HTTP to that host is redirected there.

One Caddy for the module, on the lane's ports (``worker/testbed/proxy.py``), registered
through the API with ``listen_tls``; what a test installs is uninstalled after it.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Iterator

import pytest
import requests
from cluster_support import Cluster, hello, until
from test_routing import ADDRESS, dials, name

from tests.fixtures.testbed import test_lane
from worker.testbed.proxy import CaddyProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def caddy(testbed, live_server, tmp_path_factory) -> Iterator[CaddyProcess]:
    """A real Caddy registered as proxy ``edge`` with an HTTPS listener; removed after."""
    proxy = CaddyProcess(tmp_path_factory.mktemp("caddy-tls"), test_lane()).start()
    body = {"name": "edge", "kind": "caddy", "admin_url": proxy.admin_url,
            "listen": proxy.listen, "listen_tls": proxy.listen_tls, "tls_issuer": "internal"}
    added = requests.post(live_server.api + "/proxies", json=body,
                          headers=live_server.headers(), timeout=10)
    assert added.status_code == 201, added.text
    try:
        yield proxy
    finally:
        requests.delete(live_server.api + "/proxies/edge", headers=live_server.headers(),
                        timeout=10)
        proxy.stop()


@pytest.fixture
def cluster(testbed) -> Iterator[Cluster]:
    c = Cluster(testbed)
    yield c
    c.uninstall_all()


class _SNIConnection(http.client.HTTPSConnection):
    """HTTPS to a loopback address, with the host name sent as SNI and checked in the
    certificate (what a client resolving that name to Caddy would do)."""

    def __init__(self, address: str, port: int, server_name: str,
                 context: ssl.SSLContext) -> None:
        super().__init__(address, port, timeout=5, context=context)
        self.server_name = server_name
        self.tls_context = context

    def connect(self) -> None:
        raw = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self.tls_context.wrap_socket(raw, server_hostname=self.server_name)


def https_get(caddy: CaddyProcess, host: str, context: ssl.SSLContext) -> tuple[int, str]:
    """(status, body) of ``GET https://host/`` sent to Caddy's TLS listener."""
    connection = _SNIConnection("127.0.0.1", caddy.https_port, host, context)
    try:
        connection.request("GET", "/", headers={"Host": host, "Connection": "close"})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def install_tls(cluster: Cluster, service: str, host: str) -> None:
    """``hello`` with one instance, its route on ``host`` marked ``tls: true``."""
    package, spec = hello("1.0.0", service, 1, public_host=host)
    spec["expose"][0]["tls"] = True
    cluster.created.append(service)
    deployment = cluster.ops.install(service, spec, package=package, actor="test")["deployment"]
    done = cluster.wait(deployment, timeout=90)
    assert done["status"] == "succeeded", done["error"]


def test_a_tls_route_is_served_over_https_with_caddys_local_ca_and_http_redirects(
        cluster, caddy, live_server):
    service = name()
    host = f"{service}.test"
    install_tls(cluster, service, host)
    [upstream] = dials(cluster, service)
    trusted = ssl.create_default_context(cafile=str(caddy.root_ca()))  # only Caddy's root

    def served() -> tuple[int, str] | None:
        try:
            answer = https_get(caddy, host, trusted)
        except (OSError, http.client.HTTPException):   # route or certificate not there yet
            return None
        return answer if answer[0] == 200 else None

    _, body = until(served, 20, lambda: f"HTTPS for {host} through Caddy "
                                             f"(Caddy said {caddy.log.read_text()[-600:]})")
    assert ADDRESS.search(body).group(1) == upstream
    with pytest.raises(ssl.SSLCertVerificationError):   # the system's CAs do not sign it
        https_get(caddy, host, ssl.create_default_context())

    plain = requests.get(f"{caddy.url}/page?x=1", headers={"Host": host}, timeout=5,
                         allow_redirects=False)
    assert plain.status_code == 308
    assert plain.headers["Location"] == f"https://{host}:{caddy.https_port}/page?x=1"

    [route] = [r for r in requests.get(live_server.api + "/routes", timeout=10,
                                       headers=live_server.headers()).json()["items"]
               if r["service"] == service]
    assert route["tls"] is True and route["state"] == "serving"
    [proxy] = requests.get(live_server.api + "/proxies", timeout=10,
                           headers=live_server.headers()).json()["items"]
    assert proxy["listen_tls"] == caddy.listen_tls and proxy["sync"]["state"] == "in sync"
