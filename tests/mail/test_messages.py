"""What a mail may hold: no header can be added or a recipient slipped in through a subject,
an address or a name; the URLs are read strictly and never repeat a password; links."""

from pathlib import Path

import pytest

from nimbus.mail import (
    Message,
    Sender,
    check_address,
    link,
    open_mailer,
    parse_mail_url,
    parse_sender,
    redact_url,
)
from nimbus.mail.mime import as_bytes, build
from nimbus.mail.urls import OutboxUrl, SesUrl, SmtpUrl

INJECTIONS = [
    "alice@example.com\r\nBcc: eve@evil.example",
    "alice@example.com\nBcc: eve@evil.example",
    "alice@example.com\rBcc: eve@evil.example",
    "alice@example.com, eve@evil.example",
    "eve@evil.example <alice@example.com>",
    '"alice"@example.com',
    "alice@example.com\x00",
    "alice@exa mple.com",
    "alice(comment)@example.com",
    "alice@example.com\u2028Bcc: eve@evil.example",
]


@pytest.mark.parametrize("to", INJECTIONS)
def test_an_address_that_is_not_plain_is_refused(to: str) -> None:
    with pytest.raises(ValueError, match="address"):
        Message(to=to, subject="Hi", text="Hello")


@pytest.mark.parametrize(
    "subject",
    ["Hi\r\nBcc: eve@evil.example", "Hi\nX-Evil: 1", "Hi\r", "Hi\x00", "Hi\x85there",
     "Hi\u2029", "pay\u202egnp.exe"],
)  # fmt: skip
def test_a_subject_with_a_line_break_or_control_is_refused(subject: str) -> None:
    with pytest.raises(ValueError, match="subject"):
        Message(to="alice@example.com", subject=subject, text="Hello")


@pytest.mark.parametrize(
    "address",
    ["alice@example.com", "a.b+tag@sub.example.co", "o'brien@example.ie", "nimbus@localhost",
     "josé@exämple.com", "x@a-b.example"],
)  # fmt: skip
def test_plain_addresses_are_taken(address: str) -> None:
    assert check_address(address) == address


@pytest.mark.parametrize(
    "address",
    ["", "alice", "@example.com", "alice@", "a..b@example.com", ".a@example.com",
     "a@-example.com", "a@example..com", "a" * 65 + "@example.com",
     "a@" + "b" * 64 + ".com"],
)  # fmt: skip
def test_malformed_addresses_are_refused(address: str) -> None:
    with pytest.raises(ValueError, match="address"):
        check_address(address)


def test_bodies_and_links_are_bounded() -> None:
    with pytest.raises(ValueError, match="plain-text body"):
        Message(to="a@example.com", subject="Hi", text="  ")
    with pytest.raises(ValueError, match="text"):
        Message(to="a@example.com", subject="Hi", text="x" * (1024 * 1024 + 1))
    with pytest.raises(ValueError, match="link"):
        Message(to="a@example.com", subject="Hi", text="x", link="javascript:alert(1)")
    with pytest.raises(ValueError, match="link"):
        Message(to="a@example.com", subject="Hi", text="x", link="https://a.example/\r\nX: 1")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("no-reply@example.com", Sender("no-reply@example.com")),
     ("Nimbus <no-reply@example.com>", Sender("no-reply@example.com", "Nimbus")),
     ('"Nimbus, the app" <no-reply@example.com>',
      Sender("no-reply@example.com", "Nimbus, the app")),
     ("  Nimbus Tëst <no-reply@example.com>  ", Sender("no-reply@example.com", "Nimbus Tëst"))],
)  # fmt: skip
def test_the_sender_is_an_address_with_an_optional_name(value: str, expected: Sender) -> None:
    assert parse_sender(value) == expected


@pytest.mark.parametrize(
    "value",
    ["nobody", "Nimbus <no-reply@example.com>\r\nBcc: eve@evil.example",
     "Nimbus <a@example.com, b@example.com>", 'Ni"mbus <a@example.com>',
     "Nimbus <a@example.com> <b@example.com>", "Nimbus <>"],
)  # fmt: skip
def test_a_bad_sender_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match=r"sender|address"):
        parse_sender(value)
    with pytest.raises(ValueError, match=r"sender|address"):
        open_mailer(None, sender=value, data_dir=Path("."))


def test_a_name_with_a_comma_stays_one_address_in_the_header() -> None:
    mail = build(
        Message(to="alice@example.com", subject="Hi", text="Hello"),
        parse_sender('"Doe, Jane" <jane@example.com>'),
    )
    assert mail["From"].addresses[0].addr_spec == "jane@example.com"
    assert len(mail["From"].addresses) == 1
    assert b'From: "Doe, Jane" <jane@example.com>\r\n' in as_bytes(mail)


def test_an_international_address_is_sent_as_utf8() -> None:
    mail = build(
        Message(to="josé@exämple.com", subject="Olá", text="Olá"), Sender("no-reply@example.com")
    )
    assert "To: josé@exämple.com\r\n".encode() in as_bytes(mail)


# --- URLs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [(None, OutboxUrl(None)), ("", OutboxUrl(None)), ("file://", OutboxUrl(None)),
     ("file:///var/mail/out", OutboxUrl(Path("/var/mail/out"))),
     ("smtp://127.0.0.1", SmtpUrl("127.0.0.1", 25, "none", None, None, None)),
     ("smtp://localhost:1025", SmtpUrl("localhost", 1025, "none", None, None, None)),
     ("smtp://mail.example.com", SmtpUrl("mail.example.com", 587, "starttls", None, None, None)),
     ("smtp://u%40x:p%2Fw%3A@mail.example.com:2525?tls=starttls&ca_file=/ca.pem",
      SmtpUrl("mail.example.com", 2525, "starttls", "u@x", "p/w:", "/ca.pem")),
     ("smtp://relay.internal?tls=none", SmtpUrl("relay.internal", 25, "none", None, None, None)),
     ("smtp://u:p@localhost?tls=none", SmtpUrl("localhost", 25, "none", "u", "p", None)),
     ("smtps://u:p@mail.example.com", SmtpUrl("mail.example.com", 465, "implicit", "u", "p", None)),
     ("SMTP://mail.example.com", SmtpUrl("mail.example.com", 587, "starttls", None, None, None)),
     ("ses://", SesUrl(None, None, None)),
     ("ses://?region=eu-west-1&endpoint_url=http://127.0.0.1:5000&configuration_set=mail-1",
      SesUrl("eu-west-1", "http://127.0.0.1:5000", "mail-1"))],
)  # fmt: skip
def test_mail_urls_are_read(url: str | None, expected: object) -> None:
    assert parse_mail_url(url) == expected


@pytest.mark.parametrize(
    ("url", "error"),
    [("http://mail.example.com", "unsupported mail URL scheme 'http'"),
     ("smtp:mail.example.com", "unsupported mail URL scheme 'smtp'"),
     ("user:hunter2@mail", "unsupported mail URL scheme 'user'"),
     ("hunter2@mail", "not a mail URL"),
     ("smtp://", "needs a host"),
     ("smtp://mail.example.com:99999", "port"),
     ("smtp://mail.example.com:0", "port"),
     ("smtp://mail.example.com/path", "no path"),
     ("smtp://mail.example.com?tls=maybe", "tls must be starttls or none"),
     ("smtp://mail.example.com?verify=false", "unknown smtp:// parameter 'verify'"),
     ("smtp://mail.example.com?tls=none&tls=none", "given twice"),
     ("smtps://mail.example.com?tls=none", "unknown smtps:// parameter 'tls'"),
     ("smtp://user:hunter2@mail.example.com?tls=none", "clear text"),
     ("smtp://:hunter2@mail.example.com", "password but no user"),
     ("smtp://user:hun/ter2@mail.example.com", "percent-encoded"),
     ("smtp://user:hun?ter2@mail.example.com", "percent-encoded"),
     ("smtp://mail.example.com?tls=none&ca_file=/ca.pem", "ca_file has no use"),
     ("smtp://mail.example.com#x", "fragment"),
     ("smtp://mail example.com", "spaces"),
     ("ses://email.eu-west-1.amazonaws.com", "no host"),
     ("ses://?region=eu west", "spaces"),
     ("ses://?region=eu/west", "region"),
     ("ses://?endpoint_url=ftp://x", "endpoint_url"),
     ("ses://?endpoint_url=http://k:hunter2@x", "user"),
     ("ses://?configuration_set=a;b", "configuration_set"),
     ("file://host/path", "no host")],
)  # fmt: skip
def test_bad_mail_urls_are_refused_in_a_line_without_the_password(url: str, error: str) -> None:
    with pytest.raises(ValueError, match=error) as caught:
        parse_mail_url(url)
    assert "hunter2" not in str(caught.value)
    assert "ter2" not in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "redacted"),
    [("smtp://u:hunter2@mail.example.com:587", "smtp://***@mail.example.com:587"),
     ("smtp://u:hun@ter2@mail.example.com", "smtp://***@mail.example.com"),
     ("smtp://u:hun/ter2@mail.example.com", "smtp://***@mail.example.com"),
     ("smtp://mail.example.com?tls=none", "smtp://mail.example.com?tls=none"),
     ("ses://?region=eu-west-1", "ses://?region=eu-west-1")],
)  # fmt: skip
def test_redacted_urls_keep_no_credentials(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted


def test_a_missing_ca_file_is_refused_when_the_mailer_opens(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ca_file"):
        open_mailer(
            f"smtp://mail.example.com?ca_file={tmp_path / 'none.pem'}",
            sender="a@example.com",
            data_dir=tmp_path,
        )


def test_the_timeout_is_bounded(tmp_path: Path) -> None:
    for timeout in (0, -1, 301):
        with pytest.raises(ValueError, match="timeout"):
            open_mailer(None, sender="a@example.com", data_dir=tmp_path, timeout=timeout)


# --- links -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "path", "query", "fragment", "expected"),
    [("https://app.example", "/reset", {"token": "a.b-c"}, None,
      "https://app.example/reset?token=a.b-c"),
     ("https://app.example/", "reset", {"token": "a b&c=d/+"}, None,
      "https://app.example/reset?token=a%20b%26c%3Dd%2F%2B"),
     ("https://example.com/nimbus/", "/", {"token": "t"}, "reset",
      "https://example.com/nimbus/?token=t#reset"),
     ("http://127.0.0.1:8000", "/", {}, None, "http://127.0.0.1:8000/")],
)  # fmt: skip
def test_links_join_the_base_and_encode_the_query(
    base: str, path: str, query: dict[str, str], fragment: str | None, expected: str
) -> None:
    assert link(base, path, fragment=fragment, **query) == expected


@pytest.mark.parametrize(
    "base",
    ["ftp://app.example", "https://", "https://app.example?x=1", "https://app.example#top",
     "https://user:pw@app.example", "app.example", "https://app.example/\r\nX: 1"],
)  # fmt: skip
def test_a_link_needs_an_http_base_without_query(base: str) -> None:
    with pytest.raises(ValueError, match="URL"):
        link(base, "/reset", token="t")


def test_a_link_takes_its_query_as_keywords() -> None:
    with pytest.raises(ValueError, match="keywords"):
        link("https://app.example", "/reset?token=t")
