"""nimbus's log lines on Lambda: the handler module, imported in a fresh interpreter as the Lambda
runtime imports it (after the runtime has put its own handler on the root logger), answers API
Gateway events; every line it writes is one nimbus JSON object with what Lambda's JSON log
format reads (`timestamp`, `level`), and every record of an invocation names its Lambda and API
Gateway request ids. Also the SnapStart restore hook, and the pieces in-process."""

import json
import logging
import random
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from nimbus.bootstrap import build
from nimbus.container import Container
from nimbus.entrypoints import aws_lambda
from nimbus.logs import INVOCATION, LambdaJsonFormatter, lambda_log_level
from nimbus.storage.dynamodb import DynamoStorage
from tests.aws.events import http_event, rest_event
from tests.support import cli_env, make_settings

# Port 9 (discard) refuses connections: the store is down, so /health/ready answers 503 and
# logs why. Nothing else reaches the store.
UNREACHABLE = "dynamodb://?region=us-east-1&table_prefix=t-&endpoint_url=http://127.0.0.1:9"

PROBE = """
import json, logging, sys

# What the Lambda runtime does before it imports the handler (awslambdaric's bootstrap): its
# own handler on the root logger, writing its own format.
runtime = logging.StreamHandler(sys.stdout)
runtime.setFormatter(logging.Formatter("RUNTIME [%(levelname)s] %(message)s"))
logging.getLogger().addHandler(runtime)

from nimbus.entrypoints import aws_lambda

class Context:
    def __init__(self, aws_request_id):
        self.aws_request_id = aws_request_id

answers = []
for lambda_id, event in json.load(open(sys.argv[1])):
    answers.append(aws_lambda.handler(event, Context(lambda_id))["statusCode"])
json.dump({"answers": answers, "handlers": len(logging.getLogger().handlers)},
          open(sys.argv[2], "w"))
"""


def _event(kind: str, method: str, path: str, gateway_id: str, **options: Any) -> dict[str, Any]:
    event = (rest_event if kind == "rest" else http_event)(method, path, **options)
    event["requestContext"]["requestId"] = gateway_id
    return event


INVOCATIONS = [
    (
        "lambda-health",
        _event("rest", "GET", "/health", "gateway-health", headers=[("X-Request-ID", "trace-1")]),
    ),
    ("lambda-ready", _event("http", "GET", "/health/ready", "gateway-ready")),
    (
        "lambda-todo",
        _event("rest", "GET", "/todos/0190a5d2-7c2e-7000-8000-000000000000", "gw-todo"),
    ),
]


def _invoke(tmp_path: Path, **env: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    events, result = tmp_path / "events.json", tmp_path / "result.json"
    events.write_text(json.dumps(INVOCATIONS))
    run = subprocess.run(
        [sys.executable, "-c", PROBE, str(events), str(result)],
        env=cli_env(
            tmp_path,
            AWS_LAMBDA_FUNCTION_NAME="nimbus-test-api",
            AWS_ACCESS_KEY_ID="test",
            AWS_SECRET_ACCESS_KEY="test",
            NIMBUS_DATABASE_URL=UNREACHABLE,
            **env,
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = [line for line in (run.stdout + run.stderr).splitlines() if line.strip()]
    # Every line is one JSON object: nimbus's records, and CloudWatch's metric documents (EMF).
    parsed = [json.loads(line) for line in lines]
    assert all(isinstance(line, dict) for line in parsed), lines
    records = [line for line in parsed if "_aws" not in line]
    return records, json.loads(result.read_text())


def test_every_line_is_nimbus_json_naming_the_invocation(tmp_path: Path) -> None:
    records, result = _invoke(tmp_path)
    assert result == {"answers": [200, 503, 401], "handlers": 1}  # the runtime's went
    assert records
    for record in records:
        assert {"time", "timestamp", "level", "logger", "message"} <= record.keys(), record
        assert record["level"] in {"DEBUG", "INFO", "WARN", "ERROR", "FATAL"}, record
        if "request_id" in record:  # logged while an invocation ran
            assert record["lambda_request_id"].startswith("lambda-"), record
            assert record["apigw_request_id"], record

    # One access record per request, nimbus's: Mangum's own (the raw path) is off.
    assert not [r for r in records if r["logger"].startswith("mangum")]
    access = {r["lambda_request_id"]: r for r in records if r["logger"] == "nimbus.access"}
    assert set(access) == {"lambda-health", "lambda-ready", "lambda-todo"}
    expected = {
        "lambda-health": ("GET", "/health", 200, "gateway-health"),
        "lambda-ready": ("GET", "/health/ready", 503, "gateway-ready"),
        "lambda-todo": ("GET", "/todos/{uid}", 401, "gw-todo"),  # the template, not the path
    }
    for lambda_id, (method, route, status, gateway_id) in expected.items():
        line = access[lambda_id]
        assert (line["method"], line["route"], line["status"]) == (method, route, status)
        assert line["apigw_request_id"] == gateway_id
        assert line["level"] == "INFO"
        assert isinstance(line["duration_ms"], float | int)
        assert line["duration_ms"] >= 0
        assert line["request_id"]
    assert access["lambda-health"]["request_id"] == "trace-1"  # the caller's X-Request-ID

    # The 503's one record, logged by the app while the invocation ran, names it too.
    [outage] = [r for r in records if r["level"] == "ERROR"]
    assert outage["lambda_request_id"] == "lambda-ready"
    assert outage["apigw_request_id"] == "gateway-ready"
    assert outage["request_id"] == access["lambda-ready"]["request_id"]
    assert "503 on GET /health/ready" in outage["message"]
    assert "Traceback" in outage["exception"]


def test_the_functions_application_log_level_wins(tmp_path: Path) -> None:
    """Lambda sets AWS_LAMBDA_LOG_LEVEL from the function's ApplicationLogLevel and drops
    lines below it: nimbus does not write them, whatever NIMBUS_LOG_LEVEL says."""
    records, _ = _invoke(tmp_path, AWS_LAMBDA_LOG_LEVEL="WARN", NIMBUS_LOG_LEVEL="DEBUG")
    assert [r["level"] for r in records] == ["ERROR"]

    records, _ = _invoke(tmp_path, NIMBUS_LOG_LEVEL="ERROR")  # without one, nimbus's setting
    assert [r["level"] for r in records] == ["ERROR"]


def _record(level: int, message: str = "hello", **fields: Any) -> logging.LogRecord:
    return logging.getLogger("nimbus.test").makeRecord(
        "nimbus.test", level, __file__, 1, message, (), None, extra={"fields": fields}
    )


def test_lambda_lines_carry_lambdas_level_names_and_timestamp() -> None:
    formatter = LambdaJsonFormatter()
    warning = json.loads(formatter.format(_record(logging.WARNING)))
    assert warning["level"] == "WARN"
    assert warning["timestamp"] == warning["time"]
    assert warning["timestamp"].endswith("Z")
    assert json.loads(formatter.format(_record(logging.CRITICAL)))["level"] == "FATAL"
    assert json.loads(formatter.format(_record(logging.INFO)))["level"] == "INFO"


def test_a_record_made_during_an_invocation_names_it() -> None:
    ids = {"lambda_request_id": "abc", "apigw_request_id": "def"}
    token = INVOCATION.set(ids)
    try:
        during = _record(logging.WARNING, "careful", route="/x")
    finally:
        INVOCATION.reset(token)
    after = _record(logging.WARNING)
    line = json.loads(LambdaJsonFormatter().format(during))
    assert (line["lambda_request_id"], line["apigw_request_id"]) == ("abc", "def")
    assert (line["route"], line["level"]) == ("/x", "WARN")
    assert "lambda_request_id" not in json.loads(LambdaJsonFormatter().format(after))


@pytest.mark.parametrize(
    ("value", "level"),
    [
        ("TRACE", "DEBUG"),
        ("debug", "DEBUG"),
        ("INFO", "INFO"),
        ("WARN", "WARNING"),
        ("ERROR", "ERROR"),
        ("FATAL", "CRITICAL"),
        ("", None),
        ("LOUD", None),
    ],
)
def test_lambdas_log_levels_in_pythons_words(value: str, level: str | None) -> None:
    assert lambda_log_level({"AWS_LAMBDA_LOG_LEVEL": value}) == level
    assert lambda_log_level({}) is None


def test_invocation_ids_are_those_there_are() -> None:
    class Context:
        aws_request_id = "lambda-1"

    event = {"requestContext": {"requestId": "gateway-1"}}
    assert aws_lambda.invocation_ids(event, Context()) == {
        "lambda_request_id": "lambda-1",
        "apigw_request_id": "gateway-1",
    }
    assert aws_lambda.invocation_ids({"requestContext": {}}, Context()) == {
        "lambda_request_id": "lambda-1"
    }
    assert aws_lambda.invocation_ids({}, None) is None


def _dynamodb_container(tmp_path: Path) -> Container:
    settings = make_settings(tmp_path, database_url=UNREACHABLE)
    return build(settings, provision=False, one_request_at_a_time=True)


def test_after_restore_copies_draw_apart_and_reconnect(tmp_path: Path) -> None:
    container = _dynamodb_container(tmp_path)
    storage = container.storage
    assert isinstance(storage, DynamoStorage)
    client = storage.client  # a pool made before the snapshot

    snapshot = random.getstate()
    # Without the hook, two environments resumed from one snapshot draw the same numbers.
    first = random.random()
    random.setstate(snapshot)
    assert random.random() == first

    random.setstate(snapshot)
    aws_lambda.after_restore(container)
    one = random.random()
    random.setstate(snapshot)
    aws_lambda.after_restore(container)
    other = random.random()
    assert one != other
    assert storage.client is not client  # the pool from before is gone; a new one on use


def test_the_restore_hook_is_registered_where_the_runtime_has_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    container = _dynamodb_container(tmp_path)
    aws_lambda._on_each_restore(container)  # no snapshot_restore_py here: nothing to do

    registered: list[tuple[Any, ...]] = []
    hooks = types.ModuleType("snapshot_restore_py")
    hooks.register_after_restore = lambda func, *args: registered.append((func, *args))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", hooks)
    aws_lambda._on_each_restore(container)
    assert registered == [(aws_lambda.after_restore, container)]
