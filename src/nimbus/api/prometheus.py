"""GET /metrics in Prometheus's text format, for the HTTP server (nimbus.metrics names what is
counted).

Off unless NIMBUS_METRICS_TOKEN is set; then only a request with `Authorization: Bearer
<that token>` is answered. With several workers (`nimbus serve --workers N`, or a process
manager that sets PROMETHEUS_MULTIPROC_DIR) each worker writes its counts to files in that
directory and a scrape, whichever worker answers it, adds them up: prometheus-client's
multiprocess mode, chosen when the library is imported.
"""

import bisect
import hmac
import os
import threading

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
# How long a request's observation may wait in the worker before it reaches the registry (and,
# with several workers, the files every scrape reads).
FLUSH_SECONDS = 1.0


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
        # Requests are counted here first, a list per label set: [one count per bucket, the
        # +Inf bucket's, the sum of seconds]. An observation in the library takes a lock per
        # value and, with several workers, writes a file; one a request was most of what the
        # metrics cost a request (bench.overhead). flush() hands the counts on: at each
        # scrape, at the end, and from a thread within FLUSH_SECONDS.
        self._pending: dict[tuple[str, str, int], list[float]] = {}
        self._pending_lock = threading.Lock()
        self._flusher: threading.Thread | None = None
        self._stop = threading.Event()

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        with self._pending_lock:
            counts = self._pending.get(key)
            if counts is None:
                counts = self._pending[key] = [0.0] * (len(_REQUEST_BUCKETS) + 2)
                if self._flusher is None:
                    self._start_flusher()
            counts[bisect.bisect_left(_REQUEST_BUCKETS, seconds)] += 1
            counts[-1] += seconds

    def flush(self) -> None:
        """Hand the requests counted since the last flush to the histogram."""
        with self._pending_lock:
            pending, self._pending = self._pending, {}
        for (route, method, status), counts in pending.items():
            child = self._latency.labels(route, method, str(status))
            # The histogram's own values (one per bucket, and the sum), as observe() adds to
            # them: the library has no call that adds many observations at once.
            for value, count in zip(child._buckets, counts, strict=False):
                if count:
                    value.inc(count)
            child._sum.inc(counts[-1])

    def close(self) -> None:
        """Stop the flushing thread, and flush what it had not."""
        self._stop.set()
        self.flush()

    def _start_flusher(self) -> None:
        def run() -> None:
            while not self._stop.wait(FLUSH_SECONDS):
                self.flush()

        # A daemon: a worker that dies without its lifespan's end loses a second of counts.
        self._flusher = threading.Thread(target=run, name="nimbus-metrics", daemon=True)
        self._flusher.start()

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
        self.flush()  # this worker's counts are exact; the others' at most FLUSH_SECONDS old
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
