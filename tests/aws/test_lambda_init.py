"""The Lambda handler module's init, in a fresh interpreter as Lambda runs it: the collector is
off while the app is built, its objects are frozen, and the collector is on again after, also
when the build fails; and a mail sender's modules are imported only where its URL is set."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import cli_env

PROBE = """
import gc, sys
try:
    import nimbus.entrypoints.aws_lambda
except Exception as exc:
    print("failed:", type(exc).__name__)
print("collecting:", gc.isenabled())
print("frozen:", gc.get_freeze_count() > 0)
"""


def _init(tmp_path: Path, **env: str) -> list[str]:
    run = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=cli_env(tmp_path, AWS_LAMBDA_FUNCTION_NAME="nimbus-test-api", **env),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return run.stdout.splitlines()


def test_init_builds_the_app_freezes_it_and_collects_again(tmp_path: Path) -> None:
    assert _init(tmp_path) == ["collecting: True", "frozen: True"]


def test_a_failed_init_leaves_the_collector_on(tmp_path: Path) -> None:
    lines = _init(tmp_path, NIMBUS_ACCESS_TOKEN_TTL="0")  # not a valid setting
    assert lines == ["failed: ValidationError", "collecting: True", "frozen: False"]


MAIL_PROBE = """
import sys
import nimbus.entrypoints.aws_lambda
print(" ".join(sorted(name for name in sys.argv[1:] if name in sys.modules)))
"""
# The email package too (nimbus.mail.mime): the outbox, the default, makes a mail with it only
# when it sends one.
SENDERS = (
    "nimbus.mail.ses",
    "nimbus.mail.smtp",
    "nimbus.mail.mime",
    "smtplib",
    "botocore",
    "boto3",
)


@pytest.mark.parametrize(
    ("mail_url", "loaded"),
    [
        (None, ""),
        # Built in init, which SnapStart snapshots: the first mail's request imports nothing.
        ("ses://?region=eu-west-1", "nimbus.mail.mime nimbus.mail.ses"),
        ("smtp://127.0.0.1:2525", "nimbus.mail.mime nimbus.mail.smtp smtplib"),
    ],
)
def test_init_imports_the_mail_sender_its_url_names_and_no_other(
    tmp_path: Path, mail_url: str | None, loaded: str
) -> None:
    mail = {} if mail_url is None else {"NIMBUS_MAIL_URL": mail_url}
    env = cli_env(
        tmp_path,
        AWS_LAMBDA_FUNCTION_NAME="nimbus-test-api",
        NIMBUS_PUBLIC_URL="https://app.example.com",
        **mail,
    )
    run = subprocess.run(
        [sys.executable, "-c", MAIL_PROBE, *SENDERS],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert run.stdout.strip() == loaded


UNUSED = ("webauthn", "cbor2", "OpenSSL", "pydantic_settings", "dotenv", "urllib3", "pydantic.v1")


def test_init_imports_none_of_what_it_does_without(tmp_path: Path) -> None:
    """py_webauthn (and its asn1 and OpenSSL parts) is imported by the first ceremony, not
    by a cold start; the settings need neither pydantic-settings nor, with no .env file,
    python-dotenv; AWS is called over http.client, not urllib3."""
    env = cli_env(
        tmp_path, AWS_LAMBDA_FUNCTION_NAME="nimbus-test-api", NIMBUS_PUBLIC_URL="https://a.example"
    )
    run = subprocess.run(
        [sys.executable, "-c", MAIL_PROBE, *UNUSED],
        env=env,
        cwd=tmp_path,  # no .env file
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert run.stdout.strip() == ""
