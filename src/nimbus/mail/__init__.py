"""Mail: a sender chosen by the scheme of NIMBUS_MAIL_URL, as the store is by its URL.

    mailer = open_mailer(settings.mail_url, sender=settings.mail_from,
                         data_dir=settings.data_dir, timeout=settings.mail_timeout,
                         region=settings.region)
    mails = MailQueue(mailer, inline=on_lambda)
    mails.submit(Message(to=..., subject=..., text=..., html=..., link=url))

`Mailer.send` sends one mail or raises MailError, within `timeout` seconds whatever the server
does. `MailQueue.submit` hands a mail to background threads (or, inline, sends it at once
within that bound) and never raises: a failure is a WARNING on the "nimbus.mail" logger.

Each sender's module is imported when its scheme is used: the outbox needs nothing, SMTP the
standard library, SES nimbus.aws's client (http.client). Importing this package imports none of
them, nor the email package, so the settings can check a mail URL at no cost to a cold start.
"""

import importlib
from pathlib import Path

from nimbus.mail.message import (
    Mailer,
    MailError,
    Message,
    Sender,
    check_address,
    check_header_text,
    parse_sender,
)
from nimbus.mail.queue import MailQueue
from nimbus.mail.urls import (
    OutboxUrl,
    SesUrl,
    SmtpUrl,
    check_public_url,
    link,
    parse_mail_url,
    redact_url,
)

__all__ = [
    "MailError",
    "MailQueue",
    "Mailer",
    "Message",
    "Sender",
    "check_address",
    "check_header_text",
    "check_public_url",
    "link",
    "open_mailer",
    "parse_mail_url",
    "parse_sender",
    "redact_url",
]

OUTBOX = "outbox"


def open_mailer(
    url: str | None,
    *,
    sender: str,
    data_dir: Path,
    timeout: float = 10,
    region: str = "us-east-1",
) -> Mailer:
    """The sender `url` names (unset or `file://`: the outbox in `data_dir`), sending as
    `sender` (an address, or `Name <address>`). `timeout` (seconds) bounds each send; `region`
    is SES's when the URL names none. ValueError, one line without a password, if the URL or
    the sender is unusable; nothing connects yet."""
    if not 0 < timeout <= 300:
        raise ValueError("the mail timeout must be more than 0 and at most 300 seconds")
    parsed = parse_mail_url(url)
    from_ = parse_sender(sender)
    if isinstance(parsed, OutboxUrl):
        from nimbus.mail.outbox import OutboxMailer

        return OutboxMailer(parsed.folder or Path(data_dir) / OUTBOX, sender=from_)
    if isinstance(parsed, SmtpUrl):
        from nimbus.mail.smtp import SmtpMailer

        return SmtpMailer(parsed, sender=from_, timeout=timeout)
    assert isinstance(parsed, SesUrl)
    try:
        ses = importlib.import_module("nimbus.mail.ses")
    except ModuleNotFoundError as exc:
        # One line for a user, naming the missing module, as the stores' URLs do.
        raise ValueError(
            f"ses:// needs {exc.name}: install nimbus-api[dynamodb]"
            " (uv sync --inexact --no-dev --extra dynamodb)"
        ) from None
    mailer: Mailer = ses.SesMailer(parsed, sender=from_, timeout=timeout, region=region)
    return mailer
