"""SES v2 through nimbus's own signed client: on moto's server (the mail arrives, as the same
MIME SMTP sends), and on a scripted server for what moto will not do on demand (the signature
compared with botocore's, throttling, an answer that never comes)."""

import base64
import json
import time
from collections.abc import Iterator
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import boto3
import pytest
import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from nimbus.mail import MailError, Message, open_mailer
from tests.moto_server import MotoServer
from tests.scripted_aws import Answer, ScriptedAws, scripted_aws
from tests.support import free_port

SENDER = "no-reply@example.com"
REGION = "eu-west-1"


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    server = MotoServer(free_port())
    server.start()
    # moto's SES sends only from a verified identity, as SES's sandbox does.
    ses: Any = boto3.client("sesv2", endpoint_url=server.endpoint, region_name=REGION)
    ses.create_email_identity(EmailIdentity=SENDER)
    yield server.endpoint
    server.stop()


@pytest.fixture
def scripted() -> Iterator[ScriptedAws]:
    with scripted_aws() as script:
        yield script


def a_message(to: str) -> Message:
    return Message(
        to=to,
        subject="Verify your email",
        text="Open https://app.example/?token=t1 to verify.",
        html='<p><a href="https://app.example/?token=t1">Verify</a></p>',
        link="https://app.example/?token=t1",
    )


def _sent_by_moto(endpoint: str, to: str) -> list[EmailMessage]:
    """The raw mails moto's SES took for `to`, from its data API."""
    # The data API dumps every service's state: a shared server's grows with the session.
    answer = urllib3.request("GET", f"{endpoint}/moto-api/data.json", timeout=30.0)
    data = json.loads(answer.data)
    mails = []
    for raw in data["ses"]["RawMessage"]:
        if to in raw["destinations"]:
            parsed = BytesParser(policy=policy.default).parsebytes(raw["raw_data"].encode())
            assert isinstance(parsed, EmailMessage)
            mails.append(parsed)
    return mails


def test_a_mail_reaches_ses(moto: str, data_dir: Path) -> None:
    url = f"ses://?region={REGION}&endpoint_url={moto}"
    mailer = open_mailer(url, sender=f"Nimbus <{SENDER}>", data_dir=data_dir, timeout=5)
    mailer.send(a_message("carol@example.com"))
    mailer.close()
    [mail] = _sent_by_moto(moto, "carol@example.com")
    assert mail["From"] == f"Nimbus <{SENDER}>"
    assert mail["To"] == "carol@example.com"
    assert mail["Subject"] == "Verify your email"
    assert mail.get_content_type() == "multipart/alternative"
    html = mail.get_body(("html",))
    assert html is not None
    assert 'href="https://app.example/?token=t1"' in html.get_content()


def test_the_region_defaults_to_nimbus_region(moto: str, data_dir: Path) -> None:
    url = f"ses://?endpoint_url={moto}"
    open_mailer(url, sender=SENDER, data_dir=data_dir, region=REGION).send(
        a_message("dave@example.com")
    )
    assert len(_sent_by_moto(moto, "dave@example.com")) == 1


def test_an_unverified_sender_is_a_mail_error(moto: str, data_dir: Path) -> None:
    url = f"ses://?region={REGION}&endpoint_url={moto}"
    mailer = open_mailer(url, sender="stranger@example.net", data_dir=data_dir)
    with pytest.raises(MailError, match=f"SES {REGION}: 400 MessageRejected"):
        mailer.send(a_message("erin@example.com"))
    assert _sent_by_moto(moto, "erin@example.com") == []


def test_the_request_is_signed_as_botocore_signs_it(
    scripted: ScriptedAws, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token")
    scripted.answers.append(Answer(200, {"MessageId": "m-1"}))
    url = f"ses://?region={REGION}&endpoint_url={scripted.url}&configuration_set=mails"
    open_mailer(url, sender=SENDER, data_dir=data_dir).send(a_message("frank@example.com"))
    [sent] = scripted.received
    body = json.loads(sent.body)
    assert body["FromEmailAddress"] == SENDER
    assert body["Destination"] == {"ToAddresses": ["frank@example.com"]}
    assert body["ConfigurationSetName"] == "mails"
    raw = base64.b64decode(body["Content"]["Raw"]["Data"])
    assert b"To: frank@example.com\r\n" in raw
    assert "Credential=AKIDEXAMPLE/" in sent.headers["authorization"]
    assert f"/{REGION}/ses/aws4_request" in sent.headers["authorization"]

    signer = SigV4Auth(
        Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token"),
        "ses",
        REGION,
    )
    request = AWSRequest(
        method="POST",
        url=f"{scripted.url}/v2/email/outbound-emails",
        data=sent.body,
        headers={"Content-Type": "application/json"},
    )
    moment = datetime.strptime(sent.headers["x-amz-date"], "%Y%m%dT%H%M%SZ")
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda *a, **k: moment)
    signer.add_auth(request)
    assert sent.headers["authorization"] == request.headers["Authorization"]


def test_throttling_is_tried_again_within_the_bound(scripted: ScriptedAws, data_dir: Path) -> None:
    scripted.answers += [
        Answer(429, {"message": "Maximum sending rate exceeded."}),
        Answer(200, {"MessageId": "m-2"}),
    ]
    url = f"ses://?region={REGION}&endpoint_url={scripted.url}"
    open_mailer(url, sender=SENDER, data_dir=data_dir).send(a_message("gina@example.com"))
    assert len(scripted.received) == 2


def test_a_server_error_is_not_tried_again(scripted: ScriptedAws, data_dir: Path) -> None:
    """SES may have sent the mail before it failed: a second attempt could send it twice."""
    scripted.answers.append(Answer(500, {"message": "Internal failure"}))
    url = f"ses://?region={REGION}&endpoint_url={scripted.url}"
    with pytest.raises(MailError, match="500"):
        open_mailer(url, sender=SENDER, data_dir=data_dir).send(a_message("hal@example.com"))
    assert len(scripted.received) == 1


def test_an_answer_that_never_comes_fails_within_the_bound(
    scripted: ScriptedAws, data_dir: Path
) -> None:
    scripted.answers.append(Answer(200, {"MessageId": "late"}, delay=3))
    url = f"ses://?region={REGION}&endpoint_url={scripted.url}"
    mailer = open_mailer(url, sender=SENDER, data_dir=data_dir, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(MailError, match=f"SES {REGION}"):
        mailer.send(a_message("ida@example.com"))
    assert time.monotonic() - started < 1.5
    assert len(scripted.received) == 1  # a read timeout is not tried again


def test_no_server_is_a_mail_error(data_dir: Path) -> None:
    url = f"ses://?region={REGION}&endpoint_url=http://127.0.0.1:{free_port()}"
    with pytest.raises(MailError, match="cannot connect"):
        open_mailer(url, sender=SENDER, data_dir=data_dir, timeout=2).send(
            a_message("jo@example.com")
        )


def test_botocore_is_not_imported(tmp_path: Path) -> None:
    """The Lambda package has it (for credentials outside the environment), but a send with
    credentials in the environment never loads it."""
    import os
    import subprocess
    import sys

    code = (
        "import sys; from pathlib import Path\n"
        "from nimbus.mail import MailError, Message, open_mailer\n"
        f"url = 'ses://?region=eu-west-1&endpoint_url=http://127.0.0.1:{free_port()}'\n"
        "mailer = open_mailer(url, sender='a@example.com', data_dir=Path('.'), timeout=2)\n"
        "try:\n"
        "    mailer.send(Message(to='b@example.com', subject='s', text='t'))\n"
        "except MailError:\n"
        "    pass\n"
        "assert 'botocore' not in sys.modules, 'botocore imported'\n"
    )
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path, env=env, timeout=60)
