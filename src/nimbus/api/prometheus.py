"""GET /metrics in Prometheus's text format, for the HTTP server (nimbus.metrics names what is
counted).

Off unless NIMBUS_METRICS_TOKEN is set; then only a request with `Authorization: Bearer
<that token>` is answered. With several workers (`nimbus serve --workers N`, or a process
manager that sets PROMETHEUS_MULTIPROC_DIR) each worker writes its counts to files in that
directory and a scrape, whichever worker answers it, adds them up: prometheus-client's
multiprocess mode, chosen when the library is imported.
"""

import hmac
import os

from fastapi.routing import APIRoute
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.requests import Request
from starlette.responses import Response

from nimbus.api.errors import error_response
from nimbus.metrics import LoginOutcome, MailOutcome

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
PATH = "/metrics"

# Latency buckets in seconds: a read takes a millisecond or less, a login tens (argon2).
_REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_WAIT_BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Prometheus:
    """The sink: one set of metrics per process, in its own registry (a scrape in multiprocess
    mode reads the files instead)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        # The requests' count is the histogram's: nimbus_http_request_duration_seconds_count.
        # One metric a request, not two: each observation costs a lock and a file write.
        self._latency = Histogram(
            "nimbus_http_request_duration_seconds",
            "Requests answered and the time from arrival to the answer's end, by route template,"
            " method and status.",
            ("route", "method", "status"),
            buckets=_REQUEST_BUCKETS,
            registry=reg,
        )
        self._logins = Counter(
            "nimbus_logins", "Password logins, by outcome.", ("outcome",), registry=reg
        )
        self._hash_wait = Histogram(
            "nimbus_password_hash_wait_seconds",
            "Time a password hash waited for a free slot.",
            buckets=_WAIT_BUCKETS,
            registry=reg,
        )
        self._store_errors = Counter(
            "nimbus_store_errors", "Store calls that failed, by kind.", ("kind",), registry=reg
        )
        self._audit_failures = Counter(
            "nimbus_audit_write_failures",
            "Audit events that could not be written.",
            registry=reg,
        )
        self._mails = Counter(
            "nimbus_mails", "Mails handed to the sender, by outcome.", ("outcome",), registry=reg
        )
        self._pool_in_use = Gauge(
            "nimbus_db_pool_connections_in_use",
            "PostgreSQL connections checked out of the pool.",
            registry=reg,
            multiprocess_mode="livesum",
        )
        self._pool_size = Gauge(
            "nimbus_db_pool_connections_max",
            "The PostgreSQL pool's size: at most this many connections.",
            registry=reg,
            multiprocess_mode="livesum",
        )
        # Made on first use of each label set, then found by a dict lookup (labels() takes a
        # lock and builds a tuple per call).
        self._request_children: dict[tuple[str, str, int], Histogram] = {}

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = self._latency.labels(route, method, str(status))
        child.observe(seconds)

    def login(self, outcome: LoginOutcome) -> None:
        self._logins.labels(outcome).inc()

    def hash_wait(self, seconds: float) -> None:
        self._hash_wait.observe(seconds)

    def store_error(self, kind: str) -> None:
        self._store_errors.labels(kind).inc()

    def audit_failure(self) -> None:
        self._audit_failures.inc()

    def mail(self, outcome: MailOutcome) -> None:
        self._mails.labels(outcome).inc()

    def pool_in_use(self, change: int) -> None:
        self._pool_in_use.inc(change)

    def pool_size(self, size: int) -> None:
        self._pool_size.set(size)

    def exposition(self) -> bytes:
        if os.environ.get(MULTIPROCESS_DIR):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


def route(sink: Prometheus, token: str) -> APIRoute:
    """GET /metrics, answered only for `Authorization: Bearer <token>`."""
    expected = f"Bearer {token}".encode()

    async def metrics(request: Request) -> Response:
        sent = request.headers.get("authorization", "").encode("latin-1", "replace")
        if not hmac.compare_digest(sent, expected):
            return error_response(
                401,
                "unauthorized",
                "The metrics need the metrics token",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        return Response(sink.exposition(), media_type=CONTENT_TYPE_LATEST)

    return APIRoute(PATH, metrics, methods=["GET"], include_in_schema=False, name="metrics")
