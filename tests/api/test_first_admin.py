"""The first administrator from the environment (NIMBUS_FIRST_ADMIN_*): its settings, made once
at start on every backend, an existing account left alone, two starts racing, the password
from SSM, and `nimbus serve` doing it before it listens."""

import logging
import re
import threading
import uuid
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from pydantic import SecretStr, ValidationError

from nimbus.bootstrap import build
from nimbus.domain.users import Role
from nimbus.settings import Settings
from tests.backends import dynamodb_endpoint
from tests.support import PASSWORD, live_server, make_settings, nimbus_serve, run_cli

ADMIN_PASSWORD = "the first admin's own passphrase"


def _first(settings: Settings, username: str = "root", **extra: Any) -> Settings:
    update = {"first_admin_username": username, "first_admin_password": SecretStr(ADMIN_PASSWORD)}
    return settings.model_copy(update=update | extra)


def _log_in(settings: Settings, username: str, password: str) -> int:
    container = build(settings)
    try:
        with live_server(container) as url:
            login = {"username": username, "password": password}
            return httpx.post(f"{url}/login", json=login, timeout=30).status_code
    finally:
        container.close()


# --- settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"first_admin_username": "root"},
            "NIMBUS_FIRST_ADMIN_PASSWORD is required with NIMBUS_FIRST_ADMIN_USERNAME",
        ),
        (
            {"first_admin_password": ADMIN_PASSWORD},
            "NIMBUS_FIRST_ADMIN_USERNAME is required with NIMBUS_FIRST_ADMIN_PASSWORD",
        ),
        (
            {"first_admin_email": "root@example.com"},
            "NIMBUS_FIRST_ADMIN_USERNAME is required with NIMBUS_FIRST_ADMIN_EMAIL",
        ),
        (
            {"first_admin_username": "root", "first_admin_password": "short"},
            "NIMBUS_FIRST_ADMIN_PASSWORD must be 8 to 1024 characters",
        ),
        (
            {"first_admin_username": "root", "first_admin_password": ADMIN_PASSWORD,
             "password_min_length": 40},
            "NIMBUS_FIRST_ADMIN_PASSWORD must be 40 to 1024 characters",
        ),
        (
            {"first_admin_username": "two words", "first_admin_password": ADMIN_PASSWORD},
            "must be 1-64 letters, digits or _.@+-",
        ),
        (
            {"first_admin_username": "root", "first_admin_password": ADMIN_PASSWORD,
             "first_admin_email": "not an address"},
            "must be an email address",
        ),
    ],
)  # fmt: skip
def test_the_settings_come_both_or_neither_and_well_formed(
    tmp_path: Path, env: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        make_settings(tmp_path, **env)
    assert message in str(refused.value)
    assert ADMIN_PASSWORD not in str(refused.value)


def test_empty_settings_are_unset_and_an_email_is_lowercased(tmp_path: Path) -> None:
    empty = make_settings(
        tmp_path, first_admin_username="", first_admin_password="", first_admin_email=""
    )
    assert (empty.first_admin_username, empty.first_admin_password) == (None, None)
    full = make_settings(
        tmp_path,
        first_admin_username="root",
        first_admin_password=ADMIN_PASSWORD,
        first_admin_email=" Root@Example.COM ",
    )
    assert full.first_admin_email == "root@example.com"
    assert ADMIN_PASSWORD not in repr(full)
    # An SSM reference is read when the account is made: its length says nothing yet.
    ssm = make_settings(tmp_path, first_admin_username="root", first_admin_password="ssm:/x")
    assert ssm.first_admin_password is not None


def test_a_half_setting_stops_the_command_line_in_one_line(tmp_path: Path) -> None:
    result = run_cli(
        tmp_path / "data", "users", "list", env={"NIMBUS_FIRST_ADMIN_PASSWORD": ADMIN_PASSWORD}
    )
    assert result.returncode == 2
    assert result.stderr == (
        "Error: NIMBUS_FIRST_ADMIN_USERNAME: is required with NIMBUS_FIRST_ADMIN_PASSWORD\n"
    )


# --- at start ------------------------------------------------------------------------------------


def test_a_start_makes_it_once_and_later_starts_leave_it(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    configured = _first(settings, first_admin_email="root@example.com")
    with caplog.at_level(logging.INFO, logger="nimbus.bootstrap"):
        container = build(configured)
    root = container.users.get_by_username("root")
    assert (root.role, root.email, root.email_verified) == (Role.ADMIN, "root@example.com", True)
    created = container.audit.list_all(limit=50).items
    assert [(e.kind.value, e.actor, e.detail) for e in created] == [
        ("user.created", None, {"username": "root", "role": "admin"})
    ]
    container.close()

    with caplog.at_level(logging.INFO, logger="nimbus.bootstrap"):
        again = build(configured)
    assert again.users.get_by_username("root").id == root.id
    assert len(again.audit.list_all(limit=50).items) == 1
    again.close()
    assert [r.getMessage() for r in caplog.records if r.name == "nimbus.bootstrap"] == [
        f"First administrator root made ({root.id}), from NIMBUS_FIRST_ADMIN_*",
        "First administrator root exists; left as it is",
    ]
    assert ADMIN_PASSWORD not in caplog.text
    assert _log_in(configured, "root", ADMIN_PASSWORD) == 200


def test_an_existing_account_keeps_its_password_and_role(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    container = build(settings)
    container.users.create(username="Root", password=PASSWORD)
    container.close()
    with caplog.at_level(logging.INFO, logger="nimbus.bootstrap"):
        again = build(_first(settings))  # the same name, whatever its case
    root = again.users.get_by_username("root")
    again.close()
    assert root.role is Role.USER
    assert _log_in(settings, "root", PASSWORD) == 200
    assert _log_in(settings, "root", ADMIN_PASSWORD) == 401
    (record,) = [r for r in caplog.records if r.name == "nimbus.bootstrap"]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "NIMBUS_FIRST_ADMIN_USERNAME names root, an account that is not an administrator;"
        " left as it is"
    )


def test_an_administrator_changed_since_is_not_reset(settings: Settings) -> None:
    configured = _first(settings)
    container = build(configured)
    container.users.set_password("root", PASSWORD)
    container.close()
    build(configured).close()
    assert _log_in(settings, "root", PASSWORD) == 200
    assert _log_in(settings, "root", ADMIN_PASSWORD) == 401


def test_two_starts_racing_make_one_administrator(settings: Settings) -> None:
    build(settings).close()  # the schema, before either start
    first, second = build(settings), build(settings)
    # Each start has looked and found no account before either makes one.
    both_looked = threading.Barrier(2, timeout=30)

    def password() -> str:
        both_looked.wait()
        return ADMIN_PASSWORD

    outcomes: list[tuple[str, bool]] = []
    failures: list[BaseException] = []

    def start(container: Any) -> None:
        try:
            user, made = container.users.ensure_admin("root", password)
            outcomes.append((user.id, made))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=start, args=(c,)) for c in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert sorted(made for _, made in outcomes) == [False, True]
    assert len({user_id for user_id, _ in outcomes}) == 1
    users = first.users.list_all(limit=10, cursor=None).items
    assert [(u.username, u.role) for u in users] == [("root", Role.ADMIN)]
    kinds = [e.kind.value for e in first.audit.list_all(limit=10).items]
    assert kinds == ["user.created"]
    first.close()
    second.close()


@pytest.mark.store_independent
@pytest.mark.parametrize(
    ("username", "password", "email", "message"),
    [
        ("root", "nimbus-2024", None, "NIMBUS_FIRST_ADMIN_PASSWORD: That password is too common"),
        ("root", ADMIN_PASSWORD, "taken@example.com",
         "NIMBUS_FIRST_ADMIN_EMAIL: That email is already registered"),
        # A username equal to another account's email would name that account at login.
        ("taken@example.com", ADMIN_PASSWORD, None,
         "NIMBUS_FIRST_ADMIN_USERNAME: That username is taken"),
    ],
)  # fmt: skip
def test_an_administrator_that_cannot_be_made_stops_the_start(
    settings: Settings, username: str, password: str, email: str | None, message: str
) -> None:
    container = build(settings)
    container.users.create(username="alice", password=PASSWORD, email="taken@example.com")
    container.close()
    configured = _first(
        settings, username, first_admin_password=SecretStr(password), first_admin_email=email
    )
    with pytest.raises(ValueError, match=r"^NIMBUS_FIRST_ADMIN_") as refused:
        build(configured)
    assert message in str(refused.value)
    assert password not in str(refused.value)
    check = build(settings)
    assert check.users.list_all(limit=10, cursor=None).items[0].username == "alice"
    assert len(check.users.list_all(limit=10, cursor=None).items) == 1
    check.close()


def test_a_refused_first_administrator_is_one_line_at_the_command_line(tmp_path: Path) -> None:
    env = {"NIMBUS_FIRST_ADMIN_USERNAME": "root", "NIMBUS_FIRST_ADMIN_PASSWORD": "nimbus-2024"}
    result = run_cli(tmp_path / "data", "users", "list", env=env)
    assert result.returncode == 1
    assert result.stderr == (
        "Error: configuration: NIMBUS_FIRST_ADMIN_PASSWORD: That password is too common;"
        " choose another\n"
    )


# --- the password in SSM -------------------------------------------------------------------------


@pytest.fixture
def ssm_endpoint(monkeypatch: pytest.MonkeyPatch) -> str:
    endpoint = dynamodb_endpoint()  # moto's server answers SSM too
    # Its first SSM call loads the service's backend, which takes longer than nimbus waits.
    boto3.client("ssm", endpoint_url=endpoint, region_name="us-east-1").describe_parameters()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", endpoint)
    return endpoint


def test_the_password_is_read_from_ssm_only_to_make_the_account(
    tmp_path: Path, ssm_endpoint: str
) -> None:
    parameter = f"/nimbus-test/{uuid.uuid4().hex}/first-admin-password"
    settings = make_settings(
        tmp_path / "data", first_admin_username="root", first_admin_password=f"ssm:{parameter}"
    )
    with pytest.raises(ValueError, match=re.escape(f"SSM parameter {parameter} does not exist")):
        build(settings)
    ssm = boto3.client("ssm", endpoint_url=ssm_endpoint, region_name="us-east-1")
    ssm.put_parameter(Name=parameter, Value=ADMIN_PASSWORD, Type="SecureString")
    build(settings).close()
    assert _log_in(settings, "root", ADMIN_PASSWORD) == 200
    # Once the account exists, the parameter is not needed: a start reads nothing from SSM.
    ssm.delete_parameter(Name=parameter)
    build(settings).close()


# --- nimbus serve --------------------------------------------------------------------------------


def test_nimbus_serve_makes_it_before_it_listens(tmp_path: Path) -> None:
    with nimbus_serve(
        tmp_path / "data",
        "--workers",
        "2",
        NIMBUS_FIRST_ADMIN_USERNAME="root",
        NIMBUS_FIRST_ADMIN_PASSWORD=ADMIN_PASSWORD,
    ) as served:
        login = httpx.post(
            f"{served.url}/login", json={"username": "root", "password": ADMIN_PASSWORD}
        )
        assert login.status_code == 200
        token = login.json()["access_token"]
        users = httpx.get(f"{served.url}/users", headers={"Authorization": f"Bearer {token}"})
        assert [u["username"] for u in users.json()] == ["root"]
    messages = [record.get("message", "") for record in served.records()]
    assert sum(m.startswith("First administrator root made") for m in messages) == 1
    assert ADMIN_PASSWORD not in served.log
