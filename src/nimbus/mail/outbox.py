"""The laptop's sender: each mail an .eml file in a folder, and a log line with its link.

For development only: the files and the log line hold what the mail holds, reset and
verification links included, so anyone who reads the data dir or the log can use them. The
folder is made readable by its owner alone (700), each file too (600); a file appears whole
or not at all (written aside, then renamed), so a mail client or a test never reads half a
mail.
"""

import logging
import os
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

from nimbus.mail.message import MailError, Message, Sender

log = logging.getLogger("nimbus.mail")


class OutboxMailer:
    def __init__(self, folder: Path, *, sender: Sender) -> None:
        self.folder = folder
        self._sender = sender

    def send(self, message: Message) -> None:
        # The email package only once a mail is made: every process opens an outbox by
        # default, and a Lambda cold start must not pay for it.
        from nimbus.mail import mime

        data = mime.as_bytes(mime.build(message, self._sender))
        # Named by time, so that `ls` lists them in order; the uuid keeps two apart.
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        path = self.folder / f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            descriptor, temporary = tempfile.mkstemp(dir=self.folder, prefix=".", suffix=".part")
            try:
                with os.fdopen(descriptor, "wb") as file:
                    file.write(data)
                os.replace(temporary, path)
            except BaseException:
                os.unlink(temporary)
                raise
        except OSError as exc:
            raise MailError(f"outbox {self.folder}: {exc.strerror or exc}") from None
        log.info(
            "mail to %s in the outbox: %s",
            message.to,
            message.subject,
            extra={"fields": {"mail_to": message.to, "link": message.link, "file": str(path)}},
        )

    def close(self) -> None:
        pass
