"""SMTP to a real server (aiosmtpd on 127.0.0.1): plain to a loopback catcher, STARTTLS and
implicit TLS with a login, certificates verified; and the failures, each a MailError within
the bound."""

import time
from pathlib import Path
from urllib.parse import quote

import pytest
from aiosmtpd.controller import Controller

from nimbus.mail import MailError, Message, open_mailer
from tests.mail.servers import PASSWORD, USER, Certificates, SmtpServer, silent_server, smtp_server
from tests.support import free_port

SENDER = "Nimbus <no-reply@example.com>"
CREDENTIALS = f"{quote(USER, safe='')}:{quote(PASSWORD, safe='')}"


def a_message(**overrides: str) -> Message:
    fields = {
        "to": "alice@example.com",
        "subject": "Reset your password",
        "text": "Follow https://app.example/reset?token=abc to choose a new password.",
        "html": '<p>Follow <a href="https://app.example/reset?token=abc">this link</a>.</p>',
        "link": "https://app.example/reset?token=abc",
    } | overrides
    return Message(**fields)


def test_a_mail_arrives_with_both_bodies_and_its_headers(
    plain_server: SmtpServer, data_dir: Path
) -> None:
    mailer = open_mailer(
        f"smtp://127.0.0.1:{plain_server.port}", sender=SENDER, data_dir=data_dir, timeout=5
    )
    mailer.send(a_message(subject="Réinitialiser le mot de passe"))
    [received] = plain_server.inbox.received
    assert received.sender == "no-reply@example.com"
    assert received.recipients == ["alice@example.com"]
    mail = received.mail
    assert mail["From"] == SENDER
    assert mail["To"] == "alice@example.com"
    assert mail["Subject"] == "Réinitialiser le mot de passe"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["Message-ID"].endswith("@example.com>")
    assert mail["Date"]
    assert mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None
    assert html is not None
    assert "token=abc to choose" in text.get_content()
    assert '<a href="https://app.example/reset?token=abc">' in html.get_content()
    assert "Bcc" not in mail


def test_a_mail_without_html_is_plain_text(plain_server: SmtpServer, data_dir: Path) -> None:
    mailer = open_mailer(f"smtp://127.0.0.1:{plain_server.port}", sender=SENDER, data_dir=data_dir)
    mailer.send(Message(to="bob@example.org", subject="Hello", text="Just text"))
    mail = plain_server.inbox.received[0].mail
    assert mail.get_content_type() == "text/plain"
    assert mail.get_content().strip() == "Just text"


def test_starttls_with_a_login(
    starttls_server: SmtpServer, certificates: Certificates, data_dir: Path
) -> None:
    url = (
        f"smtp://{CREDENTIALS}@127.0.0.1:{starttls_server.port}"
        f"?tls=starttls&ca_file={certificates.ca_file}"
    )
    open_mailer(url, sender=SENDER, data_dir=data_dir, timeout=5).send(a_message())
    assert [r.recipients for r in starttls_server.inbox.received] == [["alice@example.com"]]
    assert starttls_server.inbox.logins  # the percent-decoded user and password logged in


def test_implicit_tls_with_a_login(certificates: Certificates, data_dir: Path) -> None:
    with smtp_server(implicit_tls=certificates.server_context(), auth=True) as server:
        url = f"smtps://{CREDENTIALS}@localhost:{server.port}?ca_file={certificates.ca_file}"
        open_mailer(url, sender=SENDER, data_dir=data_dir, timeout=5).send(a_message())
        assert len(server.inbox.received) == 1
        assert server.inbox.logins


def test_a_wrong_password_is_a_mail_error_without_the_password(
    starttls_server: SmtpServer, certificates: Certificates, data_dir: Path
) -> None:
    url = (
        f"smtp://{USER}:wrong-secret@127.0.0.1:{starttls_server.port}"
        f"?tls=starttls&ca_file={certificates.ca_file}"
    )
    with pytest.raises(MailError, match="login refused: 535") as caught:
        open_mailer(url, sender=SENDER, data_dir=data_dir, timeout=5).send(a_message())
    assert "wrong-secret" not in str(caught.value)
    assert starttls_server.inbox.received == []


def test_a_certificate_nobody_vouched_for_is_refused(
    starttls_server: SmtpServer, data_dir: Path
) -> None:
    """Verified by default: the throwaway CA is not in the system's store."""
    url = f"smtp://{CREDENTIALS}@127.0.0.1:{starttls_server.port}?tls=starttls"
    with pytest.raises(MailError, match="TLS certificate refused"):
        open_mailer(url, sender=SENDER, data_dir=data_dir, timeout=5).send(a_message())
    assert starttls_server.inbox.received == []


def test_a_certificate_for_another_name_is_refused(
    certificates: Certificates, data_dir: Path
) -> None:
    """The certificate names 127.0.0.1 and localhost, not 127.0.0.2 (also this machine)."""
    with smtp_server(implicit_tls=certificates.server_context()) as server:
        url = f"smtps://127.0.0.2:{server.port}?ca_file={certificates.ca_file}"
        with pytest.raises(MailError):
            open_mailer(url, sender=SENDER, data_dir=data_dir, timeout=5).send(a_message())
        assert server.inbox.received == []


def test_starttls_the_server_does_not_offer_is_never_skipped(
    plain_server: SmtpServer, certificates: Certificates, data_dir: Path
) -> None:
    url = f"smtp://127.0.0.1:{plain_server.port}?tls=starttls&ca_file={certificates.ca_file}"
    with pytest.raises(MailError, match="STARTTLS"):
        open_mailer(url, sender=SENDER, data_dir=data_dir, timeout=5).send(a_message())
    assert plain_server.inbox.received == []


def test_a_refused_connection_is_a_mail_error(data_dir: Path) -> None:
    mailer = open_mailer(f"smtp://127.0.0.1:{free_port()}", sender=SENDER, data_dir=data_dir)
    with pytest.raises(MailError, match=r"SMTP 127\.0\.0\.1:\d+: connection refused"):
        mailer.send(a_message())


@pytest.mark.parametrize("trickle", [False, True], ids=["silent", "a byte at a time"])
def test_a_server_that_never_answers_fails_within_the_bound(data_dir: Path, trickle: bool) -> None:
    """Silent, a socket timeout fires; a byte at a time, none ever would: the bound is on the
    whole send."""
    with silent_server(trickle=trickle) as port:
        mailer = open_mailer(
            f"smtp://127.0.0.1:{port}", sender=SENDER, data_dir=data_dir, timeout=0.5
        )
        started = time.monotonic()
        with pytest.raises(MailError, match=r"SMTP 127\.0\.0\.1:\d+: "):
            mailer.send(a_message())
        assert time.monotonic() - started < 1.5


class Refusing:
    async def handle_RCPT(
        self, server: object, session: object, envelope: object, address: str, options: object
    ) -> str:
        return f"550 5.1.1 <{address}>: Recipient address rejected"


def test_a_refused_recipient_is_named_by_its_domain_only(data_dir: Path) -> None:
    port = free_port()
    controller = Controller(Refusing(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        mailer = open_mailer(f"smtp://127.0.0.1:{port}", sender=SENDER, data_dir=data_dir)
        with pytest.raises(MailError, match="recipient refused: 550") as caught:
            mailer.send(a_message())
    finally:
        controller.stop()
    assert "alice@" not in str(caught.value)
    assert "example.com" in str(caught.value)


def test_an_international_address_goes_with_smtputf8(
    plain_server: SmtpServer, data_dir: Path
) -> None:
    mailer = open_mailer(f"smtp://127.0.0.1:{plain_server.port}", sender=SENDER, data_dir=data_dir)
    mailer.send(Message(to="josé@exämple.com", subject="Olá", text="Olá, José"))
    [received] = plain_server.inbox.received
    assert received.recipients == ["josé@exämple.com"]
    assert received.mail["To"] == "josé@exämple.com"
