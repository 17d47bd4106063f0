"""Mail over SMTP (smtplib): STARTTLS, implicit TLS, or plain SMTP to this machine.

With TLS the certificate and the host name are verified, always (`ca_file` names the
certificates to trust instead of the system's); STARTTLS that the server does not offer is a
failure, never a fall back to clear text. One connection per mail: reset and verification
mails are few, and a connection kept open between them would only time out.
"""

import base64
import contextlib
import smtplib
import socket
import ssl
import threading

from nimbus.mail import mime
from nimbus.mail.bound import within
from nimbus.mail.message import MailError, Message, Sender
from nimbus.mail.urls import SmtpUrl


class SmtpMailer:
    def __init__(self, url: SmtpUrl, *, sender: Sender, timeout: float) -> None:
        self._url = url
        self._sender = sender
        self._timeout = timeout
        self._where = f"SMTP {url.host}:{url.port}"
        # Made once: loading the system's certificates costs milliseconds.
        try:
            self._context = (
                ssl.create_default_context(cafile=url.ca_file) if url.tls != "none" else None
            )
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"smtp:// ca_file {url.ca_file!r}: {exc.strerror or exc}") from None
        # EHLO names the sender's domain: smtplib's default asks DNS for this host's name.
        self._helo = sender.domain if sender.domain.isascii() else "localhost"

    def send(self, message: Message) -> None:
        mail = mime.build(message, self._sender)
        lock = threading.Lock()
        connection: list[smtplib.SMTP] = []

        def converse() -> None:
            smtp = self._connection()
            with lock:
                connection.append(smtp)
            # The name TLS checks the certificate against: smtplib takes it from the
            # constructor's host only, and a constructor given one connects at once, before
            # abort() could reach its socket.
            smtp._host = self._url.host  # type: ignore[attr-defined]  # not in typeshed
            try:
                smtp.connect(self._url.host, self._url.port)
                smtp.ehlo()
                if self._url.tls == "starttls":
                    smtp.starttls(context=self._context)
                    smtp.ehlo()
                if self._url.username is not None:
                    _login(smtp, self._url.username, self._url.password or "")
                smtp.send_message(mail, from_addr=self._sender.address, to_addrs=[message.to])
                # The mail was accepted: a lost goodbye changes nothing.
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    smtp.quit()
            except (smtplib.SMTPException, OSError, ValueError) as exc:
                raise MailError(f"{self._where}: {_reason(exc, message)}") from None
            finally:
                smtp.close()

        def abort() -> None:
            with lock:
                for smtp in connection:
                    sock = smtp.sock
                    if sock is not None:
                        with contextlib.suppress(OSError):
                            sock.shutdown(socket.SHUT_RDWR)

        within(self._timeout, self._where, converse, abort)

    def close(self) -> None:
        pass

    def _connection(self) -> smtplib.SMTP:
        if self._url.tls == "implicit":
            return smtplib.SMTP_SSL(
                local_hostname=self._helo, timeout=self._timeout, context=self._context
            )
        return smtplib.SMTP(local_hostname=self._helo, timeout=self._timeout)


def _login(smtp: smtplib.SMTP, user: str, password: str) -> None:
    """smtplib's login, which encodes credentials as ASCII; else AUTH PLAIN in UTF-8, as
    RFC 4616 has it."""
    if user.isascii() and password.isascii():
        smtp.login(user, password)
        return
    smtp.ehlo_or_helo_if_needed()
    if "PLAIN" not in smtp.esmtp_features.get("auth", "").upper().split():
        raise smtplib.SMTPNotSupportedError(
            "a user or password that is not ASCII needs AUTH PLAIN, which the server lacks"
        )
    token = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
    code, answer = smtp.docmd("AUTH", f"PLAIN {token}")
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, answer)


def _reason(exc: Exception, message: Message) -> str:
    """What went wrong, in a line, with the recipient's address replaced by its domain (a
    server's refusal quotes it)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(exc.recipients.values()), (0, b""))
        reason = f"recipient refused: {code} {_text(text)}"
    elif isinstance(exc, smtplib.SMTPSenderRefused):
        reason = f"sender refused: {exc.smtp_code} {_text(exc.smtp_error)}"
    elif isinstance(exc, smtplib.SMTPAuthenticationError):
        reason = f"login refused: {exc.smtp_code} {_text(exc.smtp_error)}"
    elif isinstance(exc, smtplib.SMTPResponseException):
        reason = f"{exc.smtp_code} {_text(exc.smtp_error)}"
    elif isinstance(exc, smtplib.SMTPNotSupportedError):
        reason = f"not supported by the server: {exc}"
    elif isinstance(exc, ssl.SSLCertVerificationError):
        reason = f"TLS certificate refused: {exc.verify_message}"
    elif isinstance(exc, TimeoutError):
        reason = "timed out"
    elif isinstance(exc, ConnectionRefusedError):
        reason = "connection refused"
    elif isinstance(exc, smtplib.SMTPServerDisconnected):
        reason = f"disconnected: {exc}" if str(exc) else "disconnected"
    else:
        reason = f"{type(exc).__name__}: {exc}"
    return reason.replace(message.to, f"<...@{message.domain}>")[:300]


def _text(value: bytes | str) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return " ".join(text.split())
