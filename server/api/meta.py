"""Health, readiness, metrics, the OpenAPI document and ``whoami``.

Request counts and latencies are kept in Redis hashes (``metrics:*``), so every
server process adds to the same figures and ``/metrics`` on any of them shows the
whole. Each process counts in memory and adds its counts to Redis at most once a
second (and before it answers a scrape), so a request costs no Redis round trip for
metrics; another process's last second may be missing from a scrape. Deployment,
service, instance and agent gauges are read from the state store at scrape time.
The figures are hand-written Prometheus text (no extra dependency).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from typing import Any

from flask import Blueprint, Flask, Response, g, jsonify, request

from ..auth import current_identity
from ..context import current_berth
from ..errors import Unavailable
from .schema import openapi

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def register(bp: Blueprint) -> None:
    """Add the meta routes to the API blueprint."""
    bp.add_url_rule("/healthz", view_func=healthz, methods=["GET"])
    bp.add_url_rule("/readyz", view_func=readyz, methods=["GET"])
    bp.add_url_rule("/metrics", view_func=metrics, methods=["GET"])
    bp.add_url_rule("/openapi.json", view_func=openapi_document, methods=["GET"])
    bp.add_url_rule("/whoami", view_func=whoami, methods=["GET"])


def init_app(app: Flask) -> None:
    """Root aliases for probes and scrapers, and the request metrics hooks."""
    app.add_url_rule("/healthz", "healthz", healthz)
    app.add_url_rule("/readyz", "readyz", readyz)
    app.add_url_rule("/metrics", "metrics", metrics)
    app.add_url_rule("/openapi.json", "openapi", openapi_document)
    app.before_request(_start_timer)
    app.teardown_request(_record_request)


def healthz() -> Any:
    """The process is up (touches nothing)."""
    return jsonify({"status": "ok"})


def readyz() -> Any:
    """Redis and the broker answer.

    :raises Unavailable: naming what does not answer.
    """
    berth = current_berth()
    problems = []
    try:
        berth.redis.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        problems.append({"path": "redis", "message": _short(exc)})
    if berth.settings.broker != berth.settings.redis_url:
        problem = _check_broker(berth)
        if problem:
            problems.append({"path": "broker", "message": problem})
    if problems:
        raise Unavailable("not ready", details=problems)
    return jsonify({"status": "ready", "checks": {"redis": "ok", "broker": "ok"}})


def _check_broker(berth: Any) -> str | None:
    """None if the broker accepts a connection, else why not."""
    try:
        with berth.celery.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=berth.settings.redis_timeout)
    except Exception as exc:  # noqa: BLE001
        return _short(exc)
    return None


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


def openapi_document() -> Any:
    """The OpenAPI 3.1 document of this API."""
    return jsonify(openapi())


def whoami() -> Any:
    """The caller's identity and role (what ``berth login`` checks)."""
    return jsonify(current_identity().to_dict())


# metrics -----------------------------------------------------------------------
class MetricsBuffer:
    """Request figures counted in memory, added to Redis in one pipeline per flush."""

    FLUSH_SECONDS = 1.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._buckets: Counter[str] = Counter()
        self._sums: dict[str, float] = defaultdict(float)
        self._flushed = time.monotonic()

    def add(self, method: str, endpoint: str, status: int, elapsed: float) -> bool:
        """Count one request; True when a flush is due."""
        bucket = next((str(b) for b in BUCKETS if elapsed <= b), "+Inf")
        with self._lock:
            self._requests[f"{method}|{endpoint}|{status}"] += 1
            self._buckets[f"{endpoint}|{bucket}"] += 1
            self._sums[endpoint] += elapsed
            return time.monotonic() - self._flushed >= self.FLUSH_SECONDS

    def flush(self, berth: Any) -> None:
        """Add the counts to Redis (they are dropped if Redis refuses them)."""
        with self._lock:
            requests, buckets, sums = self._requests, self._buckets, self._sums
            self._requests, self._buckets, self._sums = Counter(), Counter(), defaultdict(float)
            self._flushed = time.monotonic()
        if not requests:
            return
        key = berth.store.state.key
        pipe = berth.redis.pipeline(transaction=False)
        for field, count in requests.items():
            pipe.hincrby(key("metrics", "requests"), field, count)
        for field, count in buckets.items():
            pipe.hincrby(key("metrics", "latency"), field, count)
        for field, total in sums.items():
            pipe.hincrbyfloat(key("metrics", "latency_sum"), field, total)
        pipe.execute()


def _buffer(berth: Any) -> MetricsBuffer:
    buffer = getattr(berth, "metrics_buffer", None)
    if buffer is None:
        buffer = berth.metrics_buffer = MetricsBuffer()
    return buffer


def _start_timer() -> None:
    g.berth_started = time.perf_counter()


def _record_request(error: BaseException | None) -> None:
    """Count this request; now and then add the counts to Redis (never fails a request)."""
    started = g.pop("berth_started", None)
    if started is None:
        return
    berth = current_berth()
    status = getattr(g, "berth_status", None) or 0
    due = _buffer(berth).add(request.method, request.endpoint or "unmatched", status,
                             time.perf_counter() - started)
    if not due or g.get("backend_down") or time.monotonic() < berth.metrics_paused_until:
        return
    try:
        _buffer(berth).flush(berth)
    except Exception:  # noqa: BLE001 - metrics must never break a request
        berth.metrics_paused_until = time.monotonic() + 5  # Redis away: stop trying a while


def remember_status(response: Response) -> Response:
    """Keep the status for the teardown hook (which has no response)."""
    g.berth_status = response.status_code
    return response


def metrics() -> Any:
    """Prometheus text: requests, latencies, deployments, services, instances, agents."""
    berth = current_berth()
    _buffer(berth).flush(berth)
    lines = _request_lines(berth) + _state_lines(berth)
    return Response("\n".join(lines) + "\n", mimetype="text/plain",
                    headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _request_lines(berth: Any) -> list[str]:
    key = berth.store.state.key
    counts = {_text(k): int(v) for k, v in berth.redis.hgetall(key("metrics", "requests")).items()}
    buckets = {_text(k): int(v) for k, v in berth.redis.hgetall(key("metrics", "latency")).items()}
    sums = {_text(k): float(v) for k, v in
            berth.redis.hgetall(key("metrics", "latency_sum")).items()}
    lines = ["# HELP berth_http_requests_total HTTP requests answered, by endpoint and status.",
             "# TYPE berth_http_requests_total counter"]
    for field, count in sorted(counts.items()):
        method, endpoint, status = (field.split("|") + ["", "", ""])[:3]
        lines.append(f'berth_http_requests_total{{method="{method}",endpoint="{endpoint}",'
                     f'status="{status}"}} {count}')
    lines += ["# HELP berth_http_request_duration_seconds Time to answer, by endpoint.",
              "# TYPE berth_http_request_duration_seconds histogram"]
    for endpoint in sorted(sums):
        total = 0
        for le in [*map(str, BUCKETS), "+Inf"]:
            total += buckets.get(f"{endpoint}|{le}", 0)
            lines.append(f'berth_http_request_duration_seconds_bucket{{endpoint="{endpoint}",'
                         f'le="{le}"}} {total}')
        lines.append(f'berth_http_request_duration_seconds_sum{{endpoint="{endpoint}"}} '
                     f'{sums[endpoint]:.6f}')
        lines.append(f'berth_http_request_duration_seconds_count{{endpoint="{endpoint}"}} '
                     f'{total}')
    return lines


def _state_lines(berth: Any) -> list[str]:
    services, instances = berth.application.services.inventory()
    deployments = berth.application.services.deployments(limit=500)
    agents = berth.application.agents.agents()
    lines: list[str] = []
    for metric, what, records, field in (
        ("berth_services", "Services by status.", services, "status"),
        ("berth_instances", "Instances by state.", instances, "state"),
        ("berth_deployments", "Recent deployments (last 500) by status.", deployments, "status"),
        ("berth_agents", "Agents by state.", agents, "state"),
    ):
        lines += [f"# HELP {metric} {what}", f"# TYPE {metric} gauge"]
        tally: dict[str, int] = {}
        for record in records:
            value = str(record.get(field, "unknown"))
            tally[value] = tally.get(value, 0) + 1
        lines += [f'{metric}{{{field}="{v}"}} {n}' for v, n in sorted(tally.items())]
    return lines
