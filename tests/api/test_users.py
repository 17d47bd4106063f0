from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import PASSWORD, make_settings, serve, sign_up


def test_sign_up_returns_the_user_without_password_or_hash(client: httpx.Client) -> None:
    response = client.post(
        "/users",
        json={"username": "alice", "password": PASSWORD, "email": "Alice@Example.COM", "name": "A"},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["username"] == "alice"
    assert body["email"] == "alice@example.com"
    assert body["role"] == "user"
    assert body["last_login"] is None
    assert set(body) == {
        "id", "username", "email", "name", "role", "created_at", "updated_at", "last_login",
        "email_verified", "disabled",
    }  # fmt: skip
    assert (body["email_verified"], body["disabled"]) == (False, False)
    assert PASSWORD not in response.text
    assert "argon2" not in response.text


def test_sign_up_refuses_a_taken_username_whatever_its_case(client: httpx.Client) -> None:
    sign_up(client, "alice")
    response = client.post("/users", json={"username": "ALICE", "password": PASSWORD})
    assert response.status_code == 409
    assert response.json() == {"message": "That username is taken", "code": "conflict"}


def test_sign_up_refuses_a_taken_email(client: httpx.Client) -> None:
    sign_up(client, "alice", email="a@example.com")
    response = client.post(
        "/users", json={"username": "bob", "password": PASSWORD, "email": "A@example.com"}
    )
    assert response.status_code == 409
    assert response.json()["message"] == "That email is already registered"


@pytest.mark.store_independent
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "bad name", "password": PASSWORD}, "body.username"),
        ({"username": "", "password": PASSWORD}, "body.username"),
        ({"username": "a" * 65, "password": PASSWORD}, "body.username"),
        ({"username": "alice", "password": "short"}, "body.password"),
        ({"username": "alice", "password": PASSWORD, "email": "not-an-email"}, "body.email"),
        ({"username": "alice", "password": PASSWORD, "role": "admin"}, "body.role"),
        ({"password": PASSWORD}, "body.username"),
    ],
)
def test_sign_up_rejects_bad_fields_by_name(
    client: httpx.Client, body: dict[str, str], field: str
) -> None:
    response = client.post("/users", json=body)
    assert response.status_code == 422
    error = response.json()
    assert error["code"] == "validation_error"
    assert field in [item["field"] for item in error["errors"]]
    assert PASSWORD not in response.text


@pytest.mark.store_independent
def test_sign_up_rejected_input_creates_nobody(client: httpx.Client) -> None:
    client.post("/users", json={"username": "alice", "password": PASSWORD, "role": "admin"})
    response = client.post("/login", json={"username": "alice", "password": PASSWORD})
    assert response.status_code == 401


@pytest.fixture
def closed_client(tmp_path: Path) -> Iterator[httpx.Client]:
    yield from serve(make_settings(tmp_path / "data", allow_signup=False))


def test_sign_up_can_be_switched_off(closed_client: httpx.Client) -> None:
    response = closed_client.post("/users", json={"username": "alice", "password": PASSWORD})
    assert response.status_code == 403
    assert response.json()["code"] == "signup_disabled"
    # Seed 001's sign-up by email is the same door.
    by_email = closed_client.post("/user", json={"email": "a@example.com", "password": PASSWORD})
    assert by_email.status_code == 403
    assert by_email.json()["code"] == "signup_disabled"
