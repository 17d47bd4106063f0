"""An outage is logged once, where it becomes a 503: one record naming the request's method
and route, with the traceback of what failed underneath; nothing else logs it again, and no
record holds a secret. The same behind API Gateway (the API function and the authorizer), and
for a signing key kept in SSM."""

import json
import logging
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from nimbus.bootstrap import build
from nimbus.domain.errors import Unavailable
from nimbus.entrypoints.aws_authorizer import make_authorizer
from nimbus.entrypoints.aws_lambda import make_handler
from nimbus.logs import JsonFormatter
from nimbus.settings import Settings
from nimbus.storage import open_storage
from tests.aws.events import LambdaTransport, token_authorizer_event
from tests.factories import an_account
from tests.scripted_aws import ScriptedAws, error, scripted_aws
from tests.support import PASSWORD, live_server, make_settings, unexpected_tracebacks


@pytest.fixture
def closed_port() -> str:
    """The URL of a port on 127.0.0.1 where nothing listens: every connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def aws_secrets(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Credentials every AWS call signs with; no log record may repeat them."""
    secret, session = f"secret-{secrets.token_hex(16)}", f"session-{secrets.token_hex(16)}"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDERRORLOGGING")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_SESSION_TOKEN", session)
    return [secret, session]


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every record from INFO up, so that a second record of the same outage shows."""
    caplog.set_level(logging.INFO)
    return caplog


def _serious(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.WARNING]


def _text(records: list[logging.LogRecord]) -> str:
    """The records as a log handler writes them, tracebacks included."""
    return "\n".join(logging.Formatter().format(record) for record in records)


def _assert_one_503_record(
    caplog: pytest.LogCaptureFixture, message: str, causes: list[str], hidden: list[str]
) -> None:
    [record] = _serious(caplog)
    assert record.name == "nimbus.api"
    assert record.levelno == logging.ERROR
    assert record.getMessage().startswith(message), record.getMessage()
    text = _text([record])
    assert isinstance(record.exc_info, tuple)
    assert isinstance(record.exc_info[1], Unavailable)
    assert "The above exception was the direct cause of the following exception:" in text
    for cause in causes:
        assert cause in text, text
    everything = _text(caplog.records)
    for secret in hidden:
        assert secret not in everything
    # As `nimbus serve` writes it, the record passes the served log's own check.
    assert unexpected_tracebacks(text) == []


def test_an_unreachable_store_is_one_503_record_with_its_cause(
    tmp_path: Path, closed_port: str, aws_secrets: list[str], log: pytest.LogCaptureFixture
) -> None:
    url = f"dynamodb://?region=us-east-1&table_prefix=gone-&endpoint_url={closed_port}"
    key = secrets.token_urlsafe(48)
    settings = make_settings(tmp_path / "data", database_url=url, secret_key=key)
    container = build(settings, provision=False)
    try:
        with live_server(container) as base, httpx.Client(base_url=base, timeout=30) as client:
            login = {"username": "alice", "password": PASSWORD}
            answer = client.post("/login", json=login)
            assert answer.status_code == 503, answer.text
            assert answer.json()["message"] == "The service is temporarily unavailable"
    finally:
        container.close()
    _assert_one_503_record(
        log,
        "503 on POST /login: DynamoDB unreachable: dynamodb at 127.0.0.1:",
        ["ConnectionRefusedError", "nimbus.aws.AwsUnreachable"],
        [PASSWORD, key, *aws_secrets],
    )


def test_a_signing_key_ssm_cannot_hand_over_is_one_503_record_with_its_cause(
    tmp_path: Path,
    closed_port: str,
    aws_secrets: list[str],
    log: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", closed_port)
    settings = make_settings(
        tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
        secret_key="ssm:/nimbus/error-logging",
    )
    container = build(settings, provision=False)  # the key is read on first use, as on Lambda
    try:
        container.users.create(username="alice", password=PASSWORD)
        with live_server(container) as base, httpx.Client(base_url=base, timeout=30) as client:
            answer = client.post("/login", json={"username": "alice", "password": PASSWORD})
            assert answer.status_code == 503, answer.text
    finally:
        container.close()
    # The key loader logs nothing of its own: the 503's record is the only one.
    _assert_one_503_record(
        log,
        "503 on POST /login: The service cannot read its signing key",
        [
            "nimbus.domain.errors.Unavailable: SSM parameter /nimbus/error-logging cannot be read",
            "nimbus.aws.AwsUnreachable: ssm at 127.0.0.1:",
            "ConnectionRefusedError",
        ],
        [PASSWORD, *aws_secrets],
    )


@pytest.fixture
def lambda_settings(tmp_path: Path) -> Iterator[tuple[Settings, ScriptedAws]]:
    """Settings whose DynamoDB answers from a script, for the API function."""
    with scripted_aws() as script:
        url = f"dynamodb://?region=us-east-1&table_prefix=t-&endpoint_url={script.url}"
        yield make_settings(tmp_path / "data", database_url=url), script


def _lambda_client(settings: Settings) -> httpx.Client:
    transport = LambdaTransport(make_handler(settings), payload="2.0", stage="$default")
    return httpx.Client(transport=transport, base_url="https://api.example.com")


def test_on_lambda_a_503_is_one_record_with_its_cause(
    lambda_settings: tuple[Settings, ScriptedAws],
    aws_secrets: list[str],
    log: pytest.LogCaptureFixture,
) -> None:
    settings, _ = lambda_settings  # no answers scripted: DynamoDB answers every call with a 500
    with _lambda_client(settings) as client:
        answer = client.get("/messages")
    assert answer.status_code == 503, answer.text
    _assert_one_503_record(
        log,
        "503 on GET /messages: DynamoDB: HTTP500",
        ["nimbus.aws.AwsError: HTTP500"],
        aws_secrets,
    )


def test_on_lambda_a_500_is_one_record_with_its_traceback(
    lambda_settings: tuple[Settings, ScriptedAws], log: pytest.LogCaptureFixture
) -> None:
    settings, script = lambda_settings
    script.answers.append(error("ValidationException", message="not a request nimbus makes"))
    with _lambda_client(settings) as client:
        answer = client.get("/messages")
    assert answer.status_code == 500
    assert answer.json() == {"message": "Internal Server Error", "code": "internal_error"}
    # The app's own record; Mangum, which sees the error come back out, logs nothing more.
    [record] = _serious(log)
    assert record.name == "nimbus.api"
    assert record.getMessage() == "unhandled error on GET /messages"
    assert "nimbus.aws.AwsError: ValidationException" in _text([record])


def test_the_authorizer_logs_an_unreadable_key_once_with_its_cause(
    tmp_path: Path,
    closed_port: str,
    aws_secrets: list[str],
    log: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", closed_port)
    settings = make_settings(tmp_path / "data", secret_key="ssm:/nimbus/error-logging")
    now = int(time.time())
    claims = {"iss": settings.token_issuer, "aud": settings.token_audience, "sub": "someone"}
    token = jwt.encode(claims | {"iat": now, "exp": now + 60}, "k" * 32, algorithm="HS256")
    authorize = make_authorizer(settings)
    # It propagates: API Gateway answers 500 and caches nothing.
    with pytest.raises(Unavailable, match="cannot read its signing key"):
        authorize(token_authorizer_event(f"Bearer {token}"), None)
    [record] = _serious(log)
    assert record.name == "nimbus.entrypoints.aws_authorizer"
    assert record.getMessage() == "Unavailable: The service cannot read its signing key"
    text = _text([record])
    assert "nimbus.aws.AwsUnreachable: ssm at 127.0.0.1:" in text
    assert "ConnectionRefusedError" in text
    for secret in [token, *aws_secrets]:
        assert secret not in _text(log.records)


def _formatted(message: str, exc: BaseException) -> str:
    """A record as Python's last-resort handler writes it in a `nimbus serve` log."""
    record = logging.LogRecord("nimbus.api", logging.ERROR, __file__, 1, message, None, None)
    record.exc_info = (type(exc), exc, exc.__traceback__)
    return logging.Formatter().format(record)


def _raised(exc: Exception, cause: Exception | None = None) -> Exception:
    """`exc`, raised from `cause`: with its traceback and its chain."""
    try:
        raise exc from cause
    except Exception as raised:
        return raised


def test_the_served_log_check_takes_503_records_and_nothing_else() -> None:
    outage = _raised(Unavailable("storage error: disk I/O error"), _raised(OSError("EFBIG")))
    a_503 = _formatted("503 on POST /messages: storage error: disk I/O error", outage)
    assert unexpected_tracebacks(f"INFO:     started\n{a_503}\n{a_503}\nINFO:     done") == []

    bug = _raised(KeyError("id"), _raised(OSError("EFBIG")))
    a_500 = _formatted("unhandled error on GET /todos/{uid}", bug)
    uvicorn = _formatted("ERROR:    Exception in ASGI application", bug)
    not_unavailable = _formatted("503 on GET /todos: no such thing", bug)
    log = "\n".join([a_503, a_500, a_503, uvicorn, not_unavailable])
    assert unexpected_tracebacks(log) == [
        "unhandled error on GET /todos/{uid}",
        "ERROR:    Exception in ASGI application",
        "503 on GET /todos: no such thing",
    ]


def test_the_served_log_check_reads_json_records_too() -> None:
    outage = _raised(Unavailable("storage error: disk I/O error"), _raised(OSError("EFBIG")))
    bug = _raised(KeyError("id"), _raised(OSError("EFBIG")))

    def line(message: str, error: BaseException | None) -> str:
        record = logging.LogRecord("nimbus.api", logging.ERROR, __file__, 1, message, (), None)
        if error is not None:
            record.exc_info = (type(error), error, error.__traceback__)
        return JsonFormatter().format(record)

    a_503 = line("503 on POST /messages: storage error: disk I/O error", outage)
    log = "\n".join([a_503, line("GET /todos 200", None), line("unhandled error on GET /", bug)])
    assert unexpected_tracebacks(log) == ["unhandled error on GET /"]


class _Broken:
    """A store with a bug in every call."""

    def __getattr__(self, name: str) -> object:
        raise RuntimeError(f"a bug in todos.{name}")


@pytest.mark.parametrize("behind_a_proxy", [False, True])
def test_a_500_is_one_record_with_its_traceback_and_request_id(
    tmp_path: Path,
    log: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    behind_a_proxy: bool,
) -> None:
    proxies = {"forwarded_allow_ips": ("*",)} if behind_a_proxy else {}
    settings = make_settings(tmp_path / "data", **proxies)
    storage = open_storage(settings.resolved_database_url)
    storage.todos = _Broken()  # type: ignore[assignment]
    container = build(settings, storage=storage)
    try:
        with live_server(container) as base, httpx.Client(base_url=base, timeout=30) as client:
            alice = an_account(client, "alice")
            # As nimbus.logs configures it for nimbus serve (once uvicorn has configured its
            # own): uvicorn's records reach the root's.
            monkeypatch.setattr(logging.getLogger("uvicorn"), "propagate", True)
            sent = alice.headers | {"X-Request-ID": "broken-1", "X-Forwarded-For": "203.0.113.9"}
            answer = client.get("/todos/some-id/", headers=sent)
            assert answer.status_code == 500
            assert answer.json() == {"message": "Internal Server Error", "code": "internal_error"}
            assert answer.headers["X-Request-ID"] == "broken-1"
    finally:
        container.close()
    [record] = _serious(log)  # uvicorn's own record of it is dropped
    assert record.name == "nimbus.api"
    assert record.getMessage() == "unhandled error on GET /todos/{uid}"
    assert "RuntimeError: a bug in todos.get" in _text([record])
    assert json.loads(JsonFormatter().format(record))["request_id"] == "broken-1"
    [access] = [r for r in log.records if r.name == "nimbus.access" and "500" in r.getMessage()]
    fields = access.__dict__["fields"]
    assert fields["client"] == ("203.0.113.9" if behind_a_proxy else "127.0.0.1")
