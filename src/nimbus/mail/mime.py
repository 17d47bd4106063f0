"""A Message as MIME: multipart/alternative (text, then HTML) or text/plain alone.

Imported by the senders only when a mail is made: the email package's parsers cost a cold
start milliseconds that a request without mail need not pay.
"""

from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from nimbus.mail.message import Message, Sender


def build(message: Message, sender: Sender) -> EmailMessage:
    """The mail as its recipient gets it: From, To, Subject, Date, Message-ID and
    `Auto-Submitted: auto-generated` (RFC 3834: no auto-reply to it), then the bodies."""
    international = not (message.to.isascii() and sender.address.isascii())
    mail = EmailMessage(policy=policy.SMTPUTF8 if international else policy.SMTP)
    # Address objects, not strings: the header is built from its parts, never parsed, so no
    # value can become a second address.
    mail["From"] = _address(sender.address, sender.name)
    mail["To"] = _address(message.to)
    mail["Subject"] = message.subject
    mail["Date"] = format_datetime(datetime.now(UTC), usegmt=True)
    # The sender's domain, not make_msgid's default, which asks DNS for this host's name.
    mail["Message-ID"] = make_msgid(domain=_ascii_domain(sender.domain))
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(message.text)
    if message.html is not None:
        mail.add_alternative(message.html, subtype="html")
    return mail


def as_bytes(mail: EmailMessage) -> bytes:
    """The mail as sent: CRLF line ends, lines within SMTP's limit."""
    return mail.as_bytes()


def _address(address: str, name: str | None = None) -> Address:
    # From the parts: Address(addr_spec=...) parses, and refuses a UTF-8 local part.
    local, _, domain = address.rpartition("@")
    return Address(display_name=name or "", username=local, domain=domain)


def _ascii_domain(domain: str) -> str:
    if domain.isascii():
        return domain
    try:
        return domain.encode("idna").decode()
    except UnicodeError:
        return "localhost"
