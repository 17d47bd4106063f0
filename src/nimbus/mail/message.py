"""What a mail is, who sends it, and the checks that keep its headers whole.

Every value that becomes a header (an address, a subject, a display name) is refused if it
holds a line break or any other control character, so no caller can add a header (`Bcc:`) or
a recipient through one. Addresses are refused unless they are a plain `local@domain`
(RFC 5322's dot-atom, with UTF-8 allowed as RFC 6531 allows it): nothing that a header
parser could read as two addresses, a comment or a group.
"""

import unicodedata
from typing import NamedTuple, Protocol

from nimbus.values import frozen

MAX_SUBJECT = 255  # characters
MAX_BODY = 1024 * 1024  # characters, each of the text and the HTML
MAX_LINK = 2048  # characters
_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_ATEXT = frozenset(_LETTERS + "!#$%&'*+/=?^_`{|}~-")
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_LABEL = frozenset(_LETTERS + "-")


class MailError(Exception):
    """A mail was not sent: the server refused it, was unreachable, or took longer than the
    bound. The message names the server and the reason; never a password, a body or a link."""


@frozen
class Message:
    """One mail to one recipient: a plain-text body, optionally an HTML alternative.

    `link` is the one link a developer needs from the mail (a reset or verification link): the
    outbox logs it so that it can be clicked from the terminal; the other senders ignore it,
    and no failure record ever shows it. The HTML is sent as it is given: escape every value
    put into it (`html.escape`). ValueError if any field is unsafe or out of bounds.
    """

    to: str
    subject: str
    text: str
    html: str | None = None
    link: str | None = None

    def __post_init__(self) -> None:
        check_address(self.to)
        check_header_text(self.subject, "subject", MAX_SUBJECT)
        if not self.subject.strip():
            raise ValueError("a mail needs a subject")
        for name, body in (("text", self.text), ("html", self.html)):
            if body is not None and (not isinstance(body, str) or len(body) > MAX_BODY):
                raise ValueError(f"the {name} body must be text of at most {MAX_BODY} characters")
        if not self.text.strip():
            raise ValueError("a mail needs a plain-text body")
        if self.link is not None:
            _check_link(self.link)

    @property
    def domain(self) -> str:
        """The recipient's domain: all a failure record says of the recipient."""
        return self.to.rpartition("@")[2].lower()


class Sender(NamedTuple):
    """NIMBUS_MAIL_FROM: an address, with an optional display name (`Nimbus <no-reply@x>`)."""

    address: str
    name: str | None = None

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]


class Mailer(Protocol):
    """Sends one mail, or raises MailError; never holds the caller past its timeout."""

    def send(self, message: Message) -> None: ...

    def close(self) -> None: ...


def check_address(value: object) -> str:
    """`value` if it is a plain address `local@domain`; ValueError otherwise."""
    if not isinstance(value, str):
        raise ValueError("an address must be text")
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"{_shown(value)} is not an address (local@domain)")
    if len(value.encode()) > 254 or len(local.encode()) > 64:
        raise ValueError(f"{_shown(value)} is longer than an address may be")
    if not all(part and all(_atext(c) for c in part) for part in local.split(".")):
        raise ValueError(f"{_shown(value)} is not an address: its local part is not plain")
    labels = domain.split(".")
    if not all(
        0 < len(label) <= 63
        and all(c in _LABEL or _unicode_text(c) for c in label)
        and label[0] != "-"
        and label[-1] != "-"
        for label in labels
    ):
        raise ValueError(f"{_shown(value)} is not an address: its domain is not a host name")
    return value


def parse_sender(value: str) -> Sender:
    """`addr@example.com` or `Display Name <addr@example.com>`; ValueError otherwise."""
    check_header_text(value, "the sender", 320)
    text = value.strip()
    if text.endswith(">") and "<" in text:
        name, _, address = text[:-1].rpartition("<")
        name = name.strip()
        if len(name) >= 2 and name[0] == name[-1] == '"':
            name = name[1:-1].strip()
        if any(c in name for c in '"<>\\'):
            raise ValueError(f"the sender's name {name!r} may not hold quotes, < > or \\")
        return Sender(check_address(address.strip()), name or None)
    return Sender(check_address(text))


def check_header_text(value: object, what: str, limit: int) -> str:
    """Text safe for a header: no line break or other control character, at most `limit`."""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be text")
    if len(value) > limit:
        raise ValueError(f"{what} is longer than {limit} characters")
    if any(_control(c) for c in value):
        raise ValueError(f"{what} may not hold a line break or another control character")
    return value


def _check_link(link: str) -> None:
    if (
        not isinstance(link, str)
        or len(link) > MAX_LINK
        or not link.startswith(("http://", "https://"))
        or any(c.isspace() or _control(c) for c in link)
    ):
        raise ValueError("a mail's link must be an http(s) URL without spaces")


def _control(c: str) -> bool:
    # Cc: the C0 and C1 controls (CR, LF, NUL, NEL...); Zl, Zp: the line and paragraph
    # separators; and the bidirectional overrides, which make a subject read other than it is.
    return unicodedata.category(c) in ("Cc", "Zl", "Zp") or c in _BIDI


def _atext(c: str) -> bool:
    return c in _ATEXT or _unicode_text(c)


def _unicode_text(c: str) -> bool:
    """A non-ASCII character RFC 6531 allows: not a space, a control or a separator."""
    return ord(c) > 127 and unicodedata.category(c)[0] not in ("C", "Z")


def _shown(value: str) -> str:
    return repr(value[:80])
