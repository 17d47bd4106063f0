import base64
import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from nimbus.bootstrap import build
from nimbus.settings import Settings
from tests.support import PASSWORD, log_in, sign_up

CLAIMS = {
    "sub", "username", "role", "groups", "scope", "iat", "nbf", "exp", "jti", "iss", "aud", "sid"
}  # fmt: skip


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * 4))
    return decoded


def test_login_returns_the_token_body_with_every_claim(client: httpx.Client) -> None:
    user = sign_up(client, "alice")
    response = client.post("/login", json={"username": "alice", "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token"] == body["access_token"]
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    claims = _claims(body["access_token"])
    assert set(claims) == CLAIMS
    assert claims["sub"] == user["id"]
    assert claims["username"] == "alice"
    assert claims["role"] == "user"
    assert claims["groups"] == ["users"]
    assert claims["exp"] - claims["iat"] == 900
    assert abs(claims["iat"] - time.time()) < 60
    assert (claims["iss"], claims["aud"]) == ("nimbus", "nimbus")


def test_login_accepts_the_email_instead_of_the_username(client: httpx.Client) -> None:
    sign_up(client, "alice", email="alice@example.com")
    response = client.post("/login", json={"email": "ALICE@example.com", "password": PASSWORD})
    assert response.status_code == 200


def test_login_accepts_any_case_of_the_username(client: httpx.Client) -> None:
    sign_up(client, "Alice")
    assert log_in(client, "alice")


def test_login_gives_one_answer_for_unknown_user_and_wrong_password(
    client: httpx.Client,
) -> None:
    sign_up(client, "alice")
    wrong = client.post("/login", json={"username": "alice", "password": "wrong password"})
    unknown = client.post("/login", json={"username": "nobody", "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert (
        wrong.json()
        == unknown.json()
        == {
            "message": "Invalid username or password",
            "code": "invalid_credentials",
        }
    )


def test_login_records_last_login(client: httpx.Client, settings: Settings) -> None:
    sign_up(client, "alice")
    before = datetime.now(UTC)
    log_in(client, "alice")
    container = build(settings)
    try:
        last_login = container.users.get_by_username("alice").last_login
    finally:
        container.close()
    assert last_login is not None
    assert last_login >= before


@pytest.mark.store_independent
@pytest.mark.parametrize(
    "body",
    [
        {"password": PASSWORD},
        {"username": "alice", "email": "a@example.com", "password": PASSWORD},
        {"username": "alice"},
        {"username": "alice", "password": ""},
        {"username": "alice", "password": PASSWORD, "extra": 1},
    ],
)
def test_login_rejects_malformed_bodies(client: httpx.Client, body: dict[str, Any]) -> None:
    response = client.post("/login", json=body)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert PASSWORD not in response.text


def test_a_nul_character_in_a_login_name_is_a_client_error(client: httpx.Client) -> None:
    for field in ("username", "email"):
        response = client.post("/login", json={field: "ali\x00ce", "password": "whatever1"})
        assert 400 <= response.status_code < 500, response.text
