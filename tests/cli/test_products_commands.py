"""`nimbus seed products` and `nimbus credentials ...`, run as a user runs them."""

import re
import shlex
import subprocess
from pathlib import Path

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from nimbus.bootstrap import build
from tests.backends import BACKENDS, database_url
from tests.support import NIMBUS, cli_env, live_server, make_settings, run_cli

KEY_LINES = re.compile(
    r"\AAWS_ACCESS_KEY_ID=(NIMB[A-Z2-7]{16})\nAWS_SECRET_ACCESS_KEY=(\S{40})\n\Z"
)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def _signed_get(url: str, key_id: str, secret: str) -> httpx.Response:
    request = AWSRequest(method="GET", url=url)
    SigV4Auth(Credentials(key_id, secret), "execute-api", "us-east-1").add_auth(request)
    return httpx.get(url, headers=dict(request.headers), timeout=30)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_created_credential_signs_requests_for_the_seeded_products(
    data_dir: Path, tmp_path: Path, backend: str
) -> None:
    with database_url(backend, tmp_path) as url:
        env = {"NIMBUS_DATABASE_URL": url}
        seeded = run_cli(data_dir, "seed", "products", "--count", "130", env=env)
        assert seeded.returncode == 0, seeded.stderr
        assert seeded.stdout == "Added 130 products.\n"
        assert "Seeding products" in seeded.stderr

        created = run_cli(data_dir, "credentials", "create", "--name", "index page", env=env)
        assert created.returncode == 0, created.stderr
        match = KEY_LINES.match(created.stdout)
        assert match, created.stdout
        key_id, secret = match.groups()

        container = build(make_settings(data_dir, database_url=url))
        try:
            with live_server(container) as base:
                response = _signed_get(f"{base}/products?limit=100", key_id, secret)
                assert response.status_code == 200, response.text
                first = response.json()
                rest = _signed_get(
                    base + response.headers["Link"].split(">")[0][1:], key_id, secret
                )
                assert len(first) == 100
                assert len(rest.json()) == 30
                assert all(p["price"] > 0 and len(p["name"].split()) >= 3 for p in first)

                revoked = run_cli(data_dir, "credentials", "revoke", key_id, env=env)
                assert revoked.returncode == 0, revoked.stderr
                assert revoked.stdout == f"Revoked {key_id} (index page)\n"
                refused = _signed_get(f"{base}/products", key_id, secret)
                assert refused.status_code == 403
                assert refused.json()["code"] == "access_key_revoked"
        finally:
            container.close()


def test_the_secret_is_shown_once_and_not_stored_in_the_clear(data_dir: Path) -> None:
    created = run_cli(data_dir, "credentials", "create", "--name", "reporting")
    match = KEY_LINES.match(created.stdout)
    assert match, created.stdout
    key_id, secret = match.groups()
    listed = run_cli(data_dir, "credentials", "list")
    assert listed.returncode == 0
    assert re.search(rf"^{key_id}  \S+ \S+  active +reporting$", listed.stdout, re.MULTILINE)
    assert secret not in listed.stdout + listed.stderr
    for stored in data_dir.glob("nimbus.db*"):
        assert secret.encode() not in stored.read_bytes()


def test_export_lines_set_the_variables_in_a_shell(data_dir: Path) -> None:
    script = (
        f'eval "$({shlex.quote(NIMBUS)} credentials create --name "nightly report" --export)"; '
        'printf "%s\\n" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY"'
    )
    env = {k: v for k, v in cli_env(data_dir).items() if not k.startswith("AWS_")}
    shell = subprocess.run(
        ["bash", "-c", script], env=env, cwd=data_dir.parent,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert shell.returncode == 0, shell.stderr
    key_id, secret = shell.stdout.splitlines()
    assert re.fullmatch(r"NIMB[A-Z2-7]{16}", key_id)
    assert len(secret) == 40
    assert "the secret is not shown again" in shell.stderr
    listed = run_cli(data_dir, "credentials", "list").stdout
    assert re.search(rf"^{key_id} .* active +nightly report$", listed, re.MULTILINE)

    container = build(make_settings(data_dir))
    try:
        with live_server(container) as base:
            assert _signed_get(f"{base}/products", key_id, secret).status_code == 200
    finally:
        container.close()


def test_export_prints_one_shell_word_per_variable(data_dir: Path) -> None:
    created = run_cli(data_dir, "credentials", "create", "--name", "x", "--export")
    assert created.returncode == 0, created.stderr
    words = [shlex.split(line) for line in created.stdout.splitlines()]
    assert [(export, assignment.split("=")[0]) for export, assignment in words] == [
        ("export", "AWS_ACCESS_KEY_ID"),
        ("export", "AWS_SECRET_ACCESS_KEY"),
    ]


def test_list_marks_revoked_credentials(data_dir: Path) -> None:
    key_id = KEY_LINES.match(run_cli(data_dir, "credentials", "create", "--name", "a").stdout)
    assert key_id
    run_cli(data_dir, "credentials", "revoke", key_id.group(1))
    listed = run_cli(data_dir, "credentials", "list").stdout
    assert re.search(
        rf"^{key_id.group(1)} .* revoked \d{{4}}-\d\d-\d\d \d\d:\d\d +a$", listed, re.M
    )


def test_an_empty_list_says_how_to_make_one(data_dir: Path) -> None:
    listed = run_cli(data_dir, "credentials", "list")
    assert listed.returncode == 0
    assert listed.stdout == ""
    assert "nimbus credentials create --name NAME" in listed.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("credentials", "revoke", "NIMBAAAAAAAAAAAAAAAA"), "Error: Credential not found"),
        (("credentials", "create", "--name", ""), "Error: A credential name is"),
        (("credentials", "create", "--name", "x" * 101), "Error: A credential name is"),
        (("credentials", "create"), "Missing option '--name'"),
        (("seed", "products", "--count", "0"), "Invalid value for '--count'"),
        (("seed", "products", "--count", "many"), "Invalid value for '--count'"),
    ],
)
def test_bad_input_fails_in_one_line(data_dir: Path, args: tuple[str, ...], message: str) -> None:
    result = run_cli(data_dir, *args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
