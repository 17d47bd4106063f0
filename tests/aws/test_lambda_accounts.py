"""Password reset and email verification through the Lambda handler, in API Gateway's events,
on the DynamoDB backend, with the mails sent through SES on moto's server. On Lambda nothing
runs once the answer has gone, so each mail is at SES when its answer comes; the answers to a
link asked for take the inline floor whoever asks, and tell nothing when SES fails either."""

import json
import logging
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx
import pytest
import urllib3
from cfnlint.decode import decode  # type: ignore[import-untyped]

from nimbus.api.routes.accounts import FORGOT_ANSWER, INLINE_ANSWER_FLOOR, VERIFY_ANSWER
from nimbus.bootstrap import build
from nimbus.entrypoints.aws_lambda import make_handler
from nimbus.logs import LambdaJsonFormatter
from nimbus.settings import Settings
from tests.aws.events import LambdaTransport, rest_event
from tests.backends import database_url
from tests.moto_server import MotoServer
from tests.scripted_aws import Answer, scripted_aws
from tests.support import PASSWORD, cli_env, free_port, log_in, make_settings, sign_up

REGION = "eu-west-1"
SENDER_DOMAIN = "nimbus.example"
FROM = f"Nimbus <no-reply@{SENDER_DOMAIN}>"
PUBLIC_URL = "https://app.nimbus.example"
NEW_PASSWORD = "a brand new passphrase"
RESET_SUBJECT = "Reset your password"
FORGOT = "/auth/password/forgot"
ROOT = Path(__file__).parents[2]
# REST API (what template.yaml deploys), and HTTP API at its default stage.
PAYLOADS = [("1.0", "prod"), ("2.0", "$default")]


@pytest.fixture(scope="module")
def ses() -> Iterator[str]:
    server = MotoServer(free_port())
    server.start()
    # moto's SES sends only from a verified identity, as SES's sandbox does: the domain here.
    client: Any = boto3.client("sesv2", endpoint_url=server.endpoint, region_name=REGION)
    client.create_email_identity(EmailIdentity=SENDER_DOMAIN)
    yield server.endpoint
    server.stop()


def ses_url(endpoint: str) -> str:
    return f"ses://?region={REGION}&endpoint_url={endpoint}"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[str]:
    with database_url("dynamodb", tmp_path) as url:
        yield url


@pytest.fixture
def domain() -> str:
    """The recipients' domain, this test's own: moto's SES keeps every test's mail."""
    return f"t{uuid.uuid4().hex[:12]}.example"


def lambda_settings(tmp_path: Path, store: str, mail_url: str, **overrides: Any) -> Settings:
    mail = {"mail_url": mail_url, "mail_from": FROM, "public_url": PUBLIC_URL}
    settings = make_settings(tmp_path / "data", database_url=store, **(mail | overrides))
    build(settings).close()  # the tables, as the template makes them
    return settings


@pytest.fixture
def settings(tmp_path: Path, store: str, ses: str) -> Settings:
    return lambda_settings(tmp_path, store, ses_url(ses))


def lambda_client(settings: Settings, payload: str = "1.0", stage: str = "prod") -> httpx.Client:
    transport = LambdaTransport(make_handler(settings), payload=payload, stage=stage)
    return httpx.Client(transport=transport, base_url="https://api.example.com")


def sent(endpoint: str, to: str) -> list[EmailMessage]:
    """The mails moto's SES has taken for `to` (an address, or "@domain" for any of it), oldest
    first, from its data API."""
    # The data API dumps every service's state: a shared server's grows with the session.
    answer = urllib3.request("GET", f"{endpoint}/moto-api/data.json", timeout=30.0)
    data = json.loads(answer.data)
    mails = []
    for raw in data.get("ses", {}).get("RawMessage", []):
        if any(d == to or (to[0] == "@" and d.endswith(to)) for d in raw["destinations"]):
            parsed = BytesParser(policy=policy.default).parsebytes(raw["raw_data"].encode())
            assert isinstance(parsed, EmailMessage)
            mails.append(parsed)
    return mails


def token_in(mail: EmailMessage, fragment: str) -> str:
    """The token of the one link in the mail, checked to point at the public URL's page."""
    text = mail.get_body(("plain",))
    assert text is not None
    content: str = text.get_content()
    links = [word for word in content.split() if word.startswith(PUBLIC_URL)]
    assert len(links) == 1, links
    parts = urlsplit(links[0])
    assert (parts.path, parts.fragment) == ("/", fragment)
    return parse_qs(parts.query)["token"][0]


@pytest.mark.parametrize(("payload", "stage"), PAYLOADS)
def test_an_email_is_verified_through_the_mailed_link(
    tmp_path: Path, store: str, ses: str, domain: str, payload: str, stage: str
) -> None:
    settings = lambda_settings(tmp_path, store, ses_url(ses), require_verified_email=True)
    alice = f"alice@{domain}"
    with lambda_client(settings, payload, stage) as client:
        sign_up(client, "alice", email=alice)
        [welcome] = sent(ses, alice)  # sent before the answer
        assert (welcome["From"], welcome["To"]) == (FROM, alice)
        assert welcome["Subject"] == "Verify your email"
        refused = client.post("/login", json={"username": "alice", "password": PASSWORD})
        assert (refused.status_code, refused.json()["code"]) == (403, "email_not_verified")

        asked = client.post("/auth/email/verify/send", json={"email": alice})
        assert (asked.status_code, asked.json()) == (202, {"message": VERIFY_ANSWER})
        first, second = sent(ses, alice)
        assert second["Subject"] == "Verify your email"
        token = token_in(second, "verify-email")
        assert token != token_in(first, "verify-email")
        assert client.post("/auth/email/verify", json={"token": token}).status_code == 204

        headers = {"Authorization": f"Bearer {log_in(client, 'alice')}"}
        assert client.get("/users/me", headers=headers).json()["user"]["email_verified"] is True
        wrong = client.post("/auth/email/verify", json={"token": "not-a-token"})
        assert (wrong.status_code, wrong.json()["code"]) == (400, "invalid_token")


@pytest.mark.parametrize(("payload", "stage"), PAYLOADS)
def test_a_forgotten_password_is_reset_through_the_mailed_link(
    settings: Settings,
    ses: str,
    domain: str,
    payload: str,
    stage: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    alice = f"alice@{domain}"
    with lambda_client(settings, payload, stage) as client, caplog.at_level(logging.INFO):
        sign_up(client, "alice", email=alice)
        old_access = log_in(client, "alice")
        answer = client.post(FORGOT, json={"email": alice.upper()})
        assert (answer.status_code, answer.json()) == (202, {"message": FORGOT_ANSWER})
        _welcome, reset = sent(ses, alice)
        assert (reset["Subject"], reset["From"], reset["To"]) == (RESET_SUBJECT, FROM, alice)
        token = token_in(reset, "reset-password")

        done = client.post("/auth/password/reset", json={"token": token, "password": NEW_PASSWORD})
        assert done.status_code == 204
        old = client.post("/login", json={"username": "alice", "password": PASSWORD})
        assert old.status_code == 401
        assert log_in(client, "alice", NEW_PASSWORD)
        stale = client.get("/users/me", headers={"Authorization": f"Bearer {old_access}"})
        assert stale.status_code == 401  # every session ended
        notice = sent(ses, alice)[2]
        assert notice["Subject"] == "Your password was changed"

        again = client.post("/auth/password/reset", json={"token": token, "password": "x" * 20})
        assert (again.status_code, again.json()["code"]) == (400, "invalid_token")
        assert log_in(client, "alice", NEW_PASSWORD)
    assert len(sent(ses, alice)) == 3
    for line in _lines(caplog.records):
        for secret in (token, NEW_PASSWORD, alice):
            assert secret not in line, line


def test_an_unknown_account_gets_the_same_answer_and_no_mail(
    settings: Settings, ses: str, domain: str
) -> None:
    alice = f"alice@{domain}"
    with lambda_client(settings) as client:
        sign_up(client, "alice", email=alice)
        sign_up(client, "nomail")  # an account without an email gets no mail either
        before = len(sent(ses, f"@{domain}"))
        answers = [
            client.post(FORGOT, json=body)
            for body in (
                {"username": "nobody"},
                {"email": f"nobody@{domain}"},
                {"username": "nomail"},
            )
        ]
        assert len(sent(ses, f"@{domain}")) == before
        known = client.post(FORGOT, json={"username": "alice"})
    assert {(a.status_code, a.text) for a in [*answers, known]} == {(202, known.text)}
    assert len(sent(ses, f"@{domain}")) == before + 1
    assert sent(ses, alice)[-1]["Subject"] == RESET_SUBJECT


def test_forgot_answers_no_sooner_than_the_inline_floor_known_or_not(
    settings: Settings, ses: str, domain: str
) -> None:
    alice = f"alice@{domain}"
    known: list[float] = []
    unknown: list[float] = []
    with lambda_client(settings) as client:
        sign_up(client, "alice", email=alice)
        for round_ in range(3):  # within the account's limit of 3 links
            for name, times in (("alice", known), (f"nobody{round_}", unknown)):
                started = time.perf_counter()
                assert client.post(FORGOT, json={"username": name}).status_code == 202
                times.append(time.perf_counter() - started)
            # The send happened before the answer: the floor is what hides it.
            assert len(sent(ses, alice)) == 2 + round_
    assert min(known + unknown) >= INLINE_ANSWER_FLOOR, (known, unknown)
    assert abs(statistics.median(known) - statistics.median(unknown)) < 0.25, (known, unknown)


def _lines(records: list[logging.LogRecord]) -> list[str]:
    """The records as the function writes them on Lambda, fields and all."""
    formatter = LambdaJsonFormatter()
    return [formatter.format(record) for record in records]


@pytest.mark.parametrize("failure", ["unverified sender", "endpoint that refuses"])
def test_a_failing_ses_still_answers_and_logs_a_warning_without_the_address_or_link(
    tmp_path: Path,
    store: str,
    ses: str,
    domain: str,
    failure: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if failure == "unverified sender":
        settings = lambda_settings(
            tmp_path, store, ses_url(ses), mail_from="Nimbus <no-reply@unverified.example>"
        )
        cause = f"SES {REGION}: 400 MessageRejected"
    else:
        settings = lambda_settings(tmp_path, store, ses_url(f"http://127.0.0.1:{free_port()}"))
        cause = f"SES {REGION}: cannot connect to 127.0.0.1:"
    alice = f"alice@{domain}"
    with lambda_client(settings) as client, caplog.at_level(logging.INFO):
        sign_up(client, "alice", email=alice)  # its verification mail fails too
        started = time.perf_counter()
        answer = client.post(FORGOT, json={"username": "alice"})
        took = time.perf_counter() - started
        unknown = client.post(FORGOT, json={"username": "nobody"})
    assert (answer.status_code, answer.json()) == (202, {"message": FORGOT_ANSWER})
    assert answer.text == unknown.text
    assert took >= INLINE_ANSWER_FLOOR
    assert sent(ses, alice) == []

    warnings = [
        r for r in caplog.records if r.name == "nimbus.mail" and r.levelno == logging.WARNING
    ]
    assert len(warnings) == 2  # the verification link's, the reset link's
    for record in warnings:
        message = record.getMessage()
        assert message.startswith(f"mail to a recipient at {domain} not sent: {cause}"), message
    lines = _lines(caplog.records)
    assert any('"level": "WARN"' in line and domain in line for line in lines)
    for line in lines:
        for secret in ("alice@", PUBLIC_URL, "token="):  # the address, the link
            assert secret not in line, line


def _template_mail_timeout() -> float:
    template, errors = decode(str(ROOT / "template.yaml"))
    assert not errors
    variables = template["Resources"]["ApiFunction"]["Properties"]["Environment"]["Variables"]
    return float(variables["NIMBUS_MAIL_TIMEOUT"])


def test_with_the_templates_mail_timeout_a_slow_ses_does_not_tell_who_has_an_account(
    tmp_path: Path, store: str, domain: str
) -> None:
    """An SES that takes its time holds the answer of an account that gets mail for as long as
    the send may take: the template bounds that within the floor every answer waits for."""
    timeout = _template_mail_timeout()
    with scripted_aws() as slow:
        slow.answers += [Answer(200, {"MessageId": "late"}, delay=3) for _ in range(2)]
        settings = lambda_settings(tmp_path, store, ses_url(slow.url), mail_timeout=timeout)
        with lambda_client(settings) as client:
            sign_up(client, "alice", email=f"alice@{domain}")
            timings = {}
            for name in ("alice", "nobody"):
                started = time.perf_counter()
                assert client.post(FORGOT, json={"username": name}).status_code == 202
                timings[name] = time.perf_counter() - started
        assert len(slow.received) == 2  # the verification link, the reset link: both given up
    assert min(timings.values()) >= INLINE_ANSWER_FLOOR
    assert timings["alice"] - timings["nobody"] < 0.25, timings


PACKAGE_PROBE = """
import json, sys
from importlib.abc import MetaPathFinder

class LeftOut(MetaPathFinder):
    # What lambda/requirements.txt leaves out of the package (scripts/lambda-requirements).
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("botocore", "boto3", "urllib3", "pydantic_settings"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, LeftOut())
from nimbus.entrypoints import aws_lambda

answers = [aws_lambda.handler(event, None)["statusCode"] for event in json.load(open(sys.argv[1]))]
print(json.dumps(answers))
"""


def _requirements() -> set[str]:
    lines = (ROOT / "lambda" / "requirements.txt").read_text().splitlines()
    return {line.split("==")[0] for line in lines if line[:1].isalnum()}


def test_the_lambda_package_sends_through_ses_without_botocore(
    settings: Settings, tmp_path: Path, store: str, ses: str, domain: str
) -> None:
    """The handler module as the runtime imports it, where botocore, boto3, urllib3 and
    pydantic-settings are not: SES's client is nimbus's own, over http.client."""
    assert not {"botocore", "boto3", "urllib3", "pydantic-settings"} & _requirements()
    alice = f"alice@{domain}"
    headers = [("Content-Type", "application/json")]
    events = [
        rest_event(
            "POST",
            "/users",
            headers=headers,
            body=json.dumps({"username": "alice", "password": PASSWORD, "email": alice}).encode(),
        ),
        rest_event("POST", FORGOT, headers=headers, body=json.dumps({"email": alice}).encode()),
    ]
    (tmp_path / "events.json").write_text(json.dumps(events))
    env = cli_env(
        settings.data_dir,  # the signing key `build` made there
        AWS_LAMBDA_FUNCTION_NAME="nimbus-test-api",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        NIMBUS_DATABASE_URL=store,
        NIMBUS_MAIL_URL=ses_url(ses),
        NIMBUS_MAIL_FROM=FROM,
        NIMBUS_PUBLIC_URL=PUBLIC_URL,
    )
    run = subprocess.run(
        [sys.executable, "-c", PACKAGE_PROBE, str(tmp_path / "events.json")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.splitlines()[-1]) == [201, 202]
    assert [mail["Subject"] for mail in sent(ses, alice)] == ["Verify your email", RESET_SUBJECT]
