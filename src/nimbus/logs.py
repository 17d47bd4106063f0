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

    # The key under which this formatter writes a line's time once more, after its fields
    # (FixedLine writes it; its lines have no exception); None for none.
    time_again: str | None = None

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

    time_again = "timestamp"


# The handler `configure` installed, while it writes JSON: log_fields writes through it.
_json_handler: logging.StreamHandler[TextIO] | None = None


# A field's value: what FixedLine writes.
Value = str | int | float | None


class Prepared:
    """A line's message and fields, made JSON once for FixedLine.write_prepared, which is
    given the one number left at each write."""

    __slots__ = ("after", "again", "before", "formatter", "message", "start", "text", "values")

    def __init__(self, message: str, values: tuple[Value, ...], before: str, after: str) -> None:
        self.message = message
        self.values = values  # without the number
        self.text = _string(message)
        self.before = before  # the members up to the number's, its name and colon
        self.after = after  # the members after the number
        # For the formatter last written with: what it writes between `time` and `request_id`,
        # and the start of its `time_again` member.
        self.formatter: JsonFormatter | None = None
        self.start = ""
        self.again: str | None = None


class FixedLine:
    """A record written many times with the same fields (the access record, one a request),
    for a caller that has checked `logger.isEnabledFor(level)`. The same line the JSON
    formatter makes of `logger.log(level, message, extra={"fields": ...})`, from a template
    made once, and written straight to nimbus's handler when nothing else would see the record
    (no handler or filter on the way to it): the LogRecord, the logging machinery and the
    general encoder cost the access record four fifths of its instructions (bench.overhead).

    `number` names a field written in hundredths, with two decimals (a duration in ms). A
    caller that writes the same line many times makes its JSON once with `prepare`, and gives
    `write_prepared` that number alone: a line written again costs its time, its request id
    and the number.
    """

    def __init__(
        self,
        logger: logging.Logger,
        level: int,
        keys: tuple[str, ...],
        number: str | None = None,
    ) -> None:
        self.logger = logger
        self.level = level
        self.keys = keys
        self._levelname = logging.getLevelName(level)
        n = self._number = keys.index(number) if number is not None else len(keys)
        # The members' JSON but the values': before the number (its name and colon too) and
        # after it.
        names = [_string(key).replace("%", "%%") for key in keys]
        self._before = "".join(f", {name}: %s" for name in names[:n])
        if number is not None:
            self._before += f", {names[n]}: "
        self._after = "".join(f", {name}: %s" for name in names[n + 1 :])
        # The formatter last written with, what it writes between `time` and `message`'s
        # value, and the start of its `time_again` member.
        self._head: tuple[JsonFormatter | None, str, str | None] = (None, "", None)

    def write(self, message: str, *values: Value) -> None:
        """A line of `message` and each key's value, the number's among them as it is."""
        pairs = zip(self.keys, values, strict=True)
        members = "".join(f", {_string(key)}: {_json(value)}" for key, value in pairs)
        self.write_prepared(Prepared(message, values, members, ""), None)

    def prepare(self, message: str, *values: Value) -> Prepared:
        """`message` and each key's value but the number's, made JSON for write_prepared."""
        n = self._number
        if len(values) != len(self.keys) - 1 or n == len(self.keys):
            raise ValueError("prepare takes a value for each key but the number")
        texts = [_VALUE[type(value)](value) for value in values]
        return Prepared(
            message, values, self._before % tuple(texts[:n]), self._after % tuple(texts[n:])
        )

    def write_prepared(self, prepared: Prepared, hundredths: int | None) -> None:
        """The prepared line, its number `hundredths` / 100 (None: `write`'s, which has it)."""
        # Each step counts here, in bytecodes and in strings made: the access line is written a
        # request (bench.overhead).
        handler = _json_handler
        if handler is None or handler.lock is None or not _straight_to(self.logger, handler):
            self._log(prepared, hundredths)
            return
        lock = handler.lock
        if prepared.formatter is not handler.formatter:
            self._start(prepared, cast(JsonFormatter, handler.formatter))
        milliseconds = time.time_ns() // 1_000_000
        start, second = _second_start
        if not 0 <= milliseconds - start < 1000:
            start, second = _start_second(milliseconds)
        request_id = REQUEST_ID.get()
        if request_id is None or hundredths is None or prepared.again or INVOCATION.get():
            when = second + _MILLISECONDS[milliseconds - start]
            line = self._line(prepared, when, request_id, hundredths) + handler.terminator
        else:  # the access line's case: one string made, not several
            line = (
                f'{{"time": "{second}{_MILLISECONDS[milliseconds - start]}", {prepared.start}'
                f', "request_id": {_string(request_id)}{prepared.before}{hundredths // 100}'
                f"{_HUNDREDTHS[hundredths % 100]}{prepared.after}}}{handler.terminator}"
            )
        try:
            lock.acquire()  # not `with`: half the instructions
            try:
                handler.stream.write(line)
                handler.stream.flush()
            finally:
                lock.release()
        except Exception:
            self._log(prepared, hundredths)  # the logging module's handling of a failing stream

    def _line(
        self, prepared: Prepared, when: str, request_id: str | None, hundredths: int | None
    ) -> str:
        ids = "" if request_id is None else f', "request_id": {_string(request_id)}'
        invocation = INVOCATION.get()
        if invocation:
            ids += "".join(f", {_string(k)}: {_string(v)}" for k, v in invocation.items())
        number = "" if hundredths is None else f"{hundredths // 100}{_HUNDREDTHS[hundredths % 100]}"
        again = "" if prepared.again is None else f'{prepared.again}{when}"'
        return (
            f'{{"time": "{when}", {prepared.start}{ids}'
            f"{prepared.before}{number}{prepared.after}{again}}}"
        )

    def _start(self, prepared: Prepared, formatter: JsonFormatter) -> None:
        known, head, again = self._head
        if known is not formatter:
            head = formatter.head(self._levelname, self.logger.name)
            name = formatter.time_again
            again = None if name is None else f', {_string(name)}: "'
            self._head = (formatter, head, again)
        prepared.start = head + prepared.text
        prepared.again = again
        prepared.formatter = formatter

    def _log(self, prepared: Prepared, hundredths: int | None) -> None:
        values = prepared.values
        if hundredths is not None:
            n = self._number
            values = (*values[:n], hundredths / 100, *values[n:])
        fields = dict(zip(self.keys, values, strict=True))
        self.logger.log(self.level, "%s", prepared.message, extra={"fields": fields})


def _json(value: Value) -> str:
    return _VALUE[type(value)](value)


# ".00" to ".99": a number's two decimals, not a float's formatting (2,000 instructions).
_HUNDREDTHS = tuple(f".{n:02d}" for n in range(100))


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
# ".000Z" to ".999Z": FixedLine's milliseconds without a format (half its time stamp's cost).
_MILLISECONDS = tuple(f".{n:03d}Z" for n in range(1000))


def _timestamp(created: float) -> str:
    global _last_second
    seconds = int(created)
    second, text = _last_second
    if seconds != second:
        # strftime costs more than the rest of a line's formatting; lines come many a second.
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _last_second = (seconds, text)
    return "%s.%03dZ" % (text, (created - seconds) * 1000)  # noqa: UP031 (%d truncates)


def _start_second(milliseconds: int) -> tuple[int, str]:
    """The start of the second `milliseconds` (since the epoch) is in, in milliseconds, and
    its text, as _timestamp writes it: FixedLine adds the milliseconds to it."""
    global _second_start
    seconds = milliseconds // 1000
    _second_start = (seconds * 1000, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
    return _second_start


_second_start: tuple[int, str] = (-1000, "")


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
