import os
import pty
import re
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from tests.backends import BACKENDS, database_url, dynamodb_endpoint
from tests.cli.terminal import terminal
from tests.support import NIMBUS, PASSWORD, cli_env, run_cli


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def test_users_create_reads_a_piped_password(data_dir: Path) -> None:
    result = run_cli(
        data_dir, "users", "create", "--username", "alice", "--email", "A@example.com",
        "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Created user alice (")


def test_users_create_admin_makes_an_administrator(data_dir: Path) -> None:
    result = run_cli(
        data_dir, "users", "create", "--username", "root", "--admin", "--password-stdin",
        stdin=PASSWORD,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Created admin root" in result.stdout
    assert "role : admin" in run_cli(data_dir, "users", "get", "root").stdout


def test_users_get_shows_the_record_but_never_the_hash(data_dir: Path) -> None:
    run_cli(data_dir, "users", "create", "--username", "alice", "--password-stdin", stdin=PASSWORD)
    result = run_cli(data_dir, "users", "get", "alice")
    assert result.returncode == 0
    assert "Entry for user: alice" in result.stdout
    assert "password : argon2id v=19 m=19456,t=2,p=1" in result.stdout
    assert "last_login : never" in result.stdout
    assert "$argon2id$" not in result.stdout


def test_users_test_password_says_whether_it_matches(data_dir: Path) -> None:
    run_cli(data_dir, "users", "create", "--username", "alice", "--password-stdin", stdin=PASSWORD)
    good = run_cli(data_dir, "users", "test-password", "--username", "alice", "--password-stdin",
                   stdin=PASSWORD)  # fmt: skip
    bad = run_cli(data_dir, "users", "test-password", "--username", "alice", "--password-stdin",
                  stdin="wrong password")  # fmt: skip
    assert (good.returncode, good.stdout) == (0, "Password verified.\n")
    assert bad.returncode == 1
    assert bad.stderr == "Error: Password verification failed.\n"


def test_users_list_prints_every_user(data_dir: Path) -> None:
    for name in ("alice", "bob"):
        run_cli(data_dir, "users", "create", "--username", name, "--password-stdin", stdin=PASSWORD)
    lines = run_cli(data_dir, "users", "list").stdout.splitlines()
    assert [line.split()[-1] for line in lines] == ["alice", "bob"]


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["--username", "bad name"], PASSWORD, "username"),
        (["--username", "alice", "--email", "nope"], PASSWORD, "email"),
        (["--username", "alice"], "short", "password"),
        (["--username", "alice"], "", "no password"),
        (["--username", "alice"], "Password123", "That password is too common; choose another"),
        (["--username", "alice.smith"], "ALICE.SMITH", "not your username or email"),
    ],
)
def test_users_create_rejects_bad_input_in_one_line(
    data_dir: Path, args: list[str], stdin: str, message: str
) -> None:
    result = run_cli(data_dir, "users", "create", *args, "--password-stdin", stdin=stdin)
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_users_create_refuses_a_duplicate(data_dir: Path) -> None:
    run_cli(data_dir, "users", "create", "--username", "alice", "--password-stdin", stdin=PASSWORD)
    again = run_cli(
        data_dir, "users", "create", "--username", "ALICE", "--password-stdin", stdin=PASSWORD
    )
    assert again.returncode == 1
    assert again.stderr == "Error: That username is taken\n"


def test_users_get_of_an_unknown_user_fails_cleanly(data_dir: Path) -> None:
    result = run_cli(data_dir, "users", "get", "nobody")
    assert result.returncode == 1
    assert result.stderr == "Error: No user named 'nobody'\n"


def test_a_password_without_a_terminal_or_stdin_flag_is_refused(data_dir: Path) -> None:
    result = run_cli(data_dir, "users", "create", "--username", "alice", stdin=PASSWORD)
    assert result.returncode == 1
    assert "--password-stdin" in result.stderr


def test_users_create_prompts_on_a_terminal(data_dir: Path) -> None:
    """The seed's interactive flow: Username, Password and its confirmation at prompts."""
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [NIMBUS, "users", "create"],
        stdin=secondary, stdout=secondary, stderr=secondary, env=cli_env(data_dir), close_fds=True,
    )  # fmt: skip
    os.close(secondary)
    output = b""
    try:
        for prompt, answer in [
            (b"Username:", "alice"),
            (b"Password:", PASSWORD),
            (b"Repeat for confirmation:", PASSWORD),
        ]:
            output = _read_until(primary, prompt, output)
            os.write(primary, answer.encode() + b"\n")
        output = _read_until(primary, b"Created user alice", output)
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
        os.close(primary)
    assert PASSWORD.encode() not in output  # hidden input is not echoed


def _read_until(fd: int, expected: bytes, seen: bytes) -> bytes:
    deadline = time.monotonic() + 30
    while expected not in seen:
        if time.monotonic() > deadline:
            raise AssertionError(f"no {expected!r} in {seen!r}")
        try:
            seen += os.read(fd, 1024)
        except OSError:
            break
    return seen


@pytest.mark.parametrize("backend", BACKENDS)
def test_resources_create_and_cleanup(data_dir: Path, tmp_path: Path, backend: str) -> None:
    with database_url(backend, tmp_path) as url:
        env = {"NIMBUS_DATABASE_URL": url}
        created = run_cli(data_dir, "resources", "create", env=env)
        assert created.returncode == 0, created.stderr
        assert re.search(r"^Table ready: \S*users ", created.stdout, re.MULTILINE)
        assert (data_dir / "secret.key").exists()
        run_cli(data_dir, "users", "create", "--username", "alice", "--password-stdin",
                stdin=PASSWORD, env=env)  # fmt: skip
        again = run_cli(data_dir, "resources", "create", env=env)
        assert again.returncode == 0  # idempotent, and keeps the data
        assert run_cli(data_dir, "users", "get", "alice", env=env).returncode == 0

        cleaned = run_cli(data_dir, "resources", "create", "--cleanup", "--yes", env=env)
        assert cleaned.returncode == 0, cleaned.stderr
        assert re.search(r"^Deleting table: \S*todos ", cleaned.stdout, re.MULTILINE)
        assert "Resources deleted." in cleaned.stdout
        assert not (data_dir / "secret.key").exists()
        assert run_cli(data_dir, "users", "get", "alice", env=env).returncode == 1


def test_resources_create_keeps_the_key_in_ssm_for_dynamodb(data_dir: Path, tmp_path: Path) -> None:
    """Seed 000's create-resources.py: tables plus an SSM SecureString, and --cleanup."""
    with database_url("dynamodb", tmp_path) as url:
        parameter = f"/nimbus-test/{uuid.uuid4().hex}/auth-key"
        env = {
            "NIMBUS_DATABASE_URL": url,
            "NIMBUS_SECRET_KEY": f"ssm:{parameter}",
            "AWS_ENDPOINT_URL_SSM": dynamodb_endpoint(),
        }
        missing = run_cli(data_dir, "users", "list", env=env)
        assert missing.returncode == 1
        assert "run nimbus resources create" in missing.stderr

        created = run_cli(data_dir, "resources", "create", env=env)
        assert created.returncode == 0, created.stderr
        assert f"Created SSM param: {parameter} (SecureString)" in created.stdout
        assert not (data_dir / "secret.key").exists()
        again = run_cli(data_dir, "resources", "create", env=env)
        assert f"SSM param ready: {parameter}" in again.stdout

        run_cli(data_dir, "users", "create", "--username", "alice", "--password-stdin",
                stdin=PASSWORD, env=env)  # fmt: skip
        assert "Password verified." in run_cli(
            data_dir, "users", "test-password", "--username", "alice", "--password-stdin",
            stdin=PASSWORD, env=env,
        ).stdout  # fmt: skip

        cleaned = run_cli(data_dir, "resources", "create", "--cleanup", "--yes", env=env)
        assert cleaned.returncode == 0, cleaned.stderr
        assert f"Deleting SSM param: {parameter}" in cleaned.stdout


def test_resources_create_key_only_leaves_the_tables_to_the_template(
    data_dir: Path, tmp_path: Path
) -> None:
    """Before `sam deploy`: the SSM key only, since CloudFormation owns the tables."""
    with database_url("dynamodb", tmp_path) as url:
        parameter = f"/nimbus-test/{uuid.uuid4().hex}/secret-key"
        env = {
            "NIMBUS_DATABASE_URL": url,
            "NIMBUS_SECRET_KEY": f"ssm:{parameter}",
            "AWS_ENDPOINT_URL_SSM": dynamodb_endpoint(),
        }
        created = run_cli(data_dir, "resources", "create", "--key-only", env=env)
        assert created.returncode == 0, created.stderr
        assert f"Created SSM param: {parameter} (SecureString)" in created.stdout
        assert "Table" not in created.stdout
        dynamodb = boto3.client("dynamodb", endpoint_url=dynamodb_endpoint())
        prefix = parse_qs(urlsplit(url).query)["table_prefix"][0]
        assert not [t for t in dynamodb.list_tables()["TableNames"] if t.startswith(prefix)]
        cleaned = run_cli(
            data_dir, "resources", "create", "--cleanup", "--key-only", "--yes", env=env
        )
        assert f"Deleting SSM param: {parameter}" in cleaned.stdout
        assert "Table" not in cleaned.stdout


def test_a_taken_username_is_refused_before_the_password_prompt(data_dir: Path) -> None:
    run_cli(data_dir, "users", "create", "--username", "alice", "--password-stdin", stdin=PASSWORD)
    with terminal(data_dir, "users", "create", "--username", "Alice") as screen:
        assert screen.finish() == 1
    assert screen.screen.strip() == "Error: That username is taken"
    assert "Password" not in screen.screen


def test_a_taken_username_is_refused_before_the_piped_password_is_read(data_dir: Path) -> None:
    run_cli(data_dir, "users", "create", "--username", "alice", "--password-stdin", stdin=PASSWORD)
    again = run_cli(data_dir, "users", "create", "--username", "alice", "--password-stdin")
    assert again.returncode == 1
    assert again.stderr == "Error: That username is taken\n"  # not "no password on standard input"


def test_a_registered_email_is_refused_before_the_password_prompt(data_dir: Path) -> None:
    run_cli(data_dir, "users", "create", "--username", "alice", "--email", "a@example.com",
            "--password-stdin", stdin=PASSWORD)  # fmt: skip
    with terminal(
        data_dir, "users", "create", "--username", "bob", "--email", "A@example.com"
    ) as screen:
        assert screen.finish() == 1
    assert screen.screen.strip() == "Error: That email is already registered"
