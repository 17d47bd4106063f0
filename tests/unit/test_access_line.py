"""The access line from its cache of prepared lines is the line the JSON formatter makes of the
same record, field for field, escaping included, the first time and every time after."""

import io
import json
import logging
from collections.abc import Iterator
from itertools import product
from typing import Any

import pytest

from nimbus import logs
from nimbus.api import access

AGENTS = [
    b"curl/8.5.0",
    b'a "quoted" \\ agent\x01\x7f\x1f',
    "é, ü, 漢字, \u2028".encode(),
    b"",
    None,
    b"\xff\xfe" * 200,
]
REQUEST_IDS = ["0123abc", None, 'we"ird\\']
INVOCATIONS = [None, {"lambda_request_id": "L-1", "apigw_request_id": 'G"1'}]
REQUESTS = [
    ("u-1", ("127.0.0.1", 5), "/todos/{uid}", 200),
    (None, None, None, 413),
    ('p"\\\n', ("::1", 0), "/x", 500),
]
HUNDREDTHS = [0, 1, 99, 100, 123, 12345, 10**12 + 7]


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logs._json_handler = None


def _lines(
    formatter: logging.Formatter, fast: bool, agent: bytes | None, *request: Any
) -> list[str]:
    """Two access lines of one request; `fast`, through the prepared-line cache (the second
    from the cache), else through the logging module's formatter."""
    rid, invocation, (principal, client, route, status), hundredths = request
    stream = io.StringIO()
    logs.configure("json", "INFO", stream, formatter=formatter)
    if not fast:
        logs._json_handler = None  # as when another handler would see the record
    headers = [(b"host", b"x")]
    if agent is not None:
        headers.append((b"user-agent", agent))
    headers.append((b"user-agent", b"second"))  # the first one counts
    scope: dict[str, Any] = {"method": "GET", "headers": headers, "client": client}
    if principal is not None:
        scope[access.PRINCIPAL] = principal
    request_token = logs.REQUEST_ID.set(rid)
    invocation_token = logs.INVOCATION.set(invocation)
    try:
        access._log(scope, route, status, hundredths)
        access._log(scope, route, status, hundredths)
    finally:
        logs.REQUEST_ID.reset(request_token)
        logs.INVOCATION.reset(invocation_token)
    text = stream.getvalue()
    assert text.endswith("\n")
    lines = text.splitlines()
    assert len(lines) == 2
    return lines


@pytest.mark.parametrize("formatter", [logs.JsonFormatter, logs.LambdaJsonFormatter])
@pytest.mark.parametrize("agent", AGENTS, ids=range(len(AGENTS)))
def test_the_cached_line_is_the_formatters_line(
    formatter: type[logging.Formatter], agent: bytes | None
) -> None:
    for request in product(REQUEST_IDS, INVOCATIONS, REQUESTS, HUNDREDTHS):
        fast = [json.loads(line) for line in _lines(formatter(), True, agent, *request)]
        slow = [json.loads(line) for line in _lines(formatter(), False, agent, *request)]
        for ours, theirs in zip(fast, slow, strict=True):
            assert list(ours) == list(theirs)  # the same members, in the same order
            for key in ("time", "timestamp"):
                if key in ours:
                    assert len(ours[key]) == 24
                    assert ours[key].endswith("Z")
                    ours.pop(key)
                    theirs.pop(key)
            assert ours == theirs
            assert type(ours["duration_ms"]) is float
            assert ours["duration_ms"] == round(request[3] / 100, 2)
