"""MailQueue: a request hands a mail off and never waits for, or hears of, the mail server;
failures are logged with the recipient's domain alone; close sends what waits; inline (Lambda)
sends at once within the bound."""

import logging
import threading
import time
from pathlib import Path

import pytest

from nimbus import metrics
from nimbus.mail import MailError, MailQueue, Message, open_mailer
from tests.mail.servers import SmtpServer, silent_server
from tests.support import CountingSink, free_port

TOKEN = "secret-reset-token-123"
LINK = f"https://app.example/?token={TOKEN}"


def a_message(to: str = "alice@example.com") -> Message:
    return Message(
        to=to,
        subject="Reset your password",
        text=f"Reset it: {LINK}",
        html=f'<a href="{LINK}">Reset</a>',
        link=LINK,
    )


class Recording:
    """A mailer that keeps what it is asked to send, optionally held until released."""

    def __init__(self, *, hold: bool = False, fail: bool = False) -> None:
        self.sent: list[Message] = []
        self.release = threading.Event()
        self.started = threading.Event()
        if not hold:
            self.release.set()
        self.fail = fail
        self.closed = False

    def send(self, message: Message) -> None:
        self.started.set()
        self.release.wait(10)
        if self.fail:
            raise MailError("SMTP mail.example:587: 421 try later")
        self.sent.append(message)

    def close(self) -> None:
        self.closed = True


def _warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "nimbus.mail" and r.levelno == logging.WARNING]


def _assert_nothing_secret(records: list[logging.LogRecord]) -> None:
    for record in records:
        line = f"{record.getMessage()} {record.__dict__.get('fields')}"
        assert "alice@" not in line
        assert TOKEN not in line
        assert "Reset it" not in line


def test_submit_returns_at_once_while_the_server_never_answers(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with silent_server() as port:
        mailer = open_mailer(
            f"smtp://127.0.0.1:{port}", sender="nimbus@localhost", data_dir=data_dir, timeout=0.3
        )
        queue = MailQueue(mailer)
        started = time.monotonic()
        queue.submit(a_message())
        assert time.monotonic() - started < 0.2  # well inside the 0.3 s the send may take
        queue.close(timeout=5)
    assert queue.failed == 1
    [record] = _warnings(caplog)
    assert "example.com" in record.getMessage()
    assert record.__dict__["fields"]["mail_domain"] == "example.com"
    # The send's bound or the socket's own timeout, whichever fires first on a busy machine.
    error = record.__dict__["fields"]["error"]
    assert "no answer within 0.3 s" in error or "timed out" in error, error
    _assert_nothing_secret([record])


def test_a_failure_is_logged_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    queue = MailQueue(Recording(fail=True))
    queue.submit(a_message())  # no exception
    queue.close()
    assert (queue.sent, queue.failed) == (0, 1)
    [record] = _warnings(caplog)
    assert "421 try later" in record.getMessage()
    _assert_nothing_secret([record])


def test_an_unexpected_exception_is_named_by_its_type_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken:
        def send(self, message: Message) -> None:
            raise RuntimeError(f"bug while sending {message.text}")

        def close(self) -> None:
            pass

    queue = MailQueue(Broken())
    queue.submit(a_message())
    queue.close()
    [record] = _warnings(caplog)
    assert record.__dict__["fields"]["error"] == "RuntimeError"
    _assert_nothing_secret([record])


def test_close_sends_every_mail_still_waiting(plain_server: SmtpServer, data_dir: Path) -> None:
    mailer = open_mailer(
        f"smtp://127.0.0.1:{plain_server.port}", sender="nimbus@localhost", data_dir=data_dir
    )
    queue = MailQueue(mailer, workers=2)
    for number in range(6):
        queue.submit(a_message(f"user{number}@example.com"))
    queue.close()
    assert sorted(r.recipients[0] for r in plain_server.inbox.received) == [
        f"user{number}@example.com" for number in range(6)
    ]
    assert queue.sent == 6


def test_a_full_queue_drops_the_mail_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    mailer = Recording(hold=True)
    queue = MailQueue(mailer, workers=1, max_pending=1)
    queue.submit(a_message("one@example.com"))  # taken by the worker, which waits
    assert mailer.started.wait(5)
    queue.submit(a_message("two@example.com"))  # waits in the queue
    queue.submit(a_message())  # no room
    assert queue.dropped == 1
    [record] = _warnings(caplog)
    assert "full" in record.getMessage()
    _assert_nothing_secret([record])
    mailer.release.set()
    queue.close()
    assert [m.to for m in mailer.sent] == ["one@example.com", "two@example.com"]
    assert mailer.closed


def test_close_gives_up_after_its_timeout(caplog: pytest.LogCaptureFixture) -> None:
    mailer = Recording(hold=True)
    queue = MailQueue(mailer, workers=1)
    queue.submit(a_message("one@example.com"))
    assert mailer.started.wait(5)
    queue.submit(a_message())
    started = time.monotonic()
    queue.close(timeout=0.2)
    assert time.monotonic() - started < 1
    assert queue.dropped == 1
    assert any("closed before" in r.getMessage() for r in _warnings(caplog))
    mailer.release.set()


def test_after_close_a_mail_is_dropped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    queue = MailQueue(Recording())
    queue.close()
    queue.submit(a_message())
    assert queue.dropped == 1
    assert "closed" in _warnings(caplog)[0].getMessage()


def test_no_thread_starts_before_the_first_mail() -> None:
    before = {t.name for t in threading.enumerate()}
    queue = MailQueue(Recording())
    assert not {t.name for t in threading.enumerate()} - before
    queue.close()


def test_inline_sends_in_the_caller_within_the_bound(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Lambda's mode: the mail has gone (or failed, logged) when submit returns."""
    mailer = Recording()
    queue = MailQueue(mailer, inline=True)
    queue.submit(a_message())
    assert [m.to for m in mailer.sent] == ["alice@example.com"]

    refused = open_mailer(
        f"smtp://127.0.0.1:{free_port()}", sender="nimbus@localhost", data_dir=data_dir
    )
    inline = MailQueue(refused, inline=True)
    inline.submit(a_message())  # no exception
    assert inline.failed == 1
    assert "connection refused" in _warnings(caplog)[0].getMessage()
    _assert_nothing_secret(_warnings(caplog))


def test_a_failure_record_carries_the_requests_id(caplog: pytest.LogCaptureFixture) -> None:
    from nimbus.logs import REQUEST_ID

    queue = MailQueue(Recording(fail=True))
    token = REQUEST_ID.set("req-42")
    try:
        queue.submit(a_message())
    finally:
        REQUEST_ID.reset(token)
    queue.close()
    [record] = _warnings(caplog)
    assert record.__dict__["request_id"] == "req-42"


def test_each_outcome_is_counted_in_the_metrics() -> None:
    counted = CountingSink()
    metrics.use(counted)
    held = Recording(hold=True)
    queue = MailQueue(held, workers=1, max_pending=1)
    queue.submit(a_message("one@example.com"))
    assert held.started.wait(5)
    queue.submit(a_message("two@example.com"))
    queue.submit(a_message("three@example.com"))  # no room: dropped
    held.release.set()
    queue.close()
    failing = MailQueue(Recording(fail=True), inline=True)
    failing.submit(a_message())
    assert sorted(counted.mails) == ["dropped", "failed", "sent", "sent"]
