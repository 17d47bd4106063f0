"""Seed 001's user API and seed 002's whoami and admin endpoints, with their access rules."""

import httpx
import pytest

from nimbus.container import Container
from tests.factories import Account, an_admin
from tests.support import PASSWORD, log_in, sign_up


def test_whoami_returns_the_user_and_the_token_claims(client: httpx.Client, alice: Account) -> None:
    user_id, headers = alice.id, alice.headers
    response = client.get("/users/me", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["id"] == user_id
    assert body["user"]["last_login"] is not None
    assert body["claims"]["sub"] == user_id
    assert body["claims"]["groups"] == ["users"]


def test_a_user_reads_and_patches_itself(client: httpx.Client, alice: Account) -> None:
    user_id, headers = alice.id, alice.headers
    assert client.get(f"/users/{user_id}", headers=headers).json()["name"] == "Alice"
    response = client.patch(f"/users/{user_id}", json={"name": "Denny"}, headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["email"]) == ("Denny", "alice@example.com")
    assert response.headers["ETag"] == '"2"'


def test_put_replaces_email_and_name(client: httpx.Client, alice: Account) -> None:
    user_id, headers = alice.id, alice.headers
    response = client.put(
        f"/users/{user_id}",
        json={"email": "new@example.com", "name": None, "current_password": PASSWORD},
        headers=headers,
    )
    assert response.status_code == 200
    assert (response.json()["email"], response.json()["name"]) == ("new@example.com", None)
    login = client.post("/login", json={"email": "new@example.com", "password": PASSWORD})
    assert login.status_code == 200


@pytest.mark.store_independent
def test_put_needs_email_and_name(client: httpx.Client, alice: Account) -> None:
    user_id, headers = alice.id, alice.headers
    response = client.put(f"/users/{user_id}", json={"name": "only"}, headers=headers)
    assert response.status_code == 422
    assert "body.email" in [error["field"] for error in response.json()["errors"]]


def test_changing_email_to_a_taken_one_is_409(
    client: httpx.Client, alice: Account, bob: Account
) -> None:
    bob_id, bob_headers = bob.id, bob.headers
    response = client.patch(
        f"/users/{bob_id}",
        json={"email": "ALICE@example.com", "current_password": PASSWORD},
        headers=bob_headers,
    )
    assert response.status_code == 409


@pytest.mark.store_independent
@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_a_user_cannot_change_its_own_role(
    client: httpx.Client, alice: Account, method: str
) -> None:
    user_id, headers = alice.id, alice.headers
    body = {"role": "admin"} | ({"email": None, "name": None} if method == "PUT" else {})
    response = client.request(method, f"/users/{user_id}", json=body, headers=headers)
    assert response.status_code == 403
    assert response.json()["code"] == "role_change_forbidden"
    assert client.get(f"/users/{user_id}", headers=headers).json()["role"] == "user"


def test_an_admin_changes_a_role_and_the_old_tokens_stop_working(
    client: httpx.Client, alice: Account, admin: Account
) -> None:
    user_id, headers = alice.id, alice.headers
    response = client.patch(f"/users/{user_id}", json={"role": "admin"}, headers=admin.headers)
    assert response.status_code == 200
    assert response.json()["role"] == "admin"
    assert client.get("/users/me", headers=headers).status_code == 401
    promoted = {"Authorization": log_in(client, "alice")}
    assert client.get("/users", headers=promoted).status_code == 200


def test_a_new_password_ends_every_session(client: httpx.Client, alice: Account) -> None:
    user_id, headers = alice.id, alice.headers
    other_device = client.post("/login", json={"username": "alice", "password": PASSWORD}).json()
    response = client.patch(
        f"/users/{user_id}",
        json={"password": "a new password", "current_password": PASSWORD},
        headers=headers,
    )
    assert response.status_code == 200
    assert client.get("/users/me", headers=headers).status_code == 401
    refreshed = client.post("/auth/refresh", json={"refresh_token": other_device["refresh_token"]})
    assert refreshed.status_code == 401
    assert (
        client.post("/login", json={"username": "alice", "password": PASSWORD}).status_code == 401
    )
    assert log_in(client, "alice", "a new password")


def test_deleting_a_user_removes_its_todos_and_ends_its_sessions(
    client: httpx.Client, alice: Account, container: Container
) -> None:
    user_id, headers = alice.id, alice.headers
    for i in range(3):
        client.post("/todos", json={"description": f"t{i}"}, headers=headers)
    # Your own account needs your password too, as a new password does.
    refused = client.delete(f"/users/{user_id}", headers=headers)
    assert (refused.status_code, refused.json()["code"]) == (403, "current_password_required")
    wrong = client.request(
        "DELETE", f"/users/{user_id}", json={"current_password": "not it"}, headers=headers
    )
    assert (wrong.status_code, wrong.json()["code"]) == (403, "current_password_invalid")
    deleted = client.request(
        "DELETE", f"/users/{user_id}", json={"current_password": PASSWORD}, headers=headers
    )
    assert deleted.status_code == 204
    assert client.get("/todos", headers=headers).status_code == 401
    assert (
        client.post("/login", json={"username": "alice", "password": PASSWORD}).status_code == 401
    )
    assert container.storage.todos.list(user_id, state=None, limit=10, cursor=None).items == []
    sign_up(client, "alice")  # the name is free again


def test_the_admin_lists_users_in_pages(client: httpx.Client, admin: Account) -> None:
    for name in ("u1", "u2", "u3"):
        sign_up(client, name)
    first = client.get("/users", params={"limit": 2}, headers=admin.headers)
    assert first.status_code == 200
    assert [user["username"] for user in first.json()] == ["root", "u1"]
    link = first.headers["Link"]
    second = client.get(link[1 : link.index(">")], headers=admin.headers)
    assert [user["username"] for user in second.json()] == ["u2", "u3"]
    assert "argon2" not in first.text


@pytest.mark.store_independent
def test_admin_endpoints_lists_every_route(client: httpx.Client, admin: Account) -> None:
    response = client.get("/admin/endpoints", headers=admin.headers)
    assert response.status_code == 200
    endpoints = {(e["path"], tuple(e["methods"])) for e in response.json()["endpoints"]}
    assert ("/todos/{uid}", ("DELETE",)) in endpoints
    assert ("/admin/endpoints", ("GET",)) in endpoints
    assert all(e["name"] for e in response.json()["endpoints"])


@pytest.mark.store_independent
def test_an_admin_token_without_the_admin_scope_cannot_administer(
    client: httpx.Client, container: Container
) -> None:
    an_admin(client, container)
    form = {"grant_type": "password", "username": "root", "password": PASSWORD, "scope": "todos"}
    token = client.post("/auth/token", data=form).json()["access_token"]
    response = client.get("/admin/endpoints", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert response.json()["code"] == "admin_only"


# The access matrix: each route, called by nobody, the owner, another user, and an admin.
# "self" routes act on alice's own record; the expected status is per caller.
MATRIX = [
    # method, path, body, anonymous, alice (self), bob (other user), admin
    ("GET", "/users/me", None, 401, 200, 200, 200),
    ("GET", "/users", None, 401, 403, 403, 200),
    ("GET", "/users/{alice}", None, 401, 200, 403, 200),
    ("PATCH", "/users/{alice}", {"name": "N"}, 401, 200, 403, 200),
    ("PUT", "/users/{alice}", {"email": None, "name": "N"}, 401, 200, 403, 200),
    ("GET", "/admin/endpoints", None, 401, 403, 403, 200),
    ("GET", "/todos", None, 401, 200, 200, 200),
    ("POST", "/todos", {"description": "d"}, 401, 201, 201, 201),
    ("GET", "/todos/{todo}", None, 401, 200, 404, 404),
    ("PATCH", "/todos/{todo}", {"state": "started"}, 401, 200, 404, 404),
    ("PUT", "/todos/{todo}", {"state": "started"}, 401, 200, 404, 404),
    ("POST", "/auth/logout", None, 401, 204, 204, 204),
    ("DELETE", "/todos/{todo}", None, 401, 204, 404, 404),
    ("DELETE", "/users/{alice}", {"current_password": PASSWORD}, 401, 204, 403, 204),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "statuses"),
    [(m, p, b, s) for m, p, b, *s in MATRIX],
    ids=[f"{m} {p}" for m, p, *_ in MATRIX],
)
def test_access_matrix(
    client: httpx.Client,
    container: Container,
    method: str,
    path: str,
    body: object,
    statuses: list[int],
) -> None:
    for name in ("alice", "bob"):
        sign_up(client, name)
    root = an_admin(client, container).headers
    alice_id = container.users.get_by_username("alice").id
    for caller, expected in zip(["anonymous", "alice", "bob", "root"], statuses, strict=True):
        # Fresh state per caller: alice's todo exists and every token is new.
        tokens = {
            "anonymous": None,
            "alice": {"Authorization": log_in(client, "alice")},
            "bob": {"Authorization": log_in(client, "bob")},
            "root": root if caller != "root" else {"Authorization": log_in(client, "root")},
        }
        todo = client.post("/todos", json={"description": "mine"}, headers=tokens["alice"])
        url = path.format(alice=alice_id, todo=todo.json()["uid"])
        response = client.request(method, url, json=body, headers=tokens[caller])
        assert response.status_code == expected, (caller, response.text)
        if expected >= 400:
            assert set(response.json()) >= {"message", "code"}
        if url.startswith("/users/") and method == "DELETE" and expected == 204:
            sign_up(client, "alice")
            alice_id = container.users.get_by_username("alice").id
