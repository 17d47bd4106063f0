import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from nimbus.settings import Settings
from nimbus.storage import open_storage


def test_defaults_put_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(env_file=None, data_dir=tmp_path)
    assert settings.resolved_database_url == f"sqlite:///{tmp_path}/nimbus.db"
    assert settings.access_token_ttl == 900
    assert settings.refresh_token_ttl == 30 * 24 * 3600
    assert settings.allow_signup is True
    assert settings.region == "us-east-1"
    assert settings.cors_origins == ()


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NIMBUS_ALLOW_SIGNUP", "false")
    monkeypatch.setenv("NIMBUS_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("NIMBUS_ACCESS_TOKEN_TTL", "60")
    settings = Settings(env_file=None)
    assert settings.allow_signup is False
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.region == "eu-west-1"
    assert settings.access_token_ttl == 60


def test_nimbus_region_wins_over_aws_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("NIMBUS_REGION", "ap-south-1")
    assert Settings(env_file=None).region == "ap-south-1"


def test_a_dotenv_file_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("NIMBUS_DATABASE_URL=sqlite:///elsewhere.db\n")
    monkeypatch.chdir(tmp_path)
    assert Settings().resolved_database_url == "sqlite:///elsewhere.db"


def test_the_environment_wins_over_the_dotenv_file_and_names_are_read_in_any_case(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text(
        "# a comment\n"
        "export nimbus_token_issuer='from the file'\n"
        "NIMBUS_TOKEN_AUDIENCE=file\n"
        "NIMBUS_REGION=eu-north-1\n"
        "NIMBUS_METRICS_NAMESPACE\n"  # no value: unset
        "OTHER=ignored\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NIMBUS_TOKEN_AUDIENCE", "environment")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.delenv("NIMBUS_REGION", raising=False)
    settings = Settings(token_issuer="given")
    assert settings.token_audience == "environment"
    assert settings.token_issuer == "given"
    assert Settings().token_issuer == "from the file"
    assert settings.region == "eu-west-1"  # AWS_REGION in the environment, over the file
    assert settings.metrics_namespace == "nimbus"
    assert Settings(env_file=None).token_audience == "environment"
    assert Settings(env_file=None).token_issuer == "nimbus"


def test_a_refused_value_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NIMBUS_REGION", "")
    monkeypatch.setenv("NIMBUS_MAX_BODY_BYTES", "lots")
    with pytest.raises(ValidationError) as refused:
        Settings(env_file=None)
    [error] = refused.value.errors()
    assert error["loc"] == ("max_body_bytes",)
    assert "lots" not in str(refused.value)  # never repeated


def test_a_name_that_is_no_setting_is_refused_where_given_and_ignored_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NIMBUS_NO_SUCH_SETTING", "1")
    assert Settings(env_file=None).token_issuer == "nimbus"
    with pytest.raises(ValidationError) as refused:
        Settings(env_file=None, _env_file=None)  # a misspelling is not silently dropped
    [error] = refused.value.errors()
    assert error["type"] == "extra_forbidden"
    assert error["loc"] == ("_env_file",)


@pytest.mark.parametrize(
    ("name", "value"),
    [("NIMBUS_SECRET_KEY", "changeme"), ("NIMBUS_ACCESS_TOKEN_TTL", "0"),
     ("NIMBUS_ALLOW_SIGNUP", "perhaps")],
)  # fmt: skip
def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings(env_file=None)


def test_the_secret_key_never_shows_in_a_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NIMBUS_SECRET_KEY", "s" * 40)
    assert "s" * 40 not in repr(Settings(env_file=None))


def test_an_unknown_database_scheme_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unsupported database URL scheme 'mysql'"):
        open_storage("mysql://localhost/db")


def test_a_backend_whose_driver_is_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if nimbus[postgres] were not installed
    monkeypatch.delitem(sys.modules, "nimbus.storage.postgres", raising=False)
    with pytest.raises(ValueError, match=r"install nimbus-api\[postgres\]"):
        open_storage("postgresql://localhost/db")


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this OS")
def test_hashing_runs_on_as_many_threads_as_the_process_has_cpus(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pinned to one CPU (a container's cpuset, taskset), the default is one hash at a time,
    whatever the machine has."""
    cpu = min(os.sched_getaffinity(0))
    code = (
        f"import os; os.sched_setaffinity(0, {{{cpu}}}); from nimbus.settings import Settings; "
        "print(Settings(env_file=None).password_hash_concurrency)"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("NIMBUS_")}
    pinned = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert pinned.stdout.strip() == "1"
    monkeypatch.delenv("NIMBUS_PASSWORD_HASH_CONCURRENCY", raising=False)
    assert Settings(env_file=None).password_hash_concurrency == len(os.sched_getaffinity(0))
