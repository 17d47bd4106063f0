"""NIMBUS_MAIL_URL, NIMBUS_MAIL_FROM, NIMBUS_PUBLIC_URL and NIMBUS_MAIL_TIMEOUT: read, and a
bad one refused at start-up in a plain line that never repeats a password."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from nimbus.settings import Settings
from tests.support import free_port, run_cli


def test_the_defaults_mail_to_the_outbox(tmp_path: Path) -> None:
    settings = Settings(env_file=None, data_dir=tmp_path)
    assert settings.mail_url is None
    assert settings.mail_from == "nimbus@localhost"
    assert settings.public_url is None
    assert settings.mail_timeout == 10


def test_the_mail_settings_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NIMBUS_MAIL_URL", "smtps://u:p%40ss@mail.example.com")
    monkeypatch.setenv("NIMBUS_MAIL_FROM", "Nimbus <no-reply@example.com>")
    monkeypatch.setenv("NIMBUS_PUBLIC_URL", "https://app.example.com/")
    monkeypatch.setenv("NIMBUS_MAIL_TIMEOUT", "2.5")
    settings = Settings(env_file=None)
    assert settings.mail_url == "smtps://u:p%40ss@mail.example.com"
    assert settings.mail_from == "Nimbus <no-reply@example.com>"
    assert settings.public_url == "https://app.example.com"  # without its trailing slash
    assert settings.mail_timeout == 2.5


def test_an_empty_mail_url_is_the_outbox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NIMBUS_MAIL_URL", "")
    monkeypatch.setenv("NIMBUS_PUBLIC_URL", "")
    settings = Settings(env_file=None)
    assert (settings.mail_url, settings.public_url) == (None, None)


@pytest.mark.parametrize(
    ("name", "value"),
    [("NIMBUS_MAIL_URL", "smtp://user:hunter2@mail.example.com?tls=none"),
     ("NIMBUS_MAIL_URL", "smtp://user:hunter2@mail.example.com:port"),
     ("NIMBUS_MAIL_URL", "sendgrid://user:hunter2@x"),
     ("NIMBUS_MAIL_FROM", "nobody"),
     ("NIMBUS_MAIL_FROM", "Nimbus <a@example.com>\r\nBcc: eve@evil.example"),
     ("NIMBUS_PUBLIC_URL", "app.example.com"),
     ("NIMBUS_PUBLIC_URL", "https://app.example.com/?next=/"),
     ("NIMBUS_MAIL_TIMEOUT", "0"),
     ("NIMBUS_MAIL_TIMEOUT", "61")],
)  # fmt: skip
def test_bad_mail_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        Settings(env_file=None)
    # The error's text is what Lambda's init logs: never the input, the password with it.
    assert "hunter2" not in str(caught.value)


def test_a_bad_mail_url_stops_serve_in_one_line_without_the_password(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {"NIMBUS_MAIL_URL": "smtp://mailer:hunter2@mail.example.com?tls=none"}
    result = run_cli(data_dir, "serve", "--port", str(free_port()), env=env)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "Error: NIMBUS_MAIL_URL: smtp:// with tls=none would send the password to "
        "mail.example.com in clear text: use tls=starttls or smtps://\n"
    )
    assert not data_dir.exists()


def test_a_bad_sender_stops_serve_in_one_line(tmp_path: Path) -> None:
    result = run_cli(
        tmp_path / "data", "serve", "--port", str(free_port()), env={"NIMBUS_MAIL_FROM": "nimbus"}
    )
    assert result.returncode == 2
    assert result.stderr == ("Error: NIMBUS_MAIL_FROM: 'nimbus' is not an address (local@domain)\n")
