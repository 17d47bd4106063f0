"""Logging, configured once per process: one line per record, JSON or text, on stderr.

JSON is one object per line (`time`, `level`, `logger`, `message`, `request_id`, then the
record's own fields), for a log shipper; text is for a person at a terminal. Every line a
request causes carries its request id (nimbus.api.access sets it). A record's fields come
from `extra={"fields": {...}}`; nothing else of a record's attributes is written, so no
argument a caller did not name reaches the log.
"""

import json
import logging
import sys
import time
from contextvars import ContextVar
from typing import Any, Literal, TextIO

LogFormat = Literal["json", "text"]

# The id of the request this task serves, on every record logged while it does.
REQUEST_ID: ContextVar[str | None] = ContextVar("nimbus_request_id", default=None)
_make_record = logging.getLogRecordFactory()


def _record_with_request_id(*args: Any, **kwargs: Any) -> logging.LogRecord:
    # Stamped as the record is made, in the request's own context: a handler may format it
    # later, elsewhere.
    record = _make_record(*args, **kwargs)
    record.request_id = REQUEST_ID.get()
    return record


logging.setLogRecordFactory(_record_with_request_id)

# One encoder for every line: json.dumps with options builds a new one per call (3 us of 9).
_encode = json.JSONEncoder(ensure_ascii=False, default=str).encode


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            line["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return _encode(line)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record.created), record.levelname, record.name, record.getMessage()]
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            parts.append(f"request_id={request_id}")
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
    return f"{text}.{int((created - seconds) * 1000):03d}Z"


def default_format(stream: TextIO) -> LogFormat:
    """Text for a person at a terminal, JSON for everything else."""
    return "text" if stream.isatty() else "json"


def configure(log_format: LogFormat | None, level: str, stream: TextIO | None = None) -> None:
    """Send every logger's records (nimbus's, uvicorn's, the libraries') to `stream` in one
    format, at `level` and above."""
    stream = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(stream)
    chosen = log_format or default_format(stream)
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
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
