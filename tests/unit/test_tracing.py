"""nimbus.tracing's spans, made by the SDK itself and kept in its in-memory exporter: what a
failing request, an unknown method and a store call in a worker thread look like. (What a
collector receives from `nimbus serve`: tests/e2e/test_traces.py.)"""

import asyncio
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI, Response
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, Tracer

from nimbus import tracing
from nimbus.api import spans
from nimbus.calls import in_threads, on_loop
from nimbus.domain.errors import NotFound, Unavailable
from nimbus.storage import open_storage
from nimbus.storage.base import Storage

T = TypeVar("T")


@pytest.fixture
def exported() -> Iterator[tuple[Tracer, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("nimbus"), exporter
    provider.shutdown()


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    opened = open_storage(f"sqlite:///{tmp_path / 'nimbus.db'}")
    opened.create_schema()
    yield opened
    opened.close()


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


def _app() -> FastAPI:
    app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})

    @app.get("/boom/{uid}")
    async def boom(uid: str) -> None:
        raise RuntimeError(f"the message, with {uid}, stays out of the span")

    @app.get("/outage")
    async def outage() -> Response:
        return Response(status_code=503)

    @app.api_route("/teapot", methods=["BREW"])
    async def teapot() -> Response:
        return Response(status_code=418)

    return app


def _request(app: Any, method: str, path: str) -> int:
    async def send() -> int:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return (await client.request(method, path)).status_code

    return _run(send())


def _only(spans: tuple[ReadableSpan, ...]) -> ReadableSpan:
    assert len(spans) == 1, spans
    return spans[0]


def test_a_500_is_an_error_span_naming_the_exception_s_class_only(
    exported: tuple[Tracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = exported
    assert _request(spans.request_spans(_app(), tracer), "GET", "/boom/id-1234") == 500
    span = _only(exporter.get_finished_spans())
    assert span.name == "GET /boom/{uid}"
    assert span.kind == SpanKind.SERVER
    assert span.status.status_code == StatusCode.ERROR
    assert span.status.description is None
    assert dict(span.attributes or {}) == {
        "http.request.method": "GET",
        "http.route": "/boom/{uid}",
        "http.response.status_code": 500,
        "url.scheme": "http",
        "network.protocol.version": "1.1",
        "error.type": "RuntimeError",
    }
    assert span.events == ()  # no exception event: its message may quote a value


def test_a_5xx_answer_is_an_error_span_and_an_unknown_method_is_other(
    exported: tuple[Tracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = exported
    app = spans.request_spans(_app(), tracer)
    assert _request(app, "GET", "/outage") == 503
    assert _request(app, "BREW", "/teapot") == 418
    outage, teapot = exporter.get_finished_spans()
    assert outage.status.status_code == StatusCode.ERROR
    assert (outage.attributes or {})["error.type"] == "503"
    assert teapot.name == "HTTP /teapot"
    assert teapot.status.status_code == StatusCode.UNSET  # a 4xx is the client's
    assert {
        key: value
        for key, value in (teapot.attributes or {}).items()
        if key.startswith("http.request")
    } == {"http.request.method": "_OTHER", "http.request.method_original": "BREW"}


def test_store_calls_are_children_of_the_current_span_on_the_loop_and_in_threads(
    exported: tuple[Tracer, InMemorySpanExporter], storage: Storage
) -> None:
    tracer, exporter = exported
    traced = tracing.storage_spans(storage, tracer)
    assert tracing.storage_spans(traced, tracer) is traced  # wrapped once only

    async def request() -> None:
        with tracer.start_as_current_span("request"):
            await on_loop(traced.todos.list, "someone", state=None, limit=5, cursor=None)
            await in_threads(traced.users.find_by_username, "nobody")
            with pytest.raises(NotFound):
                await in_threads(traced.todos.get, "someone", "nothing")
            await in_threads(traced.ping)

    _run(request())
    *calls, parent = exporter.get_finished_spans()
    assert parent.name == "request"
    assert [call.name for call in calls] == [
        "todos.list",
        "users.find_by_username",
        "todos.get",
        "storage.ping",
    ]
    for call in calls:
        assert call.kind == SpanKind.CLIENT
        assert call.parent is not None
        assert parent.context is not None
        assert call.parent.span_id == parent.context.span_id
        assert (call.attributes or {})["db.system.name"] == "sqlite"
    missing = calls[2]
    assert (missing.attributes or {})["error.type"] == "nimbus.domain.errors.NotFound"
    assert missing.status.status_code == StatusCode.UNSET  # the store's answer, not a failure


def test_an_outage_or_a_bug_in_a_store_call_is_an_error(
    exported: tuple[Tracer, InMemorySpanExporter], storage: Storage
) -> None:
    tracer, exporter = exported

    def stalled(owner: str, uid: str) -> None:
        raise Unavailable("the store cannot be reached")

    storage.todos.get = stalled  # type: ignore[method-assign,assignment]
    traced = tracing.storage_spans(storage, tracer)
    with pytest.raises(Unavailable):
        traced.todos.get("someone", "uid")
    with pytest.raises(TypeError):
        traced.todos.list()  # type: ignore[call-arg]
    outage, bug = exporter.get_finished_spans()
    assert outage.status.status_code == StatusCode.ERROR
    assert (outage.attributes or {})["error.type"] == "nimbus.domain.errors.Unavailable"
    assert bug.status.status_code == StatusCode.ERROR
    assert (bug.attributes or {})["error.type"] == "TypeError"


def test_off_nothing_is_wrapped(storage: Storage) -> None:
    assert tracing.tracer() is None  # no test configures this process's traces
    stores = dict(vars(storage))
    assert tracing.storage_spans(storage) is storage
    assert dict(vars(storage)) == stores
    app = _app()
    assert spans.request_spans(app) is app


@pytest.mark.parametrize(
    ("environ", "wanted"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
    ],
)
def test_traces_are_wanted_when_an_endpoint_is_set(environ: dict[str, str], wanted: bool) -> None:
    assert tracing.wanted(environ) is wanted
