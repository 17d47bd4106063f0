"""Refresh tokens, logout, the OAuth2 token endpoint and login rate limits."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from nimbus.settings import Settings
from tests.support import PASSWORD, make_settings, serve, sign_up


def _login(client: httpx.Client, username: str = "alice", password: str = PASSWORD) -> Any:
    return client.post("/login", json={"username": username, "password": password})


@pytest.fixture
def tokens(client: httpx.Client) -> dict[str, Any]:
    sign_up(client, "alice")
    body: dict[str, Any] = _login(client).json()
    return body


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_refresh_rotates_the_pair(client: httpx.Client, tokens: dict[str, Any]) -> None:
    response = client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert response.status_code == 200
    fresh = response.json()
    assert fresh["refresh_token"] != tokens["refresh_token"]
    assert fresh["access_token"] != tokens["access_token"]
    assert response.headers["Cache-Control"] == "no-store"
    assert client.get("/users/me", headers=_bearer(fresh["access_token"])).status_code == 200
    # The earlier access token belongs to the same live session, so it still works.
    assert client.get("/users/me", headers=_bearer(tokens["access_token"])).status_code == 200


@pytest.fixture
def no_grace_client(settings: Settings) -> Iterator[httpx.Client]:
    """A server on the backend under test that treats any second use as a replay."""
    yield from serve(settings.model_copy(update={"refresh_reuse_grace": 0}))


def test_reusing_a_rotated_refresh_token_ends_the_whole_family(
    no_grace_client: httpx.Client,
) -> None:
    client = no_grace_client
    sign_up(client, "alice")
    tokens = _login(client).json()
    first = client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).json()
    replay = client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert replay.status_code == 401
    assert replay.json()["code"] == "invalid_grant"
    # The thief's replay also ends the legitimate holder's newer tokens.
    later = client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert later.status_code == 401
    assert client.get("/users/me", headers=_bearer(first["access_token"])).status_code == 401


def test_other_sessions_survive_a_replay_in_one(no_grace_client: httpx.Client) -> None:
    client = no_grace_client
    sign_up(client, "alice")
    tokens = _login(client).json()
    other = _login(client).json()
    client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert client.get("/users/me", headers=_bearer(other["access_token"])).status_code == 200


@pytest.mark.parametrize("token", ["nonsense", "a.b", ".", "x" * 600])
def test_a_forged_refresh_token_is_refused(
    client: httpx.Client, tokens: dict[str, Any], token: str
) -> None:
    response = client.post("/auth/refresh", json={"refresh_token": token})
    assert response.status_code in (401, 422)


def test_a_refresh_token_with_the_wrong_secret_is_refused(
    client: httpx.Client, tokens: dict[str, Any]
) -> None:
    token_id = tokens["refresh_token"].split(".")[0]
    response = client.post("/auth/refresh", json={"refresh_token": f"{token_id}.guess"})
    assert response.status_code == 401
    # A failed guess must not burn the real token.
    real = client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert real.status_code == 200


def test_logout_ends_the_access_and_refresh_tokens(
    client: httpx.Client, tokens: dict[str, Any]
) -> None:
    other = _login(client).json()
    assert client.post("/auth/logout", headers=_bearer(tokens["access_token"])).status_code == 204
    assert client.get("/users/me", headers=_bearer(tokens["access_token"])).status_code == 401
    refresh = client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 401
    assert client.get("/users/me", headers=_bearer(other["access_token"])).status_code == 200


def test_oauth_password_grant_answers_per_rfc_6749(client: httpx.Client) -> None:
    sign_up(client, "alice", email="alice@example.com")
    form = {"grant_type": "password", "username": "alice", "password": PASSWORD}
    response = client.post("/auth/token", data=form)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert body["token_type"] == "bearer"
    assert body["scope"] == "messages profile todos"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    by_email = client.post("/auth/token", data=form | {"username": "alice@example.com"})
    assert by_email.status_code == 200


def test_oauth_scope_narrows_the_token_and_is_enforced(client: httpx.Client) -> None:
    sign_up(client, "alice")
    form = {"grant_type": "password", "username": "alice", "password": PASSWORD, "scope": "profile"}
    body = client.post("/auth/token", data=form).json()
    assert body["scope"] == "profile"
    headers = _bearer(body["access_token"])
    assert client.get("/users/me", headers=headers).status_code == 200
    todos = client.get("/todos", headers=headers)
    assert todos.status_code == 403
    assert todos.json()["code"] == "insufficient_scope"
    refreshed = client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    )
    assert refreshed.json()["scope"] == "profile"


@pytest.mark.store_independent
def test_each_operation_enforces_the_scope_its_openapi_entry_names(
    client: httpx.Client,
) -> None:
    """The scope in an operation's security requirement is the one its dependency checks: a
    token granted every other scope gets 403 before the operation runs."""
    sign_up(client, "alice")
    operations = client.get("/openapi.json").json()["paths"]
    required = {
        (method.upper(), path): scopes
        for path, methods in operations.items()
        for method, operation in methods.items()
        for requirement in operation.get("security", [])
        for scheme, scopes in requirement.items()
        if scheme == "OAuth2PasswordBearer"
    }
    assert required[("GET", "/todos/{uid}")] == ["todos"]
    assert required[("POST", "/messages")] == ["messages"]
    assert required[("GET", "/users/me")] == ["profile"]
    assert required[("POST", "/auth/logout")] == []  # any token of the user's
    user_scopes = {"profile", "todos", "messages"}
    checked = 0
    for (method, path), scopes in required.items():
        if not scopes:
            continue
        (scope,) = scopes
        others = " ".join(sorted(user_scopes - {scope}))
        form = {"grant_type": "password", "username": "alice", "password": PASSWORD,
                "scope": others}  # fmt: skip
        token = client.post("/auth/token", data=form).json()["access_token"]
        url = path.replace("{uid}", "nothere").replace("{user_id}", "nothere")
        body: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None
        response = client.request(method, url, headers=_bearer(token), json=body)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["code"] == "insufficient_scope", (method, path)
        checked += 1
    assert checked >= 10


def test_oauth_refuses_a_scope_the_account_does_not_have(client: httpx.Client) -> None:
    sign_up(client, "alice")
    form = {"grant_type": "password", "username": "alice", "password": PASSWORD, "scope": "admin"}
    response = client.post("/auth/token", data=form)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


@pytest.mark.store_independent
@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"grant_type": "password", "username": "alice", "password": "wrong"}, "invalid_grant"),
        ({"grant_type": "password", "username": "nobody", "password": PASSWORD}, "invalid_grant"),
        ({"grant_type": "password", "username": "alice"}, "invalid_request"),
        ({"username": "alice", "password": PASSWORD}, "invalid_request"),
        ({"grant_type": "client_credentials"}, "unsupported_grant_type"),
        ({"grant_type": "refresh_token", "refresh_token": "bad.token"}, "invalid_grant"),
    ],
)
def test_oauth_errors_have_the_rfc_shape(
    client: httpx.Client, form: dict[str, str], error: str
) -> None:
    sign_up(client, "alice")
    response = client.post("/auth/token", data=form)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == error
    assert body["code"] == error
    assert body["error_description"] == body["message"]
    assert PASSWORD not in response.text


@pytest.mark.store_independent
def test_oauth_wants_a_form(client: httpx.Client) -> None:
    response = client.post("/auth/token", json={"grant_type": "password"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


@pytest.fixture
def strict_client(tmp_path: Path) -> Iterator[httpx.Client]:
    settings = make_settings(
        tmp_path / "data", login_max_failures_per_account=3, login_max_failures_per_address=5
    )
    yield from serve(settings)


def test_failed_logins_are_limited_per_account(strict_client: httpx.Client) -> None:
    sign_up(strict_client, "alice")
    for _ in range(3):
        assert _login(strict_client, password="wrong password").status_code == 401
    blocked = _login(strict_client)  # even the right password waits out the window
    assert blocked.status_code == 429
    assert blocked.json()["code"] == "rate_limited"
    assert 0 < int(blocked.headers["Retry-After"]) <= 900


def test_unknown_accounts_are_limited_the_same_way(strict_client: httpx.Client) -> None:
    for _ in range(3):
        assert _login(strict_client, "ghost", "wrong password").status_code == 401
    assert _login(strict_client, "ghost", "wrong password").status_code == 429


def test_failed_logins_are_limited_per_address(strict_client: httpx.Client) -> None:
    sign_up(strict_client, "alice")
    for name in ("u1", "u2", "u3", "u4", "u5"):
        assert _login(strict_client, name, "wrong password").status_code == 401
    assert _login(strict_client, "alice").status_code == 429


def test_a_successful_login_resets_the_account_count(strict_client: httpx.Client) -> None:
    sign_up(strict_client, "alice")
    for _ in range(2):
        _login(strict_client, password="wrong password")
    assert _login(strict_client).status_code == 200
    for _ in range(2):
        _login(strict_client, password="wrong password")
    assert _login(strict_client).status_code == 200


def test_the_token_endpoint_shares_the_login_limits(strict_client: httpx.Client) -> None:
    sign_up(strict_client, "alice")
    form = {"grant_type": "password", "username": "alice", "password": "wrong"}
    for _ in range(3):
        assert strict_client.post("/auth/token", data=form).status_code == 400
    response = strict_client.post("/auth/token", data=form | {"password": PASSWORD})
    assert response.status_code == 429
    assert "Retry-After" in response.headers
