"""The password policy over HTTP: sign-up and password changes, on every backend."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from nimbus.bootstrap import build
from nimbus.container import Container
from nimbus.settings import Settings
from tests.factories import an_admin
from tests.support import PASSWORD, live_server, log_in, make_settings, sign_up

TOO_COMMON = {
    "message": "That password is too common; choose another",
    "code": "password_too_common",
}
MATCHES = {
    "message": "Choose a password that is not your username or email",
    "code": "password_matches_account",
}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def configured(settings: Settings) -> Iterator[httpx.Client]:
    """nimbus on the same backend with bounds of 12 to 64 and the list off."""
    other = make_settings(
        settings.data_dir,
        database_url=settings.database_url,
        password_min_length=12,
        password_max_length=64,
        password_blocklist=False,
    )
    container = build(other)
    try:
        with live_server(container) as url, httpx.Client(base_url=url, timeout=30) as http:
            yield http
    finally:
        container.close()


@pytest.mark.parametrize(
    ("body", "refused"),
    [
        ({"username": "alice", "password": "Password123"}, TOO_COMMON),
        ({"username": "alice", "password": "Nimbus2026!"}, TOO_COMMON),
        ({"username": "alice.liddell", "password": "ALICE.LIDDELL"}, MATCHES),
        ({"username": "alice", "email": "a.liddell@example.com", "password": "A.Liddell"}, MATCHES),
    ],
)
def test_sign_up_refuses_a_password_the_policy_refuses(
    client: httpx.Client, body: dict[str, str], refused: dict[str, str]
) -> None:
    response = client.post("/users", json=body)
    assert (response.status_code, response.json()) == (400, refused)
    assert body["password"] not in response.text
    # Nothing was stored: the name is still free.
    assert sign_up(client, body["username"], email=body.get("email"))["username"]


def test_a_password_below_the_schemas_floor_is_a_validation_error(client: httpx.Client) -> None:
    response = client.post("/users", json={"username": "alice", "password": "seven77"})
    assert response.status_code == 422
    body = response.json()
    assert (body["message"], body["code"]) == ("Request validation failed", "validation_error")
    assert [error["field"] for error in body["errors"]] == ["body.password"]
    assert "seven77" not in response.text


def test_seed_001_sign_up_is_held_to_the_policy(client: httpx.Client) -> None:
    demo = {"email": "denis@example.com", "name": "Denis", "password": "secret123"}
    response = client.post("/user", json=demo)
    assert (response.status_code, response.json()) == (400, TOO_COMMON)
    own = {"email": "denis.ritchie@example.com", "password": "Denis.Ritchie"}
    response = client.post("/user", json=own)
    assert (response.status_code, response.json()) == (400, MATCHES)
    assert client.post("/user", json=demo | {"password": "newsecret"}).status_code == 201


def test_a_new_password_is_checked_with_the_accounts_names(client: httpx.Client) -> None:
    alice = sign_up(client, "alice.liddell", email="alice@example.com")
    headers = _bearer(log_in(client, "alice.liddell"))
    for password, refused in [
        ("iloveyou2", TOO_COMMON),
        ("Alice.Liddell", MATCHES),
        ("ALICE@EXAMPLE.COM", MATCHES),
    ]:
        response = client.patch(
            f"/users/{alice['id']}",
            json={"password": password, "current_password": PASSWORD},
            headers=headers,
        )
        assert (response.status_code, response.json()) == (400, refused), password
        assert password not in response.text
    # Nothing changed: the old password logs in, and the session goes on.
    assert log_in(client, "alice.liddell")
    assert client.get("/users/me", headers=headers).status_code == 200
    changed = client.patch(
        f"/users/{alice['id']}",
        json={"password": "a looking-glass sentence", "current_password": PASSWORD},
        headers=headers,
    )
    assert changed.status_code == 200
    assert log_in(client, "alice.liddell", "a looking-glass sentence")


def test_a_password_is_checked_against_the_email_it_is_set_with(client: httpx.Client) -> None:
    alice = sign_up(client, "alice", email="alice@example.com")
    body = {"email": "white.rabbit@example.com", "password": "White.Rabbit"}
    response = client.patch(
        f"/users/{alice['id']}",
        json=body | {"current_password": PASSWORD},
        headers=_bearer(log_in(client, "alice")),
    )
    assert (response.status_code, response.json()) == (400, MATCHES)
    me = client.get("/users/me", headers=_bearer(log_in(client, "alice"))).json()
    assert me["user"]["email"] == "alice@example.com"


def test_an_administrator_setting_a_password_is_held_to_the_policy(
    client: httpx.Client, container: Container
) -> None:
    root = an_admin(client, container).headers
    alice = sign_up(client, "alice")
    response = client.put(
        f"/users/{alice['id']}",
        json={"email": None, "name": None, "password": "qwertyuiop"},
        headers=root,
    )
    assert (response.status_code, response.json()) == (400, TOO_COMMON)
    assert log_in(client, "alice")


def test_a_password_set_before_the_policy_still_logs_in_and_is_changed(
    settings: Settings, client: httpx.Client
) -> None:
    # Made by a nimbus with the list off: login and the current-password check take it.
    lax = build(make_settings(settings.data_dir, database_url=settings.database_url,
                              password_blocklist=False))  # fmt: skip
    try:
        old = lax.users.create(username="carol", password="password123")
    finally:
        lax.close()
    headers = _bearer(log_in(client, "carol", "password123"))
    response = client.patch(
        f"/users/{old.id}",
        json={"password": "a much better one", "current_password": "password123"},
        headers=headers,
    )
    assert response.status_code == 200
    assert log_in(client, "carol", "a much better one")


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("k" * 11, (400, "password_too_short", "Choose a password of at least 12 characters")),
        ("k" * 65, (400, "password_too_long", "Choose a password of at most 64 characters")),
        ("password1234", (201, None, None)),  # on the list, which is off here
        ("k" * 12, (201, None, None)),
        ("🔑" * 12, (201, None, None)),  # 48 bytes, 12 code points
    ],
)
def test_configured_bounds_and_list_apply_to_sign_up(
    configured: httpx.Client, password: str, expected: tuple[int, str | None, str | None]
) -> None:
    response = configured.post("/users", json={"username": "alice", "password": password})
    body: dict[str, Any] = response.json()
    assert (response.status_code, body.get("code"), body.get("message")) == expected


def test_configured_bounds_apply_to_a_password_change(configured: httpx.Client) -> None:
    alice = sign_up(configured, "alice")
    headers = _bearer(log_in(configured, "alice"))
    response = configured.patch(
        f"/users/{alice['id']}",
        json={"password": "eleven char", "current_password": PASSWORD},
        headers=headers,
    )
    assert (response.status_code, response.json()["code"]) == (400, "password_too_short")
    assert log_in(configured, "alice")
