"""Traces as a collector receives them: `nimbus serve` with OTEL_EXPORTER_OTLP_ENDPOINT set
sends a server span per request and a client span per store call, over OTLP/HTTP, to a
receiver the test runs on 127.0.0.1 (tests/otlp_receiver.py); and without it nimbus imports
nothing of the SDK."""

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.otlp_receiver import CLIENT, ERROR, SERVER, ReceivedSpan, otlp_receiver
from tests.support import PASSWORD, cli_env, free_port, nimbus_serve

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
# Long enough that no batch leaves on its own: what arrives was flushed as the server stopped.
HOLD_THE_BATCH = "600000"  # OTEL_BSP_SCHEDULE_DELAY, ms


def _server_span(spans: list[ReceivedSpan], request_id: str) -> ReceivedSpan:
    found = [
        span
        for span in spans
        if span.kind == SERVER and span.attributes.get("nimbus.request_id") == request_id
    ]
    assert len(found) == 1, spans
    return found[0]


def _children(spans: list[ReceivedSpan], parent: ReceivedSpan) -> list[ReceivedSpan]:
    return [
        span
        for span in spans
        if span.parent_span_id == parent.span_id and span.trace_id == parent.trace_id
    ]


def test_requests_and_store_calls_arrive_as_spans(tmp_path: Path) -> None:
    with otlp_receiver() as receiver:
        with (
            nimbus_serve(
                tmp_path / "data",
                OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
                OTEL_RESOURCE_ATTRIBUTES="deployment.environment.name=test",
                OTEL_BSP_SCHEDULE_DELAY=HOLD_THE_BATCH,
            ) as served,
            httpx.Client(base_url=served.url) as http,
        ):
            signed_up = http.post(
                "/users",
                json={"username": "alice", "password": PASSWORD},
                headers={"X-Request-ID": "sign-up"},
            )
            assert signed_up.status_code == 201
            login = http.post("/login", json={"username": "alice", "password": PASSWORD})
            access = login.json()["access_token"]
            auth = {"Authorization": f"Bearer {access}"}
            created = http.post(
                "/todos",
                json={"description": "milk"},
                headers=auth
                | {"X-Request-ID": "create", "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
            )
            assert created.status_code == 201
            uid = created.json()["uid"]
            read = http.get(f"/todos/{uid}", headers=auth | {"X-Request-ID": "read"})
            assert read.status_code == 200
            other = uid[:-4] + ("0000" if not uid.endswith("0000") else "1111")
            missing = http.get(f"/todos/{other}", headers=auth | {"X-Request-ID": "missing"})
            assert missing.status_code == 404
            nowhere = http.get("/nowhere", headers={"X-Request-ID": "nowhere"})
            assert nowhere.status_code == 404
            assert receiver.received() == []  # the batch waits...
        spans = receiver.received()  # ...until the server's lifespan ends and flushes it

    assert all(span.resource["service.name"] == "nimbus" for span in spans)
    assert all(span.resource["deployment.environment.name"] == "test" for span in spans)
    assert {span.scope for span in spans} == {"nimbus"}

    # The traceparent sent is continued: the request's span is the caller's span's child.
    create = _server_span(spans, "create")
    assert create.name == "POST /todos"
    assert (create.trace_id, create.parent_span_id) == (TRACE_ID, PARENT_ID)
    assert create.attributes == {
        "http.request.method": "POST",
        "http.route": "/todos",
        "http.response.status_code": 201,
        "url.scheme": "http",
        "network.protocol.version": "1.1",
        "nimbus.request_id": "create",
    }
    assert create.status != ERROR
    # On SQLite a write runs in a worker thread, a read (todos.get below) on the event loop:
    # the store calls of both are the request's children. A todo route's session is checked
    # in the call that serves it, so the write is the request's one store call.
    stored = {span.name: span for span in _children(spans, create)}
    assert set(stored) == {"todos.add"}, stored
    assert stored["todos.add"].kind == CLIENT
    assert stored["todos.add"].attributes == {
        "db.system.name": "sqlite",
        "db.operation.name": "add",
    }

    read_span = _server_span(spans, "read")
    assert read_span.name == "GET /todos/{uid}"
    assert read_span.parent_span_id == ""  # no traceparent: a trace of its own
    assert read_span.trace_id != TRACE_ID
    assert {span.name for span in _children(spans, read_span)} == {"todos.get"}

    sign_up = _server_span(spans, "sign-up")
    assert sign_up.name == "POST /users"
    assert "users.add" in {span.name for span in _children(spans, sign_up)}

    # A record that is not there is the store's answer, not its failure.
    missing_span = _server_span(spans, "missing")
    assert missing_span.attributes["http.response.status_code"] == 404
    assert missing_span.status != ERROR
    (get,) = [span for span in _children(spans, missing_span) if span.name == "todos.get"]
    assert get.attributes["error.type"] == "nimbus.domain.errors.NotFound"
    assert get.status != ERROR

    # No route matched: the method alone names the span.
    nowhere_span = _server_span(spans, "nowhere")
    assert nowhere_span.name == "GET"
    assert "http.route" not in nowhere_span.attributes

    # Neither a path's id nor a token nor a password reaches a span.
    exported = json.dumps([[span.name, span.attributes] for span in spans])
    for secret in (uid, other, access, PASSWORD, login.json()["refresh_token"], "/nowhere"):
        assert secret not in exported


def test_each_of_two_workers_flushes_its_spans_as_it_stops(tmp_path: Path) -> None:
    """A worker that uvicorn stops dies of SIGTERM, where atexit handlers never run: its
    last spans leave when its lifespan ends."""
    request_ids = [f"ready-{n}" for n in range(8)]
    with otlp_receiver() as receiver:
        with nimbus_serve(
            tmp_path / "data",
            "--workers",
            "2",
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_BSP_SCHEDULE_DELAY=HOLD_THE_BATCH,
        ) as served:
            for request_id in request_ids:  # a connection each: either worker may take it
                answer = httpx.get(
                    f"{served.url}/health/ready", headers={"X-Request-ID": request_id}
                )
                assert answer.status_code == 200
        spans = receiver.received()
    for request_id in request_ids:
        ready = _server_span(spans, request_id)
        assert ready.name == "GET /health/ready"
        assert [span.name for span in _children(spans, ready)] == ["storage.ping"]


IMPORTS = """
import json, sys, threading
from nimbus import tracing
from nimbus.entrypoints import asgi, aws_lambda
from nimbus.settings import Settings
app = asgi.app()
app.middleware_stack = app.build_middleware_stack()
handler = aws_lambda.make_handler(Settings())
assert handler({"warmer": True}, None) == {"warm": True}
loaded = sorted(name for name in sys.modules if name.startswith("opentelemetry.sdk")
                or name.startswith("opentelemetry.exporter"))
print(json.dumps([loaded, [thread.name for thread in threading.enumerate()]]))
"""


def _fresh_process(tmp_path: Path, script: str, **env: str) -> str:
    environment = {
        key: value for key, value in cli_env(tmp_path / "data").items() if "OTEL_" not in key
    }
    environment.pop("AWS_LAMBDA_FUNCTION_NAME", None)
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=environment | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_without_an_endpoint_nothing_of_the_sdk_is_imported_or_started(tmp_path: Path) -> None:
    """The HTTP server's factory and the Lambda handler, built and answering: no module of
    the SDK or the exporter is imported, no thread started."""
    loaded, threads = json.loads(_fresh_process(tmp_path, IMPORTS))
    assert loaded == []
    assert threads == ["MainThread"]


@pytest.mark.parametrize(
    "variable", ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
)
def test_with_an_endpoint_the_sdk_is_loaded(tmp_path: Path, variable: str) -> None:
    # The other side of the test above, so that it cannot pass by testing nothing.
    loaded, threads = json.loads(
        _fresh_process(tmp_path, IMPORTS, **{variable: "http://127.0.0.1:9"})
    )
    assert "opentelemetry.sdk.trace" in loaded
    assert "opentelemetry.exporter.otlp.proto.http.trace_exporter" in loaded
    assert "OtelBatchSpanRecordProcessor" in threads


LAMBDA = """
import json, os, sys
from nimbus import tracing
from nimbus.entrypoints import aws_lambda
from nimbus.settings import Settings
from tests.aws.events import rest_event
handler = aws_lambda.make_handler(Settings())
event = rest_event("GET", "/health/ready", headers=[("X-Request-ID", "on-lambda")])
answer = handler(event, None)
print(answer["statusCode"], flush=True)
os._exit(0)  # as a frozen environment that is never thawed: no atexit, no shutdown
"""


def test_on_lambda_each_invocation_flushes_its_spans(tmp_path: Path) -> None:
    with otlp_receiver() as receiver:
        out = _fresh_process(
            tmp_path,
            LAMBDA,
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            AWS_REGION="eu-west-1",
            AWS_LAMBDA_FUNCTION_NAME="nimbus-test-api",
            PYTHONPATH=str(Path(__file__).parents[2]),
            OTEL_BSP_SCHEDULE_DELAY=HOLD_THE_BATCH,
        )
        spans = receiver.received()
    assert out.strip().splitlines()[-1] == "200"
    assert (
        spans[0].resource
        | {
            "service.name": "nimbus",
            "cloud.provider": "aws",
            "cloud.platform": "aws_lambda",
            "cloud.region": "eu-west-1",
            "faas.name": "nimbus-test-api",
        }
        == spans[0].resource
    )
    ready = _server_span(spans, "on-lambda")
    assert ready.name == "GET /health/ready"
    assert [span.name for span in _children(spans, ready)] == ["storage.ping"]


STOP = """
import json, logging, sys, time
from nimbus import tracing
logging.basicConfig(stream=sys.stderr)
tracing.SHUTDOWN_WAIT = 0.5
assert tracing.configure()
with tracing.tracer().start_as_current_span("lost"):
    pass
started = time.monotonic()
tracing.shutdown()
print(json.dumps(time.monotonic() - started))
"""


def test_a_collector_that_is_down_delays_the_stop_by_a_bounded_wait(tmp_path: Path) -> None:
    """The SDK would wait up to 30 s, retrying its export, past a container's time to stop."""
    port = free_port()  # nothing listens there
    result = subprocess.run(
        [sys.executable, "-c", STOP],
        env=cli_env(tmp_path / "data", OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}"),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert 0.4 < json.loads(result.stdout) < 2
    assert "the last spans were not exported within" in result.stderr
