"""The laptop's sender: an .eml file per mail in <data dir>/outbox/, and a log line with the
link to click."""

import logging
import os
import stat
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest

from nimbus.mail import Message, open_mailer

LINK = "http://127.0.0.1:8000/?token=abc.def#reset"


def a_message(to: str = "alice@example.com") -> Message:
    return Message(
        to=to,
        subject="Reset your password",
        text=f"Choose a new password: {LINK}",
        html=f'<p><a href="{LINK}">Choose a new password</a></p>',
        link=LINK,
    )


def _read(path: Path) -> EmailMessage:
    parsed = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert isinstance(parsed, EmailMessage)
    return parsed


@pytest.mark.parametrize("url", [None, "", "file://"])
def test_unset_each_mail_is_a_file_in_the_data_dirs_outbox(data_dir: Path, url: str | None) -> None:
    mailer = open_mailer(url, sender="nimbus@localhost", data_dir=data_dir)
    mailer.send(a_message())
    mailer.send(a_message("bob@example.org"))
    files = sorted((data_dir / "outbox").iterdir())
    assert [path.suffix for path in files] == [".eml", ".eml"]  # nothing half-written beside
    first, second = (_read(path) for path in files)
    assert (first["To"], second["To"]) == ("alice@example.com", "bob@example.org")
    assert first["From"] == "nimbus@localhost"
    assert first["Subject"] == "Reset your password"
    assert first["Message-ID"]
    assert first["Date"]
    text, html = first.get_body(("plain",)), first.get_body(("html",))
    assert text is not None
    assert LINK in text.get_content()
    assert html is not None
    assert f'href="{LINK}"' in html.get_content()


def test_the_outbox_is_its_owners_alone(data_dir: Path) -> None:
    """The files hold reset links: the folder is 700 and each file 600, whatever the umask."""
    previous = os.umask(0o022)
    try:
        open_mailer(None, sender="nimbus@localhost", data_dir=data_dir).send(a_message())
    finally:
        os.umask(previous)
    folder = data_dir / "outbox"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    [path] = folder.iterdir()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_log_line_names_the_recipient_and_the_link(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="nimbus.mail"):
        open_mailer(None, sender="nimbus@localhost", data_dir=data_dir).send(a_message())
    [record] = [r for r in caplog.records if r.name == "nimbus.mail"]
    assert record.levelno == logging.INFO
    assert "alice@example.com" in record.getMessage()
    fields = record.__dict__["fields"]
    assert fields["link"] == LINK
    assert fields["mail_to"] == "alice@example.com"
    assert Path(fields["file"]).parent == data_dir / "outbox"


def test_a_file_url_names_another_folder(tmp_path: Path, data_dir: Path) -> None:
    folder = tmp_path / "elsewhere"
    open_mailer(f"file://{folder}", sender="nimbus@localhost", data_dir=data_dir).send(a_message())
    assert len(list(folder.glob("*.eml"))) == 1
    assert not (data_dir / "outbox").exists()


def test_an_unwritable_outbox_is_a_mail_error(tmp_path: Path) -> None:
    from nimbus.mail import MailError

    blocker = tmp_path / "data"
    blocker.write_text("a file where the data dir should be")
    with pytest.raises(MailError, match="outbox"):
        open_mailer(None, sender="nimbus@localhost", data_dir=blocker).send(a_message())
