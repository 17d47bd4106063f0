"""What keeps an account its owner's: no name that logs in to another account, the current
password for your own password or email, always one administrator, no token outside a
session, and a duplicate refresh that is not mistaken for a stolen one."""

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import jwt
import pytest

from nimbus.bootstrap import signing_key
from nimbus.container import Container
from nimbus.settings import Settings
from tests.factories import an_admin
from tests.support import PASSWORD, log_in, serve, sign_up

Headers = dict[str, str]


def _bearer(token: str) -> Headers:
    return {"Authorization": f"Bearer {token}"}


def test_no_new_account_takes_a_name_that_logs_in_to_another(client: httpx.Client) -> None:
    sign_up(client, "alice", email="alice@example.com")
    squatter = client.post("/users", json={"username": "ALICE@example.com", "password": PASSWORD})
    assert squatter.status_code == 409
    assert squatter.json()["code"] == "conflict"
    sign_up(client, "carol@example.com")
    taken = client.post(
        "/users", json={"username": "dave", "password": PASSWORD, "email": "carol@example.com"}
    )
    assert taken.status_code == 409
    # The owner's login through the username field (as the web app sends it) still works.
    login = client.post("/login", json={"username": "alice@example.com", "password": PASSWORD})
    assert login.status_code == 200
    assert login.json()["access_token"]


def test_an_email_change_cannot_take_another_accounts_username(client: httpx.Client) -> None:
    sign_up(client, "carol@example.com")
    bob = sign_up(client, "bob")
    response = client.patch(
        f"/users/{bob['id']}",
        json={"email": "carol@example.com", "current_password": PASSWORD},
        headers=_bearer(log_in(client, "bob")),
    )
    assert response.status_code == 409


@pytest.mark.parametrize(
    "body",
    [
        {"password": "a new password"},
        {"email": "new@example.com"},
    ],
)
def test_your_own_password_or_email_needs_the_current_password(
    client: httpx.Client, body: dict[str, str]
) -> None:
    alice = sign_up(client, "alice", email="alice@example.com")
    headers = _bearer(log_in(client, "alice"))
    missing = client.patch(f"/users/{alice['id']}", json=body, headers=headers)
    assert missing.status_code == 403
    assert missing.json()["code"] == "current_password_required"
    wrong = client.patch(
        f"/users/{alice['id']}", json=body | {"current_password": "not it"}, headers=headers
    )
    assert wrong.status_code == 403
    assert wrong.json()["code"] == "current_password_invalid"
    unchanged = client.get("/users/me", headers=headers).json()["user"]
    assert unchanged["email"] == "alice@example.com"
    assert log_in(client, "alice")
    right = client.patch(
        f"/users/{alice['id']}", json=body | {"current_password": PASSWORD}, headers=headers
    )
    assert right.status_code == 200


def test_other_changes_and_an_unchanged_email_need_no_password(client: httpx.Client) -> None:
    alice = sign_up(client, "alice", email="alice@example.com")
    headers = _bearer(log_in(client, "alice"))
    response = client.put(
        f"/users/{alice['id']}",
        json={"email": "alice@example.com", "name": "Alice"},
        headers=headers,
    )
    assert response.status_code == 200


def test_guessing_the_current_password_is_limited(client: httpx.Client) -> None:
    alice = sign_up(client, "alice")
    headers = _bearer(log_in(client, "alice"))
    body = {"password": "a new password", "current_password": "guess"}
    statuses = [
        client.patch(f"/users/{alice['id']}", json=body, headers=headers).status_code
        for _ in range(11)
    ]
    assert statuses == [403] * 10 + [429]


def test_an_admin_sets_anothers_password_without_it_and_ends_its_sessions(
    client: httpx.Client, container: Container
) -> None:
    root = an_admin(client, container).headers
    alice = sign_up(client, "alice")
    headers = _bearer(log_in(client, "alice"))
    response = client.patch(
        f"/users/{alice['id']}", json={"password": "set by the admin"}, headers=root
    )
    assert response.status_code == 200
    assert client.get("/users/me", headers=headers).status_code == 401
    assert log_in(client, "alice", "set by the admin")


def test_the_last_administrator_can_neither_leave_nor_step_down(
    client: httpx.Client, container: Container
) -> None:
    root = an_admin(client, container).headers
    root_id = client.get("/users/me", headers=root).json()["user"]["id"]
    own = {"current_password": PASSWORD}  # deleting your own account needs your password
    for method, body in (("PATCH", {"role": "user"}), ("DELETE", own)):
        response = client.request(method, f"/users/{root_id}", json=body, headers=root)
        assert response.status_code == 409
        assert response.json()["code"] == "last_admin"
        assert "last administrator" in response.json()["message"]
    assert client.get("/users/me", headers=root).json()["user"]["role"] == "admin"
    # With a second administrator, either may go.
    second = an_admin(client, container, "second").headers
    assert (
        client.patch(f"/users/{root_id}", json={"role": "user"}, headers=second).status_code == 200
    )
    second_id = client.get("/users/me", headers=second).json()["user"]["id"]
    leaving = client.request("DELETE", f"/users/{second_id}", json=own, headers=second)
    assert leaving.status_code == 409


def test_a_token_of_ours_without_a_session_is_refused(
    client: httpx.Client, container: Container
) -> None:
    alice = sign_up(client, "alice")
    claims = jwt.decode(log_in(client, "alice"), options={"verify_signature": False})
    assert claims["sid"]
    del claims["sid"]
    forged = jwt.encode(claims, signing_key(container.settings), algorithm="HS256")
    response = client.get("/users/me", headers=_bearer(forged))
    assert response.status_code == 401
    assert client.get(f"/users/{alice['id']}", headers=_bearer(forged)).status_code == 401


def _refresh(client: httpx.Client, token: str) -> httpx.Response:
    return client.post("/auth/refresh", json={"refresh_token": token})


def test_a_duplicate_refresh_gets_the_same_new_pair(client: httpx.Client) -> None:
    sign_up(client, "alice")
    token = client.post("/login", json={"username": "alice", "password": PASSWORD}).json()[
        "refresh_token"
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(lambda _: _refresh(client, token), range(2)))
    assert [answer.status_code for answer in answers] == [200, 200]
    first, second = (answer.json() for answer in answers)
    assert first["refresh_token"] == second["refresh_token"]
    assert first["access_token"] == second["access_token"]
    late = _refresh(client, token)  # a third, sequential, within the grace
    assert late.json()["refresh_token"] == first["refresh_token"]
    # The pair works, and rotates on as usual.
    assert client.get("/users/me", headers=_bearer(first["access_token"])).status_code == 200
    following = _refresh(client, first["refresh_token"])
    assert following.status_code == 200


def test_a_reuse_after_the_new_token_was_used_ends_the_session(client: httpx.Client) -> None:
    sign_up(client, "alice")
    token = client.post("/login", json={"username": "alice", "password": PASSWORD}).json()[
        "refresh_token"
    ]
    child = _refresh(client, token).json()
    grandchild = _refresh(client, child["refresh_token"]).json()
    replay = _refresh(client, token)  # within the grace, but its pair has moved on
    assert replay.status_code == 401
    assert _refresh(client, grandchild["refresh_token"]).status_code == 401


@pytest.fixture
def short_grace(settings: Settings) -> Iterator[httpx.Client]:
    yield from serve(settings.model_copy(update={"refresh_reuse_grace": 1}))


def test_a_reuse_after_the_grace_ends_the_session(short_grace: httpx.Client) -> None:
    client = short_grace
    sign_up(client, "alice")
    token = client.post("/login", json={"username": "alice", "password": PASSWORD}).json()[
        "refresh_token"
    ]
    child = _refresh(client, token).json()
    time.sleep(1.2)
    assert _refresh(client, token).status_code == 401
    assert _refresh(client, child["refresh_token"]).status_code == 401
