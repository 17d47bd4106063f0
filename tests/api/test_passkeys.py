"""Passkeys (WebAuthn) over HTTP on every backend, with a software authenticator: registering
them, a login with one alone, one as the second step after the password, and what is refused
(another origin or RP ID, a challenge used twice, a cloned authenticator, a removal without
the password or of another account's passkey)."""

from typing import Any

import httpx
import pytest

from nimbus.container import Container
from nimbus.domain.audit import AuditKind
from tests.factories import Account
from tests.support import PASSWORD
from tests.webauthn_authenticator import SoftAuthenticator, unb64url


@pytest.fixture
def authenticator(container: Container) -> SoftAuthenticator:
    return SoftAuthenticator(origin=container.settings.resolved_webauthn_origins[0])


def _kinds(container: Container, account: Account) -> list[AuditKind]:
    return [e.kind for e in container.audit.list_all(subject=account.id, limit=50).items]


def passkey_proof(
    client: httpx.Client,
    account: Account,
    authenticator: SoftAuthenticator,
    credential_id: str | None = None,
) -> dict[str, Any]:
    """A re-authentication with the password and one of the account's passkeys."""
    started = client.post("/users/me/passkeys/verify/options", headers=account.headers)
    assert started.status_code == 200, started.text
    ceremony = started.json()
    credential = authenticator.get(ceremony["options"], credential_id=credential_id)
    answer = {"challenge_token": ceremony["challenge_token"], "credential": credential}
    return {"password": PASSWORD, "passkey": answer}


def proof_for(
    client: httpx.Client, account: Account, authenticator: SoftAuthenticator
) -> dict[str, Any]:
    """The re-authentication a change to the account's factors takes: the password, and one
    of its passkeys if it has any."""
    if client.get("/users/me/passkeys", headers=account.headers).json()["items"]:
        return passkey_proof(client, account, authenticator)
    return {"password": PASSWORD}


def _options(
    client: httpx.Client, account: Account, authenticator: SoftAuthenticator
) -> dict[str, Any]:
    proof = proof_for(client, account, authenticator)
    started = client.post("/users/me/passkeys/options", json=proof, headers=account.headers)
    assert started.status_code == 200, started.text
    ceremony: dict[str, Any] = started.json()
    return ceremony


def _register(
    client: httpx.Client,
    account: Account,
    authenticator: SoftAuthenticator,
    name: str,
    proof: dict[str, Any] | None = None,
) -> dict[str, Any]:
    proof = proof or proof_for(client, account, authenticator)
    started = client.post("/users/me/passkeys/options", json=proof, headers=account.headers)
    assert started.status_code == 200, started.text
    assert started.headers["cache-control"] == "no-store"
    ceremony = started.json()
    credential = authenticator.create(ceremony["options"])
    added = client.post(
        "/users/me/passkeys",
        json={
            "challenge_token": ceremony["challenge_token"],
            "credential": credential,
            "name": name,
        },
        headers=account.headers,
    )
    assert added.status_code == 201, added.text
    body: dict[str, Any] = added.json()
    return body


def _login_options(client: httpx.Client) -> dict[str, Any]:
    started = client.post("/auth/passkey/options")
    assert started.status_code == 200, started.text
    ceremony: dict[str, Any] = started.json()
    return ceremony


def _passkey_login(
    client: httpx.Client, ceremony: dict[str, Any], credential: dict[str, Any]
) -> httpx.Response:
    return client.post(
        "/auth/passkey",
        json={"challenge_token": ceremony["challenge_token"], "credential": credential},
    )


def _whoami(client: httpx.Client, answer: httpx.Response) -> str:
    token = answer.json()["access_token"]
    me = client.get("/users/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    username: str = me.json()["user"]["username"]
    return username


def test_two_passkeys_each_log_in_alone(
    client: httpx.Client, alice: Account, container: Container, authenticator: SoftAuthenticator
) -> None:
    laptop = _register(client, alice, authenticator, "Laptop")
    phone = _register(client, alice, authenticator, "Phone")
    assert laptop["name"] == "Laptop"
    assert laptop["last_used_at"] is None
    listed = client.get("/users/me/passkeys", headers=alice.headers)
    assert listed.status_code == 200
    assert [p["id"] for p in listed.json()["items"]] == [laptop["id"], phone["id"]]

    for passkey in (laptop, phone):
        ceremony = _login_options(client)
        options = ceremony["options"]
        assert options["userVerification"] == "required"
        assert options.get("allowCredentials", []) == []
        assert options["rpId"] == container.settings.resolved_webauthn_rp_id
        answer = _passkey_login(
            client, ceremony, authenticator.get(options, credential_id=passkey["id"])
        )
        assert answer.status_code == 200, answer.text
        assert "refresh_token" in answer.json()
        assert _whoami(client, answer) == "alice"
    used = client.get("/users/me/passkeys", headers=alice.headers).json()["items"]
    assert all(p["last_used_at"] is not None for p in used)
    kinds = _kinds(container, alice)
    assert kinds.count(AuditKind.PASSKEY_ADDED) == 2
    logins = [
        e for e in container.audit.list_all(subject=alice.id, limit=50).items
        if e.kind is AuditKind.LOGIN_OK and e.detail.get("method") == "passkey"
    ]  # fmt: skip
    assert len(logins) == 2


def test_registration_excludes_the_accounts_own_passkeys(
    client: httpx.Client, alice: Account, authenticator: SoftAuthenticator
) -> None:
    first = _register(client, alice, authenticator, "Laptop")
    options = _options(client, alice, authenticator)["options"]
    assert [c["id"] for c in options["excludeCredentials"]] == [first["id"]]
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"


def test_a_passkey_is_a_second_factor_after_the_password(
    client: httpx.Client, alice: Account, container: Container, authenticator: SoftAuthenticator
) -> None:
    passkey = _register(client, alice, authenticator, "Laptop")
    step = client.post("/login", json={"username": "alice", "password": PASSWORD})
    assert step.status_code == 200, step.text
    assert step.json()["mfa_required"] is True
    assert step.json()["methods"] == ["passkey"]
    mfa_token = step.json()["mfa_token"]
    started = client.post("/auth/mfa/passkey/options", json={"mfa_token": mfa_token})
    assert started.status_code == 200, started.text
    ceremony = started.json()
    assert [c["id"] for c in ceremony["options"]["allowCredentials"]] == [passkey["id"]]
    credential = authenticator.get(ceremony["options"])
    body = {"mfa_token": mfa_token, "challenge_token": ceremony["challenge_token"]}
    passed = client.post("/auth/mfa", json=body | {"credential": credential})
    assert passed.status_code == 200, passed.text
    assert _whoami(client, passed) == "alice"
    # The step token and the challenge are spent.
    again = client.post(
        "/auth/mfa", json=body | {"credential": authenticator.get(ceremony["options"])}
    )
    assert again.status_code == 401


def test_a_second_step_takes_only_the_accounts_own_passkey(
    client: httpx.Client, alice: Account, bob: Account, authenticator: SoftAuthenticator
) -> None:
    _register(client, alice, authenticator, "Alice's")
    bobs = _register(client, bob, authenticator, "Bob's")
    mfa_token = client.post("/login", json={"username": "alice", "password": PASSWORD}).json()[
        "mfa_token"
    ]
    ceremony = client.post("/auth/mfa/passkey/options", json={"mfa_token": mfa_token}).json()
    credential = authenticator.get(ceremony["options"], credential_id=bobs["id"])
    body = {"mfa_token": mfa_token, "challenge_token": ceremony["challenge_token"]}
    refused = client.post("/auth/mfa", json=body | {"credential": credential})
    assert refused.status_code == 401
    assert refused.json()["code"] == "invalid_passkey"


def test_totp_and_passkey_are_both_offered(
    client: httpx.Client, alice: Account, authenticator: SoftAuthenticator
) -> None:
    from tests.api.test_totp import _code, _turn_on

    secret, _ = _turn_on(client, alice)
    _register(
        client, alice, authenticator, "Laptop", {"password": PASSWORD, "code": _code(secret, 1)}
    )
    step = client.post("/login", json={"username": "alice", "password": PASSWORD})
    assert step.json()["methods"] == ["totp", "passkey"]


@pytest.mark.parametrize("mistake", ["origin", "rp_id"])
def test_another_origin_or_rp_id_is_refused(
    client: httpx.Client,
    alice: Account,
    container: Container,
    authenticator: SoftAuthenticator,
    mistake: str,
) -> None:
    origin = "https://evil.example" if mistake == "origin" else None
    rp_id = "evil.example" if mistake == "rp_id" else None
    started = _options(client, alice, authenticator)
    credential = authenticator.create(started["options"], origin=origin, rp_id=rp_id)
    refused = client.post(
        "/users/me/passkeys",
        json={"challenge_token": started["challenge_token"], "credential": credential},
        headers=alice.headers,
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["code"] == "invalid_passkey"
    assert client.get("/users/me/passkeys", headers=alice.headers).json()["items"] == []

    passkey = _register(client, alice, authenticator, "Laptop")
    ceremony = _login_options(client)
    credential = authenticator.get(
        ceremony["options"], credential_id=passkey["id"], origin=origin, rp_id=rp_id
    )
    answer = _passkey_login(client, ceremony, credential)
    assert answer.status_code == 401
    assert answer.json()["code"] == "invalid_passkey"
    assert AuditKind.PASSKEY_REFUSED in _kinds(container, alice)


def test_a_challenge_works_once(
    client: httpx.Client, alice: Account, authenticator: SoftAuthenticator
) -> None:
    passkey = _register(client, alice, authenticator, "Laptop")
    ceremony = _login_options(client)
    assert (
        _passkey_login(client, ceremony, authenticator.get(ceremony["options"])).status_code == 200
    )
    replayed = _passkey_login(client, ceremony, authenticator.get(ceremony["options"]))
    assert replayed.status_code == 401
    assert replayed.json()["code"] == "invalid_challenge"
    # A registration challenge is no login challenge, nor the other way.
    started = _options(client, alice, authenticator)
    crossed = _passkey_login(
        client,
        {"challenge_token": started["challenge_token"]},
        authenticator.get(
            started["options"] | {"allowCredentials": []}, credential_id=passkey["id"]
        ),
    )
    assert crossed.status_code == 401
    assert crossed.json()["code"] == "invalid_challenge"


def test_a_cloned_authenticator_is_refused(
    client: httpx.Client, alice: Account, container: Container, authenticator: SoftAuthenticator
) -> None:
    _register(client, alice, authenticator, "Laptop")
    clone = authenticator.clone()
    ceremony = _login_options(client)
    assert (
        _passkey_login(client, ceremony, authenticator.get(ceremony["options"])).status_code == 200
    )
    ceremony = _login_options(client)
    copied = _passkey_login(client, ceremony, clone.get(ceremony["options"]))
    assert copied.status_code == 401
    assert copied.json()["code"] == "invalid_passkey"
    refused = [
        e for e in container.audit.list_all(subject=alice.id, limit=50).items
        if e.kind is AuditKind.PASSKEY_REFUSED
    ]  # fmt: skip
    assert [e.detail["reason"] for e in refused] == ["counter"]


def test_login_alone_needs_user_verification(
    client: httpx.Client, alice: Account, authenticator: SoftAuthenticator
) -> None:
    _register(client, alice, authenticator, "Laptop")
    authenticator.user_verified = False
    ceremony = _login_options(client)
    answer = _passkey_login(client, ceremony, authenticator.get(ceremony["options"]))
    assert answer.status_code == 401


def test_a_credential_is_registered_to_one_account(
    client: httpx.Client, alice: Account, bob: Account, authenticator: SoftAuthenticator
) -> None:
    started = _options(client, alice, authenticator)
    credential = authenticator.create(started["options"])
    body = {"challenge_token": started["challenge_token"], "credential": credential}
    assert client.post("/users/me/passkeys", json=body, headers=alice.headers).status_code == 201
    # Bob's authenticator makes a credential with Alice's id, for his own challenge.
    bob_started = _options(client, bob, authenticator)
    forged = authenticator.create(bob_started["options"], credential_id=unb64url(credential["id"]))
    taken = client.post(
        "/users/me/passkeys",
        json={"challenge_token": bob_started["challenge_token"], "credential": forged},
        headers=bob.headers,
    )
    assert taken.status_code == 409, taken.text
    assert taken.json()["code"] == "passkey_registered"
    assert client.get("/users/me/passkeys", headers=bob.headers).json()["items"] == []


def test_removal_needs_a_full_reauthentication_and_is_the_owners_only(
    client: httpx.Client,
    alice: Account,
    bob: Account,
    container: Container,
    authenticator: SoftAuthenticator,
) -> None:
    passkey = _register(client, alice, authenticator, "Laptop")
    path = f"/users/me/passkeys/{passkey['id']}"
    wrong = client.request("DELETE", path, json={"password": "not it"}, headers=alice.headers)
    assert wrong.status_code == 403
    assert wrong.json()["code"] == "current_password_invalid"
    missing = client.request("DELETE", path, headers=alice.headers)
    assert missing.status_code == 422
    others = client.request("DELETE", path, json={"password": PASSWORD}, headers=bob.headers)
    assert others.status_code == 404
    assert len(client.get("/users/me/passkeys", headers=alice.headers).json()["items"]) == 1
    alone = client.request("DELETE", path, json={"password": PASSWORD}, headers=alice.headers)
    assert alone.status_code == 403
    assert alone.json()["code"] == "second_factor_required"
    proof = passkey_proof(client, alice, authenticator)
    removed = client.request("DELETE", path, json=proof, headers=alice.headers)
    assert removed.status_code == 204
    assert client.get("/users/me/passkeys", headers=alice.headers).json()["items"] == []
    assert AuditKind.PASSKEY_REMOVED in _kinds(container, alice)
    # No passkey left: the password alone logs in again.
    login = client.post("/login", json={"username": "alice", "password": PASSWORD})
    assert "access_token" in login.json()


def test_bad_input_is_a_4xx(client: httpx.Client, alice: Account) -> None:
    ceremony = _login_options(client)
    for credential in ({}, {"id": "x", "response": {"clientDataJSON": "!!"}}, {"response": 3}):
        answer = _passkey_login(client, ceremony, credential)
        assert 400 <= answer.status_code < 500, answer.text
        assert "code" in answer.json()
    forged = _passkey_login(client, {"challenge_token": "not.a.token"}, {"id": "x"})
    assert forged.status_code in (400, 401)
    mixed = client.post("/auth/mfa", json={"mfa_token": "t", "code": "123456", "credential": {}})
    assert mixed.status_code == 422
