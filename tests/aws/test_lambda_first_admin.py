"""The first administrator (NIMBUS_FIRST_ADMIN_*) on Lambda: init makes no network call, so the
handler sees to it before the first request of each execution environment, once; a refusal
that another try cannot mend is logged once, an unreachable store or SSM is tried again."""

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from pydantic import SecretStr

from nimbus.bootstrap import build
from nimbus.entrypoints.aws_lambda import make_handler
from nimbus.settings import Settings
from tests.aws.events import LambdaTransport
from tests.backends import database_url, dynamodb_endpoint
from tests.support import free_port, make_settings

ADMIN_PASSWORD = "the first admin's own passphrase"
LOGGERS = ("nimbus.bootstrap", "nimbus.entrypoints.aws_lambda")


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    with database_url("dynamodb", tmp_path) as url:
        settings = make_settings(tmp_path / "data", database_url=url)
        build(settings).close()  # the tables, as the template makes them
        yield settings.model_copy(
            update={
                "first_admin_username": "root",
                "first_admin_password": SecretStr(ADMIN_PASSWORD),
            }
        )


def _usernames(settings: Settings) -> list[str]:
    plain = settings.model_copy(update={"first_admin_username": None, "first_admin_password": None})
    container = build(plain)
    try:
        return [user.username for user in container.users.list_all(limit=10, cursor=None).items]
    finally:
        container.close()


def _client(settings: Settings) -> httpx.Client:
    transport = LambdaTransport(make_handler(settings), payload="2.0", stage="$default")
    return httpx.Client(transport=transport, base_url="https://api.example.com")


def _records(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name in LOGGERS]


def test_the_first_request_makes_it_and_the_handler_build_does_not(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    handler = make_handler(settings)
    assert handler({"warmer": True}, None) == {"warm": True}
    assert _usernames(settings) == []  # neither the build nor a warm-up asked the store
    transport = LambdaTransport(handler, payload="2.0", stage="$default")
    with (
        caplog.at_level(logging.INFO),
        httpx.Client(transport=transport, base_url="https://api.example.com") as client,
    ):
        login = client.post("/login", json={"username": "root", "password": ADMIN_PASSWORD})
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]
        users = client.get("/users", headers={"Authorization": f"Bearer {token}"})
        assert [(u["username"], u["role"]) for u in users.json()] == [("root", "admin")]
    (made,) = _records(caplog)
    assert made[0] == logging.INFO
    assert made[1].startswith("First administrator root made (")
    assert ADMIN_PASSWORD not in caplog.text


def test_each_environment_finds_the_one_made_before(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with _client(settings) as first:
        assert first.get("/health").status_code == 200
    with caplog.at_level(logging.INFO), _client(settings) as second:
        assert second.get("/health").status_code == 200
        assert second.get("/health").status_code == 200  # settled: no second look
    assert _records(caplog) == [(logging.INFO, "First administrator root exists; left as it is")]
    assert _usernames(settings) == ["root"]


def test_a_refusal_is_logged_once_and_the_requests_go_on(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    common = settings.model_copy(update={"first_admin_password": SecretStr("nimbus-2024")})
    with caplog.at_level(logging.INFO), _client(common) as client:
        for _ in range(3):
            assert client.get("/health").status_code == 200
    assert _records(caplog) == [
        (
            logging.ERROR,
            "First administrator not provided: NIMBUS_FIRST_ADMIN_PASSWORD: That password is"
            " too common; choose another",
        )
    ]
    assert _usernames(settings) == []


def test_an_unreachable_ssm_is_tried_again_at_the_next_request(
    settings: Settings, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    parameter = f"/nimbus-test/{uuid.uuid4().hex}/first-admin-password"
    in_ssm = settings.model_copy(update={"first_admin_password": SecretStr(f"ssm:{parameter}")})
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", f"http://127.0.0.1:{free_port()}")  # nothing there
    with caplog.at_level(logging.INFO), _client(in_ssm) as client:
        assert client.get("/health").status_code == 200
        assert _usernames(settings) == []
        endpoint = dynamodb_endpoint()  # moto's server answers SSM too
        ssm = boto3.client("ssm", endpoint_url=endpoint, region_name=settings.region)
        ssm.put_parameter(Name=parameter, Value=ADMIN_PASSWORD, Type="SecureString")
        monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", endpoint)
        login = client.post("/login", json={"username": "root", "password": ADMIN_PASSWORD})
        assert login.status_code == 200, login.text
    (unreachable, made) = _records(caplog)
    assert unreachable[0] == logging.ERROR
    assert unreachable[1].startswith(
        f"First administrator not provided yet: SSM parameter {parameter}"
    )
    assert made[1].startswith("First administrator root made (")
    assert ADMIN_PASSWORD not in caplog.text
