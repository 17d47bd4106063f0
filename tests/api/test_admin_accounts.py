"""Disabling and enabling accounts (PATCH /users/{id} {"disabled": ...}) over real HTTP on every
backend: who may, what a disabled account can no longer do (log in, refresh, use its tokens,
a provider's token), that its data stays, and the audit events."""

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from nimbus.bootstrap import build
from nimbus.container import Container
from nimbus.domain.errors import Conflict
from nimbus.domain.ids import new_id
from nimbus.domain.users import Role, UserChanges
from tests.api.test_oidc import AUDIENCE, IdentityProvider
from tests.factories import Account, an_admin
from tests.support import PASSWORD, live_server, log_in, make_settings

DISABLED = {"message": "This account is disabled; ask an administrator", "code": "account_disabled"}


def _disable(client: httpx.Client, who: Account, by: Account, disabled: bool = True) -> Any:
    response = client.patch(f"/users/{who.id}", json={"disabled": disabled}, headers=by.headers)
    assert response.status_code == 200, response.text
    return response.json()


def _login(client: httpx.Client, username: str, password: str = PASSWORD) -> httpx.Response:
    return client.post("/login", json={"username": username, "password": password})


def test_disabling_ends_every_session_at_once_and_keeps_the_data(
    client: httpx.Client, alice: Account, admin: Account, container: Container
) -> None:
    todo = client.post("/todos", json={"description": "keep me"}, headers=alice.headers)
    assert todo.status_code == 201
    other_device = _login(client, "alice").json()

    body = _disable(client, alice, admin)
    assert (body["id"], body["disabled"]) == (alice.id, True)

    assert client.get("/users/me", headers=alice.headers).status_code == 401
    bearer = {"Authorization": f"Bearer {other_device['access_token']}"}
    assert client.get("/todos", headers=bearer).status_code == 401
    refresh = client.post("/auth/refresh", json={"refresh_token": other_device["refresh_token"]})
    assert (refresh.status_code, refresh.json()["code"]) == (401, "invalid_grant")
    # Nothing of it is gone: the account, its todo.
    seen = client.get(f"/users/{alice.id}", headers=admin.headers).json()
    assert (seen["username"], seen["email"], seen["disabled"]) == (
        "alice",
        "alice@example.com",
        True,
    )
    kept = container.storage.todos.list(alice.id, state=None, limit=10, cursor=None).items
    assert [t.uid for t in kept] == [todo.json()["uid"]]
    listed = client.get("/users", headers=admin.headers).json()
    assert {u["username"]: u["disabled"] for u in listed} == {"alice": True, "root": False}


def test_a_disabled_account_is_told_so_only_with_its_right_password(
    client: httpx.Client, alice: Account, admin: Account
) -> None:
    _disable(client, alice, admin)
    refused = _login(client, "alice")
    assert (refused.status_code, refused.json()) == (403, DISABLED)
    by_email = client.post("/login", json={"email": "alice@example.com", "password": PASSWORD})
    assert (by_email.status_code, by_email.json()) == (403, DISABLED)
    # A wrong password gets the answer every wrong password gets: nothing about the account.
    wrong = _login(client, "alice", "not her password")
    unknown = _login(client, "nobody", "not her password")
    assert (wrong.status_code, wrong.json()) == (unknown.status_code, unknown.json())
    assert wrong.json()["code"] == "invalid_credentials"
    assert PASSWORD not in refused.text


def test_the_token_endpoint_answers_a_disabled_account_as_rfc_6749_asks(
    client: httpx.Client, alice: Account, admin: Account
) -> None:
    _disable(client, alice, admin)
    form = {"grant_type": "password", "username": "alice", "password": PASSWORD}
    for path in ("/auth/token", "/v1/auth/token"):
        response = client.post(path, data=form)
        assert response.status_code == 400
        assert response.headers["Cache-Control"] == "no-store"
        assert response.json() == {
            "error": "invalid_grant",
            "error_description": DISABLED["message"],
            "message": DISABLED["message"],
            "code": "account_disabled",  # nimbus's code beside RFC 6749's error
        }
    wrong = client.post("/auth/token", data=form | {"password": "not her password"})
    assert (wrong.status_code, wrong.json()["code"]) == (400, "invalid_grant")
    assert "disabled" not in wrong.text


def test_a_refresh_token_of_a_disabled_account_is_refused_even_with_its_session_live(
    client: httpx.Client, alice: Account, container: Container
) -> None:
    """A session started by a login that passed its check as the account was being disabled
    outlives revoke_all: its refresh is still refused."""
    tokens = _login(client, "alice").json()
    now = datetime.now(UTC)
    container.storage.users.update(
        alice.id, UserChanges(disabled_at=now), expected_version=None, at=now
    )
    refresh = client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 401
    assert refresh.json() == {"message": "The account is disabled", "code": "invalid_grant"}
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    token = client.post("/auth/token", data=form)
    assert (token.status_code, token.json()["error"]) == (400, "invalid_grant")


def test_enabling_lets_the_account_log_in_again_to_its_data(
    client: httpx.Client, alice: Account, admin: Account
) -> None:
    uid = client.post("/todos", json={"description": "d"}, headers=alice.headers).json()["uid"]
    _disable(client, alice, admin)
    assert _login(client, "alice").status_code == 403
    body = _disable(client, alice, admin, disabled=False)
    assert body["disabled"] is False
    again = {"Authorization": f"Bearer {log_in(client, 'alice')}"}
    assert [t["uid"] for t in client.get("/todos", headers=again).json()] == [uid]
    # The sessions ended by the disabling stay ended.
    assert client.get("/users/me", headers=alice.headers).status_code == 401


def test_asking_for_the_state_it_is_in_changes_nothing(
    client: httpx.Client, alice: Account, admin: Account
) -> None:
    response = client.patch(f"/users/{alice.id}", json={"disabled": False}, headers=admin.headers)
    assert (response.status_code, response.headers["ETag"]) == (200, '"1"')
    assert client.get("/users/me", headers=alice.headers).status_code == 200
    first = client.patch(f"/users/{alice.id}", json={"disabled": True}, headers=admin.headers)
    second = client.patch(f"/users/{alice.id}", json={"disabled": True}, headers=admin.headers)
    assert (first.headers["ETag"], second.headers["ETag"]) == ('"2"', '"2"')
    trail = client.get(f"/admin/audit?subject={alice.id}", headers=admin.headers).json()
    assert [e["kind"] for e in trail].count("user.disabled") == 1


def test_if_match_guards_a_disabling(client: httpx.Client, alice: Account, admin: Account) -> None:
    stale = client.patch(
        f"/users/{alice.id}", json={"disabled": True}, headers=admin.headers | {"If-Match": '"7"'}
    )
    assert (stale.status_code, stale.json()["code"]) == (412, "precondition_failed")
    assert client.get("/users/me", headers=alice.headers).status_code == 200
    current = client.patch(
        f"/users/{alice.id}", json={"disabled": True}, headers=admin.headers | {"If-Match": '"1"'}
    )
    assert current.status_code == 200
    again = client.patch(
        f"/users/{alice.id}", json={"disabled": True}, headers=admin.headers | {"If-Match": '"1"'}
    )
    assert again.status_code == 412  # disabled already, but not at that version


def test_only_an_administrator_disables_or_enables(
    client: httpx.Client, alice: Account, bob: Account, admin: Account
) -> None:
    nobody = new_id()
    for target in (bob.id, alice.id, nobody):
        for disabled in (True, False):
            response = client.patch(
                f"/users/{target}", json={"disabled": disabled}, headers=alice.headers
            )
            # The same answer for any id, an unknown one too: decided before any look-up.
            assert response.status_code == 403
            assert response.json() == {
                "message": "Only an administrator can disable or enable an account",
                "code": "admin_only",
            }
    assert client.get("/users/me", headers=bob.headers).status_code == 200
    unknown = client.patch(f"/users/{nobody}", json={"disabled": True}, headers=admin.headers)
    assert unknown.status_code == 404


def test_an_administrator_token_without_the_admin_scope_cannot_disable(
    client: httpx.Client, alice: Account, container: Container
) -> None:
    an_admin(client, container)
    form = {"grant_type": "password", "username": "root", "password": PASSWORD}
    token = client.post("/auth/token", data=form | {"scope": "profile"}).json()["access_token"]
    response = client.patch(
        f"/users/{alice.id}", json={"disabled": True}, headers={"Authorization": f"Bearer {token}"}
    )
    assert (response.status_code, response.json()["code"]) == (403, "admin_only")


def test_an_administrator_cannot_disable_themself(client: httpx.Client, admin: Account) -> None:
    response = client.patch(f"/users/{admin.id}", json={"disabled": True}, headers=admin.headers)
    assert response.status_code == 403
    assert response.json() == {
        "message": "You cannot disable your own account",
        "code": "self_disable_forbidden",
    }
    assert client.get("/users/me", headers=admin.headers).json()["user"]["disabled"] is False


def test_a_disabled_administrator_does_not_count_as_the_other_one(
    client: httpx.Client, admin: Account, container: Container
) -> None:
    ops = an_admin(client, container, "ops")
    _disable(client, ops, admin)
    assert _login(client, "ops").status_code == 403
    # root is the one enabled administrator left: it may neither step down nor leave.
    demoted = client.patch(f"/users/{admin.id}", json={"role": "user"}, headers=admin.headers)
    assert (demoted.status_code, demoted.json()["code"]) == (409, "last_admin")
    deleted = client.request(
        "DELETE",
        f"/users/{admin.id}",
        json={"current_password": PASSWORD},
        headers=admin.headers,
    )
    assert (deleted.status_code, deleted.json()["code"]) == (409, "last_admin")
    # Nor may the operator disable it; a disabled administrator may go, though.
    with pytest.raises(Conflict) as refused:
        container.users.set_disabled(None, admin.id, True)
    assert refused.value.code == "last_admin"
    gone = client.request("DELETE", f"/users/{ops.id}", headers=admin.headers)
    assert gone.status_code == 204
    assert client.get("/users/me", headers=admin.headers).json()["user"]["role"] == "admin"


def test_an_administrator_disables_another_while_one_stays_enabled(
    client: httpx.Client, admin: Account, container: Container
) -> None:
    ops = an_admin(client, container, "ops")
    _disable(client, ops, admin)
    assert client.get("/admin/endpoints", headers=ops.headers).status_code == 401
    enabled = _disable(client, ops, admin, disabled=False)
    assert (enabled["role"], enabled["disabled"]) == ("admin", False)
    assert client.get("/admin/endpoints", headers=ops.headers).status_code == 401
    fresh = {"Authorization": f"Bearer {log_in(client, 'ops')}"}
    assert client.get("/admin/endpoints", headers=fresh).status_code == 200


def test_disabling_and_enabling_are_audit_events(
    client: httpx.Client, alice: Account, admin: Account
) -> None:
    _disable(client, alice, admin)
    assert _login(client, "alice").status_code == 403
    assert _login(client, "alice", "not her password").status_code == 401
    _disable(client, alice, admin, disabled=False)
    trail = client.get(f"/admin/audit?subject={alice.id}", headers=admin.headers).json()
    enabled, failed, refused, disabled = trail[:4]
    assert [e["kind"] for e in trail[:4]] == [
        "user.enabled", "login.failed", "login.failed", "user.disabled"
    ]  # fmt: skip
    for event in (enabled, disabled):
        assert (event["actor"], event["subject"], event["client"]) == (
            admin.id,
            alice.id,
            "127.0.0.1",
        )
    assert refused["detail"] == {"reason": "account_disabled"}
    assert failed["detail"] == {}  # a wrong password tells the trail nothing more either
    # The account's owner sees them in their own activity, once enabled again.
    again = {"Authorization": f"Bearer {log_in(client, 'alice')}"}
    own = client.get("/users/me/events", headers=again)
    assert {"user.disabled", "user.enabled"} <= {e["kind"] for e in own.json()}


@pytest.mark.store_independent
@pytest.mark.parametrize(
    "body",
    [
        {"disabled": True, "name": "Alice L."},
        {"disabled": False, "role": "admin"},
        {"disabled": None},
        {"disabled": "sometimes"},
    ],
)
def test_disabled_goes_alone_and_is_a_boolean(
    client: httpx.Client, alice: Account, admin: Account, body: dict[str, Any]
) -> None:
    response = client.patch(f"/users/{alice.id}", json=body, headers=admin.headers)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    seen = client.get(f"/users/{alice.id}", headers=admin.headers)
    assert seen.headers["ETag"] == '"1"'
    assert (seen.json()["name"], seen.json()["role"], seen.json()["disabled"]) == (
        "Alice",
        "user",
        False,
    )


# --- a provider's user ---------------------------------------------------------------------------


@pytest.fixture
def idp() -> Iterator[IdentityProvider]:
    provider = IdentityProvider()
    yield provider
    provider.stop()


@pytest.fixture
def with_provider(
    tmp_path: Path, idp: IdentityProvider
) -> Iterator[tuple[httpx.Client, Container]]:
    settings = make_settings(
        tmp_path / "data",
        oidc_issuer=idp.issuer,
        oidc_audience=AUDIENCE,
        oidc_jwks_url=f"{idp.issuer}/.well-known/jwks.json",
        oidc_groups_claim="cognito:groups",
        oidc_admin_group="ADMINS",
    )
    container = build(settings)
    try:
        with live_server(container) as url, httpx.Client(base_url=url, timeout=30) as client:
            yield client, container
    finally:
        container.close()


def test_a_disabled_provider_users_tokens_are_refused(
    with_provider: tuple[httpx.Client, Container], idp: IdentityProvider
) -> None:
    client, container = with_provider
    carol = {"Authorization": f"Bearer {idp.token()}"}
    carol_id = client.get("/users/me", headers=carol).json()["user"]["id"]  # enrolled
    # An administrator by the provider's group disables the account.
    groups: dict[str, Any] = {"cognito:groups": ["ADMINS"]}
    admin = {"Authorization": f"Bearer {idp.token(sub='idp-admin', **groups)}"}
    response = client.patch(f"/users/{carol_id}", json={"disabled": True}, headers=admin)
    assert response.status_code == 200, response.text
    for token in (carol, {"Authorization": f"Bearer {idp.token()}"}):
        refused = client.get("/users/me", headers=token)
        assert (refused.status_code, refused.json()) == (403, DISABLED)
        assert client.post("/todos", json={"description": "x"}, headers=token).status_code == 403
    assert container.users.get_by_username("carol").disabled
    client.patch(f"/users/{carol_id}", json={"disabled": False}, headers=admin)
    assert client.get("/users/me", headers=carol).status_code == 200
    assert container.users.get_by_username("carol").role is Role.USER
