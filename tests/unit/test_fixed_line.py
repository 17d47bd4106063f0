"""The access record's own writer (nimbus.logs.FixedLine) writes the very line the JSON
formatter makes of the same record, and steps aside whenever anything else would see it."""

import io
import json
import logging
from collections.abc import Iterator

import pytest

from nimbus import logs

KEYS = ("method", "route", "status", "duration_ms", "principal", "client", "user_agent")
AGENTS = ["curl/8.5.0", 'a "quoted" \\ agent\x01\x7f', "é, ü, 漢字, \u2028", None]


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logs._json_handler = None


def _written(formatter: logging.Formatter, fast: bool, *values: object) -> str:
    """The line written; `fast`, straight to the handler, and no LogRecord is made."""
    stream = io.StringIO()
    logs.configure("json", "INFO", stream, formatter=formatter)
    if not fast:
        logs._json_handler = None  # as when another handler would see the record
    line = logs.FixedLine(logging.getLogger("nimbus.test_fixed"), logging.INFO, KEYS)
    request = logs.REQUEST_ID.set("trace-1")
    invocation = logs.INVOCATION.set({"lambda_request_id": "L-1", "apigw_request_id": "G-1"})
    made: list[logging.LogRecord] = []
    factory = logging.getLogRecordFactory()

    def counted(*args: object, **kwargs: object) -> logging.LogRecord:
        made.append(factory(*args, **kwargs))
        return made[-1]

    logging.setLogRecordFactory(counted)
    try:
        line.write("GET /todos/{uid} 200", *values)  # type: ignore[arg-type]
    finally:
        logging.setLogRecordFactory(factory)
        logs.INVOCATION.reset(invocation)
        logs.REQUEST_ID.reset(request)
    assert len(made) == (0 if fast else 1)
    return stream.getvalue()


@pytest.mark.parametrize("formatter", [logs.JsonFormatter, logs.LambdaJsonFormatter])
@pytest.mark.parametrize("agent", AGENTS)
def test_the_line_is_the_formatters_own(formatter: type[logs.JsonFormatter], agent: str) -> None:
    values = ("GET", "/todos/{uid}", 200, 1.25, "0190abcd", None, agent)
    fast = _written(formatter(), True, *values)
    slow = _written(formatter(), False, *values)
    assert fast.endswith("\n")
    assert fast.count("\n") == 1
    ours, theirs = json.loads(fast), json.loads(slow)
    for key in ("time", "timestamp"):  # the same form, a moment apart
        assert (key in ours) == (key in theirs)
        ours.pop(key, None), theirs.pop(key, None)
    assert list(json.loads(fast)) == list(json.loads(slow))  # the same keys, in one order
    assert ours == theirs
    assert ours["user_agent"] == agent
    assert ours["lambda_request_id"] == "L-1"


def test_a_handler_or_a_filter_on_the_way_sees_a_record() -> None:
    stream = io.StringIO()
    logs.configure("json", "INFO", stream)
    logger = logging.getLogger("nimbus.test_fixed.filtered")
    seen: list[logging.LogRecord] = []

    class Keep(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            seen.append(record)
            return True

    keep = Keep()
    logger.addFilter(keep)
    try:
        logs.FixedLine(logger, logging.INFO, ("status",)).write("one", 200)
    finally:
        logger.removeFilter(keep)
    assert [record.fields for record in seen] == [{"status": 200}]  # type: ignore[attr-defined]
    assert json.loads(stream.getvalue())["status"] == 200

    caught: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = caught.append  # type: ignore[method-assign,assignment]
    logger.addHandler(handler)
    try:
        logs.FixedLine(logger, logging.INFO, ("status",)).write("two", 201)
    finally:
        logger.removeHandler(handler)
    assert [record.getMessage() for record in caught] == ["two"]
