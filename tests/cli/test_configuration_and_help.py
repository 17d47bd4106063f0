"""Bad NIMBUS_* settings in plain words, for every command; -h as --help everywhere."""

from pathlib import Path

import pytest

from tests.support import PASSWORD, free_port, run_cli

COMMANDS = [
    ("users", "list"),
    ("users", "create", "--username", "alice", "--password-stdin"),
    ("credentials", "create", "--name", "x"),
    ("resources", "create"),
    ("seed", "products", "--count", "1"),
    ("openapi",),
]

BAD_SETTINGS = [
    ({"NIMBUS_SECRET_KEY": "too-short-a-secret"}, "NIMBUS_SECRET_KEY: must be at least 32 bytes"),
    (
        {"NIMBUS_ACCESS_TOKEN_TTL": "abc"},
        "NIMBUS_ACCESS_TOKEN_TTL: must be an integer, got 'abc'",
    ),
    (
        {"NIMBUS_DATABASE_URL": "mysql://localhost/nimbus"},
        "NIMBUS_DATABASE_URL: unsupported database URL scheme 'mysql' "
        "(expected sqlite://, postgresql://, postgres://, dynamodb://)",
    ),
    (
        {"NIMBUS_FORWARDED_ALLOW_IPS": "10.0.0.0/8, proxy.local"},
        "NIMBUS_FORWARDED_ALLOW_IPS: 'proxy.local' is not an IP address or network",
    ),
    (
        {"NIMBUS_ALLOW_SIGNUP": "perhaps"},
        "NIMBUS_ALLOW_SIGNUP: must be true or false, got 'perhaps'",
    ),
    (
        {"NIMBUS_DATABASE_TIMEOUT": "600"},
        "NIMBUS_DATABASE_TIMEOUT: must be at most 60, got '600'",
    ),
    (
        {"NIMBUS_REFRESH_TOKEN_TTL": "0"},
        "NIMBUS_REFRESH_TOKEN_TTL: must be greater than 0, got '0'",
    ),
    (
        {"NIMBUS_OIDC_ISSUER": "https://id.example"},
        "NIMBUS_OIDC_AUDIENCE: is required with NIMBUS_OIDC_ISSUER",
    ),
]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.mark.parametrize(
    ("env", "line"), BAD_SETTINGS, ids=[next(iter(e)) for e, _ in BAD_SETTINGS]
)
def test_a_bad_setting_stops_serve_in_one_plain_line(
    data_dir: Path, env: dict[str, str], line: str
) -> None:
    result = run_cli(data_dir, "serve", "--port", str(free_port()), env=env)
    assert (result.returncode, result.stderr, result.stdout) == (2, f"Error: {line}\n", "")
    assert not data_dir.exists()  # stopped before anything was made


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
@pytest.mark.parametrize(("env", "line"), [BAD_SETTINGS[0], BAD_SETTINGS[2]], ids=["key", "url"])
def test_every_command_names_a_bad_setting(
    data_dir: Path, args: tuple[str, ...], env: dict[str, str], line: str
) -> None:
    result = run_cli(data_dir, *args, env=env, stdin=PASSWORD)
    assert (result.returncode, result.stderr, result.stdout) == (2, f"Error: {line}\n", "")
    assert not data_dir.exists()


def test_every_problem_gets_a_line_of_its_own(data_dir: Path) -> None:
    env = {
        "NIMBUS_SECRET_KEY": "short secret",
        "NIMBUS_ACCESS_TOKEN_TTL": "15m",
        "NIMBUS_MAX_BODY_BYTES": "-1",
    }
    result = run_cli(data_dir, "serve", "--port", str(free_port()), env=env)
    assert result.returncode == 2
    assert sorted(result.stderr.splitlines()) == [
        "Error: NIMBUS_ACCESS_TOKEN_TTL: must be an integer, got '15m'",
        "Error: NIMBUS_MAX_BODY_BYTES: must be greater than 0, got '-1'",
        "Error: NIMBUS_SECRET_KEY: must be at least 32 bytes",
    ]
    assert "short secret" not in result.stderr  # a secret is never repeated


def test_a_bad_setting_in_a_dotenv_file_is_named_too(data_dir: Path) -> None:
    (data_dir.parent / ".env").write_text("NIMBUS_LOGIN_FAILURE_WINDOW=soon\n")
    result = run_cli(data_dir, "users", "list")
    assert result.returncode == 2
    assert result.stderr == "Error: NIMBUS_LOGIN_FAILURE_WINDOW: must be an integer, got 'soon'\n"


def test_the_exit_status_is_documented(data_dir: Path) -> None:
    shown = run_cli(data_dir, "--help").stdout
    assert "2 on a usage error or an invalid NIMBUS_* setting" in " ".join(shown.split())


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("serve",),
        ("users",),
        ("users", "create"),
        ("resources", "create"),
        ("credentials", "create"),
        ("openapi",),
    ],
    ids=lambda args: " ".join(args) or "nimbus",
)
def test_dash_h_is_help(data_dir: Path, args: tuple[str, ...]) -> None:
    short = run_cli(data_dir, *args, "-h")
    assert short.returncode == 0, short.stderr
    assert short.stdout.startswith(f"Usage: nimbus {' '.join(args)}".rstrip() + " ")
    assert "-h, --help" in short.stdout
    assert short.stdout == run_cli(data_dir, *args, "--help").stdout
    assert not data_dir.exists()  # help makes nothing and prompts for nothing
