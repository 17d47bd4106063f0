"""Logging, configured once per process: one line per record, JSON or text, on stderr.

JSON is one object per line (`time`, `level`, `logger`, `message`, `request_id`, then the
record's own fields), for a log shipper; text is for a person at a terminal. Every line a
request causes carries its request id (nimbus.api.access sets it), and on Lambda the
invocation's ids too (nimbus.entrypoints.aws_lambda sets them). A record's fields come from
`extra={"fields": {...}}`; nothing else of a record's attributes is written, so no argument a
caller did not name reaches the log.

On Lambda (`configure_lambda`) nimbus's handler replaces the one the runtime put on the root
logger, whose JSON format would nest the fields in an object of its own, and its lines carry
what Lambda's JSON log format reads from a line: `timestamp`, and `level` in Lambda's words
(WARN, FATAL).
"""

import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any, Literal, TextIO, cast

LogFormat = Literal["json", "text"]

# The id of the request this task serves, on every record logged while it does.
REQUEST_ID: ContextVar[str | None] = ContextVar("nimbus_request_id", default=None)
# The Lambda invocation this task serves (`lambda_request_id`, `apigw_request_id`), likewise.
INVOCATION: ContextVar[Mapping[str, str] | None] = ContextVar("nimbus_invocation", default=None)
_make_record = logging.getLogRecordFactory()


def _record_with_request_id(*args: Any, **kwargs: Any) -> logging.LogRecord:
    # Stamped as the record is made, in the request's own context: a handler may format it
    # later, elsewhere.
    record = _make_record(*args, **kwargs)
    record.request_id = REQUEST_ID.get()
    record.invocation = INVOCATION.get()
    return record


logging.setLogRecordFactory(_record_with_request_id)

# One encoder for every line: json.dumps with options builds a new one per call (3 us of 9).
_encode = json.JSONEncoder(ensure_ascii=False, default=str).encode


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return _encode(self.line(record))

    def line(self, record: logging.LogRecord) -> dict[str, Any]:
        line = _head(
            record.created,
            record.levelname,
            record.name,
            record.getMessage(),
            getattr(record, "request_id", None),
            getattr(record, "invocation", None),
        )
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return self.finish(line)

    def finish(self, line: dict[str, Any]) -> dict[str, Any]:
        """The last word on a line, for a runtime that reads lines its own way (Lambda)."""
        return line

    def head(self, levelname: str, name: str) -> str:
        """What a line of this level and logger has between `time` and `message`'s value, for
        FixedLine, which writes the rest itself."""
        return f'"level": "{self._level(levelname)}", "logger": {_string(name)}, "message": '

    def tail(self, when: str) -> str:
        """What this formatter adds after a line's fields (FixedLine's lines have no
        exception)."""
        return ""

    def _level(self, levelname: str) -> str:
        return levelname


def _head(
    created: float,
    levelname: str,
    name: str,
    message: str,
    request_id: str | None,
    invocation: Mapping[str, str] | None,
) -> dict[str, Any]:
    line: dict[str, Any] = {
        "time": _timestamp(created),
        "level": levelname,
        "logger": name,
        "message": message,
    }
    if request_id is not None:
        line["request_id"] = request_id
    if invocation:
        line.update(invocation)
    return line


# Lambda's application log levels: TRACE, DEBUG, INFO, WARN, ERROR, FATAL.
_LAMBDA_LEVELS = {"WARNING": "WARN", "CRITICAL": "FATAL"}
_PYTHON_LEVELS = {"TRACE": "DEBUG", "WARN": "WARNING", "FATAL": "CRITICAL"}


class LambdaJsonFormatter(JsonFormatter):
    """nimbus's line, plus what Lambda's JSON log format reads from a line written to stdout or
    stderr: `timestamp` (RFC 3339) and `level` in Lambda's words. A line without them would be
    filed as INFO, and dropped below an ApplicationLogLevel of WARN."""

    def finish(self, line: dict[str, Any]) -> dict[str, Any]:
        line["level"] = self._level(line["level"])
        line["timestamp"] = line["time"]
        return line

    def _level(self, levelname: str) -> str:
        return _LAMBDA_LEVELS.get(levelname, levelname)

    def tail(self, when: str) -> str:
        return f', "timestamp": "{when}"'


# The handler `configure` installed, while it writes JSON: log_fields writes through it.
_json_handler: logging.StreamHandler[TextIO] | None = None


class FixedLine:
    """A record written many times with the same fields (the access record, one a request),
    for a caller that has checked `logger.isEnabledFor(level)`. The same line the JSON
    formatter makes of `logger.log(level, message, extra={"fields": ...})`, from a template
    made once, and written straight to nimbus's handler when nothing else would see the record
    (no handler or filter on the way to it): the LogRecord, the logging machinery and the
    general encoder cost the access record four fifths of its instructions (bench.overhead).
    """

    def __init__(self, logger: logging.Logger, level: int, keys: tuple[str, ...]) -> None:
        self.logger = logger
        self.level = level
        self.keys = keys
        self._levelname = logging.getLevelName(level)
        self._members = "".join(f", {_string(key)}: %s" for key in keys)
        self._head: tuple[JsonFormatter | None, str] = (None, "")

    def write(self, message: str, *values: str | int | float | None) -> None:
        handler = _json_handler
        if handler is None or not _straight_to(self.logger, handler):
            self._log(message, values)
            return
        formatter = cast(JsonFormatter, handler.formatter)
        if self._head[0] is not formatter:
            self._head = (formatter, formatter.head(self._levelname, self.logger.name))
        when = _timestamp(time.time())
        line = f'{{"time": "{when}", {self._head[1]}{_string(message)}'
        request_id = REQUEST_ID.get()
        if request_id is not None:
            line += f', "request_id": {_string(request_id)}'
        invocation = INVOCATION.get()
        if invocation:
            line += "".join(f", {_string(k)}: {_string(v)}" for k, v in invocation.items())
        line += self._members % tuple([_VALUE[type(value)](value) for value in values])
        line += formatter.tail(when) + "}" + handler.terminator
        try:
            with handler.lock or contextlib.nullcontext():
                handler.stream.write(line)
                handler.stream.flush()
        except Exception:
            self._log(message, values)  # the logging module's handling of a failing stream

    def _log(self, message: str, values: tuple[str | int | float | None, ...]) -> None:
        fields = dict(zip(self.keys, values, strict=True))
        self.logger.log(self.level, "%s", message, extra={"fields": fields})


_string = json.encoder.encode_basestring


# A field's value as the JSON formatter writes it, by its type: C functions only, as a line
# has several and the access line is written a request.
_VALUE: dict[type, Callable[[Any], str]] = {
    str: _string,
    int: int.__repr__,
    float: float.__repr__,  # as json writes a finite float
    bool: {True: "true", False: "false"}.__getitem__,
    type(None): "null".format,
}


def _straight_to(logger: logging.Logger, handler: logging.Handler) -> bool:
    """Whether a record of `logger` would reach `handler` alone, unfiltered."""
    node: logging.Logger | None = logger
    while node is not None:
        if node.filters:
            return False
        if node.handlers:
            return node.handlers == [handler] and not handler.filters
        if not node.propagate:
            return False
        node = node.parent
    return False


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record.created), record.levelname, record.name, record.getMessage()]
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            parts.append(f"request_id={request_id}")
        invocation = getattr(record, "invocation", None)
        if invocation:
            parts += [f"{key}={value}" for key, value in invocation.items()]
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            parts += [f"{key}={value}" for key, value in fields.items() if value is not None]
        text = " ".join(str(part) for part in parts)
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


_last_second: tuple[int, str] = (-1, "")  # the last second formatted, and its text


def _timestamp(created: float) -> str:
    global _last_second
    seconds = int(created)
    second, text = _last_second
    if seconds != second:
        # strftime costs more than the rest of a line's formatting; lines come many a second.
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _last_second = (seconds, text)
    return "%s.%03dZ" % (text, (created - seconds) * 1000)  # noqa: UP031 (%d truncates)


def default_format(stream: TextIO) -> LogFormat:
    """Text for a person at a terminal, JSON for everything else."""
    return "text" if stream.isatty() else "json"


def configure(
    log_format: LogFormat | None,
    level: str,
    stream: TextIO | None = None,
    *,
    formatter: logging.Formatter | None = None,
) -> None:
    """Send every logger's records (nimbus's, uvicorn's, the libraries') to `stream` in one
    format, at `level` and above."""
    stream = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(stream)
    if formatter is None:
        chosen = log_format or default_format(stream)
        formatter = JsonFormatter() if chosen == "json" else TextFormatter()
    handler.setFormatter(formatter)
    global _json_handler
    _json_handler = handler if isinstance(formatter, JsonFormatter) else None
    # What the formatters never write is not gathered either: the caller's file and line (a
    # walk up the stack per record) and the thread's and process's names (the logging HOWTO's
    # "Optimization").
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn's own handlers go, and its records reach the root's; all but its access
        # log, which nimbus's replaces (nimbus.api.access): with no handler it is never
        # formatted either.
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = name != "uvicorn.access"


def configure_lambda(
    log_format: LogFormat | None,
    level: str,
    environ: Mapping[str, str] = os.environ,
    stream: TextIO | None = None,
) -> None:
    """`configure` for a Lambda function: JSON unless NIMBUS_LOG_FORMAT says text, with
    Lambda's `timestamp` and levels, at the function's ApplicationLogLevel when it has one
    (Lambda drops what is below it, and keeps what is above it, whatever NIMBUS_LOG_LEVEL
    says), else at `level`. The runtime's own handler goes: with the JSON log format it writes
    an object of its own per record, nimbus's fields nested in it under `fields`."""
    formatter = TextFormatter() if log_format == "text" else LambdaJsonFormatter()
    configure(log_format, lambda_log_level(environ) or level, stream, formatter=formatter)
    # Mangum's own line per request names the raw path, which may hold an id or an email:
    # nimbus's access record replaces it, as it replaces uvicorn's. Its errors still pass.
    logging.getLogger("mangum.http").setLevel(logging.WARNING)


def lambda_log_level(environ: Mapping[str, str]) -> str | None:
    """The Python level of AWS_LAMBDA_LOG_LEVEL, which Lambda sets from the function's
    ApplicationLogLevel (JSON log format only); None without it."""
    value = environ.get("AWS_LAMBDA_LOG_LEVEL", "").strip().upper()
    value = _PYTHON_LEVELS.get(value, value)
    return value if value in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL") else None
