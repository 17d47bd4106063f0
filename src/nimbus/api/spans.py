"""A server span per HTTP request, when traces are on (nimbus.tracing): named by the route's
template ("GET /todos/{uid}"), never by the path, which may hold an id or an email; with the
request id; continuing the trace of an incoming W3C `traceparent`."""

from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nimbus import tracing
from nimbus.api.access import route_template
from nimbus.logs import REQUEST_ID

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

# Semantic conventions' methods; any other is "_OTHER", its span named "HTTP".
_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE"}
)


def request_spans(app: ASGIApp, traced_by: "Tracer | None" = None) -> ASGIApp:
    """`app` with a server span around each HTTP request, or `app` itself when traces are
    off. Placed inside the request id's middleware (nimbus.api.access), whose id it records,
    and outside Starlette's error middleware, whose 500 it sees."""
    spans = traced_by or tracing.tracer()
    if spans is None:
        return app
    from opentelemetry import propagate, trace
    from opentelemetry.trace import SpanKind, StatusCode

    # Only the propagators' own headers are read (traceparent, tracestate, baggage): no other
    # header, so no token, reaches a span.
    textmap = propagate.get_global_textmap()
    fields = frozenset(name.lower().encode("latin-1") for name in textmap.fields)

    async def traced(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        sent = scope["method"]
        method = sent if sent in _METHODS else "_OTHER"
        name = method if method != "_OTHER" else "HTTP"
        carrier = {
            key.decode("latin-1"): value.decode("latin-1")
            for key, value in scope["headers"]
            if key in fields
        }
        attributes: dict[str, str] = {
            "http.request.method": method,
            "url.scheme": scope.get("scheme", "http"),
            "network.protocol.version": scope.get("http_version", "1.1"),
        }
        if method != sent:
            attributes["http.request.method_original"] = sent
        request_id = REQUEST_ID.get()
        if request_id is not None:
            attributes["nimbus.request_id"] = request_id
        context = scope.get("aws.context")
        invocation = getattr(context, "aws_request_id", None)
        if isinstance(invocation, str):
            attributes["faas.invocation_id"] = invocation
        span = spans.start_span(
            name,
            context=textmap.extract(carrier) if carrier else None,
            kind=SpanKind.SERVER,
            attributes=attributes,
        )
        status: int | None = None

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        error: str | None = None
        try:
            with trace.use_span(
                span, end_on_exit=False, record_exception=False, set_status_on_exception=False
            ):
                await app(scope, receive, send_status)
        except BaseException as exc:
            error = tracing.error_type(exc)
            raise
        finally:
            route = route_template(scope)
            if route is not None:
                span.update_name(f"{name} {route}")
                span.set_attribute("http.route", route)
            if status is not None:
                span.set_attribute("http.response.status_code", status)
            if error is None and (status is None or status >= 500):
                error = str(status) if status is not None else "incomplete_response"
            if error is not None:
                span.set_attribute("error.type", error)
                span.set_status(StatusCode.ERROR)
            span.end()

    return traced
