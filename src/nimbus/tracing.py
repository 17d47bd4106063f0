"""Traces: an OpenTelemetry span per request and per store call, sent over OTLP/HTTP.

On when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT is set (and neither
OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none says otherwise), in a process that calls
`configure` at start: each worker of the HTTP server (nimbus.entrypoints.asgi) and the Lambda
function (nimbus.entrypoints.aws_lambda). Off, this module imports nothing but the standard
library, the SDK is never imported and nothing is started: `storage_spans` and the request
spans' middleware (nimbus.api.spans) hand back what they are given.

On, the SDK reads the standard OTEL_* variables itself (headers, timeout, compression,
sampler, batching, resource attributes); the service is called "nimbus" unless
OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES name it. A BatchSpanProcessor exports from a
thread of its own; the server flushes it when its lifespan ends (a worker that uvicorn stops
dies of SIGTERM, so atexit alone would lose the last batch), Lambda after every invocation
(the environment is frozen between them, and may be ended without notice).

A request's span is a server span named by its route's template ("GET /todos/{uid}"), never
by its path, which may hold an id or an email; it continues the trace of an incoming W3C
`traceparent`. A store call's span ("todos.get") is its child, in a worker thread too (anyio
copies the context into the thread that runs a call, nimbus.calls).
"""

import functools
import logging
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer

    from nimbus.storage.base import Storage

S = TypeVar("S", bound="Storage")

ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_TIMEOUTS = ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
_PROTOCOLS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
# On Lambda every invocation waits for its flush: an unreachable collector costs it about this
# long (seconds), unless an OTEL_EXPORTER_OTLP_*TIMEOUT says otherwise.
LAMBDA_EXPORT_TIMEOUT = 1.0
# How long a stopping server waits for its last spans to leave (seconds).
SHUTDOWN_WAIT = 5.0
# The storage backends' modules, by the name semantic conventions give their systems.
_DB_SYSTEMS = {
    "nimbus.storage.sqlite": "sqlite",
    "nimbus.storage.postgres": "postgresql",
    "nimbus.storage.dynamodb": "aws.dynamodb",
}

_log = logging.getLogger("nimbus.tracing")
_provider: "TracerProvider | None" = None
_tracer: "Tracer | None" = None


def wanted(environ: Mapping[str, str]) -> bool:
    """Whether these OTEL_* variables ask for traces."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return any(environ.get(name, "").strip() for name in ENDPOINTS)


def configure() -> bool:
    """Once per process, at start: when the environment asks for traces, a tracer provider
    that exports over OTLP/HTTP, also made the global one. Whether traces are on."""
    global _provider, _tracer
    if _provider is not None:
        return True
    environ = os.environ
    if not wanted(environ):
        return False
    unsupported = _unsupported(environ)
    if unsupported:
        _log.warning("traces are off: %s", unsupported)
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import OTELResourceDetector, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        # Optional, as the logs are: a missing extra never stops the service, and says so.
        _log.warning(
            "traces are off: they need %s: install nimbus-api[tracing]"
            " (uv sync --inexact --no-dev --extra tracing)",
            exc.name,
        )
        return False

    import nimbus

    on_lambda = "AWS_LAMBDA_FUNCTION_NAME" in environ
    defaults: dict[str, str] = {"service.name": "nimbus", "service.version": nimbus.__version__}
    if on_lambda:
        defaults |= _lambda_attributes(environ)
    # The defaults under what OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME say.
    resource = Resource.create({**defaults, **OTELResourceDetector().detect().attributes})
    timeout = None
    if on_lambda and not any(environ.get(name) for name in _TIMEOUTS):
        timeout = LAMBDA_EXPORT_TIMEOUT
    try:
        processor = BatchSpanProcessor(OTLPSpanExporter(timeout=timeout))
    except ValueError as exc:  # an OTEL_BSP_* or OTEL_EXPORTER_OTLP_* value out of bounds
        _log.warning("traces are off: %s", exc)
        return False
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    _provider = provider
    _tracer = provider.get_tracer("nimbus", nimbus.__version__)
    return True


def _unsupported(environ: Mapping[str, str]) -> str | None:
    exporter = environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
    if exporter not in ("", "otlp"):
        return f"OTEL_TRACES_EXPORTER={exporter}: nimbus exports OTLP only"
    for name in _PROTOCOLS:
        protocol = environ.get(name, "").strip()
        if protocol:
            if protocol != "http/protobuf":
                return f"{name}={protocol}: nimbus exports OTLP over HTTP (http/protobuf)"
            break
    return None


def _lambda_attributes(environ: Mapping[str, str]) -> dict[str, str]:
    attributes = {"cloud.provider": "aws", "cloud.platform": "aws_lambda"}
    for attribute, variable in (
        ("cloud.region", "AWS_REGION"),
        ("faas.name", "AWS_LAMBDA_FUNCTION_NAME"),
        ("faas.version", "AWS_LAMBDA_FUNCTION_VERSION"),
    ):
        if environ.get(variable):
            attributes[attribute] = environ[variable]
    return attributes


def tracer() -> "Tracer | None":
    """nimbus's tracer once `configure` turned traces on, else None."""
    return _tracer


def flush() -> None:
    """Export the spans that have ended and wait for it (Lambda, after each invocation)."""
    if _provider is not None:
        _provider.force_flush()


def shutdown() -> None:
    """Flush and stop the exporter (the server, when its lifespan ends), waiting at most
    SHUTDOWN_WAIT: the SDK's own bound is 30 s, and its exports retry for 10 s each while a
    collector is down, longer than a container is given to stop. A no-op when off."""
    global _provider, _tracer
    provider, _provider, _tracer = _provider, None, None
    if provider is None:
        return
    import threading

    stopping = threading.Thread(target=provider.shutdown, name="nimbus-traces-stop", daemon=True)
    stopping.start()
    stopping.join(SHUTDOWN_WAIT)
    if stopping.is_alive():
        _log.warning("traces: the last spans were not exported within %.0f s", SHUTDOWN_WAIT)


def storage_spans(storage: S, traced_by: "Tracer | None" = None) -> S:
    """`storage`, each of its stores' calls in a client span named "<store>.<method>"
    ("todos.get") and its readiness probe in "storage.ping"; `storage` untouched when traces
    are off. Every store its Protocol declares is wrapped, one that a later change adds too."""
    spans = traced_by or _tracer
    if spans is None:
        return storage
    from typing import get_type_hints

    from nimbus.storage.base import Storage

    system = _DB_SYSTEMS.get(type(storage).__module__)
    for name, protocol in get_type_hints(Storage).items():
        if not (isinstance(protocol, type) and getattr(protocol, "_is_protocol", False)):
            continue  # a flag (embedded, inline_reads), not a store
        store = getattr(storage, name, None)
        if store is None or isinstance(store, _TracedStore):
            continue
        methods = [
            method
            for method in dir(protocol)
            if not method.startswith("_") and callable(getattr(protocol, method))
        ]
        setattr(storage, name, _TracedStore(store, name, methods, spans, system))
    ping = storage.ping
    if not hasattr(ping, "__wrapped__"):
        storage.ping = _traced(ping, "storage.ping", "ping", spans, system)  # type: ignore[method-assign]
    return storage


class _TracedStore:
    """A store whose interface methods each run in a span; anything else is the store's."""

    def __init__(
        self, store: object, name: str, methods: list[str], spans: "Tracer", system: str | None
    ) -> None:
        self._store = store
        for method in methods:
            call = getattr(store, method)
            setattr(self, method, _traced(call, f"{name}.{method}", method, spans, system))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def _traced(
    call: Callable[..., Any], name: str, operation: str, spans: "Tracer", system: str | None
) -> Callable[..., Any]:
    from opentelemetry.trace import SpanKind, StatusCode

    from nimbus.domain.errors import NimbusError, Unavailable

    attributes = {"db.operation.name": operation}
    if system is not None:
        attributes["db.system.name"] = system

    @functools.wraps(call)
    def run(*args: Any, **kwargs: Any) -> Any:
        # Never the current span: a store call makes no spans of its own, and attaching it to
        # the context would cost every call more.
        span = spans.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
        try:
            return call(*args, **kwargs)
        except BaseException as exc:
            span.set_attribute("error.type", error_type(exc))
            # A missing record, a taken name or a stale version is an answer the store gave;
            # an outage or a bug is an error.
            if isinstance(exc, Unavailable) or not isinstance(exc, NimbusError):
                span.set_status(StatusCode.ERROR)
            raise
        finally:
            span.end()

    return run


def error_type(exc: BaseException) -> str:
    """The exception's class, never its message (which may quote a value)."""
    cls = type(exc)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )
