"""Every change to how an account logs in (enrolling or turning off an authenticator app,
adding or removing a passkey) takes a full re-authentication, over HTTP on every backend: the
password, and when the account has a second factor, one of them. A refused proof is a 403, as
a client mistake: the session goes on. And every way of logging in refuses a disabled account
once its credentials pass."""

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from nimbus.bootstrap import build
from nimbus.container import Container
from nimbus.domain.audit import AuditKind
from nimbus.storage import open_storage
from tests.api.test_passkeys import passkey_proof
from tests.api.test_totp import _code, _password_step, _second_step, _turn_on
from tests.factories import Account
from tests.support import PASSWORD, live_server, log_in, sign_up
from tests.webauthn_authenticator import SoftAuthenticator


@pytest.fixture
def authenticator(container: Container) -> SoftAuthenticator:
    return SoftAuthenticator(origin=container.settings.resolved_webauthn_origins[0])


def _add_passkey(
    client: httpx.Client, account: Account, authenticator: SoftAuthenticator, proof: dict[str, Any]
) -> str:
    started = client.post("/users/me/passkeys/options", json=proof, headers=account.headers)
    assert started.status_code == 200, started.text
    ceremony = started.json()
    body = {
        "challenge_token": ceremony["challenge_token"],
        "credential": authenticator.create(ceremony["options"]),
    }
    added = client.post("/users/me/passkeys", json=body, headers=account.headers)
    assert added.status_code == 201, added.text
    passkey_id: str = added.json()["id"]
    return passkey_id


def _passkey_login(client: httpx.Client, authenticator: SoftAuthenticator) -> httpx.Response:
    """A login with a passkey alone, the authenticator's first."""
    login = client.post("/auth/passkey/options").json()
    answer = {
        "challenge_token": login["challenge_token"],
        "credential": authenticator.get(login["options"]),
    }
    return client.post("/auth/passkey", json=answer)


def _passkeys(client: httpx.Client, account: Account) -> list[str]:
    listed = client.get("/users/me/passkeys", headers=account.headers).json()["items"]
    return [p["id"] for p in listed]


def _totp(client: httpx.Client, account: Account) -> str:
    status: str = client.get("/users/me/mfa", headers=account.headers).json()["totp"]
    return status


# A change to the account's factors, sent with a proof.
Change = Callable[[httpx.Client, Account, dict[str, Any]], httpx.Response]


def _enrol(client: httpx.Client, account: Account, proof: dict[str, Any]) -> httpx.Response:
    return client.post("/users/me/mfa/totp", json=proof, headers=account.headers)


def _disable(client: httpx.Client, account: Account, proof: dict[str, Any]) -> httpx.Response:
    return client.request("DELETE", "/users/me/mfa/totp", json=proof, headers=account.headers)


def _register(client: httpx.Client, account: Account, proof: dict[str, Any]) -> httpx.Response:
    return client.post("/users/me/passkeys/options", json=proof, headers=account.headers)


def _remove(client: httpx.Client, account: Account, proof: dict[str, Any]) -> httpx.Response:
    first = next(iter(_passkeys(client, account)), "AAAA")
    return client.request(
        "DELETE", f"/users/me/passkeys/{first}", json=proof, headers=account.headers
    )


def _state(client: httpx.Client, account: Account) -> tuple[str, list[str]]:
    return _totp(client, account), _passkeys(client, account)


@pytest.mark.parametrize(
    ("change", "success"),
    [(_enrol, 201), (_register, 200)],
    ids=["enrol-totp", "passkey-options"],
)
def test_adding_the_first_factor_takes_the_password(
    client: httpx.Client, alice: Account, change: Change, success: int
) -> None:
    missing = change(client, alice, {})
    assert missing.status_code == 422
    wrong = change(client, alice, {"password": "not the password"})
    assert (wrong.status_code, wrong.json()["code"]) == (403, "current_password_invalid")
    assert _state(client, alice) == ("off", [])
    assert client.get("/users/me", headers=alice.headers).status_code == 200
    assert change(client, alice, {"password": PASSWORD}).status_code == success


@pytest.mark.parametrize(
    ("change", "success"),
    [(_register, 200), (_disable, 204)],
    ids=["passkey-options", "disable-totp"],
)
def test_with_an_authenticator_app_on_a_change_takes_a_code_too(
    client: httpx.Client, alice: Account, change: Change, success: int
) -> None:
    secret, codes = _turn_on(client, alice)
    before = _state(client, alice)
    # The password alone (a thief's, with a stolen access token) changes nothing.
    alone = change(client, alice, {"password": PASSWORD})
    assert (alone.status_code, alone.json()["code"]) == (403, "second_factor_required")
    assert "authenticator app" in alone.json()["message"]
    wrong = change(client, alice, {"password": PASSWORD, "code": codes[0][::-1]})
    assert (wrong.status_code, wrong.json()["code"]) == (403, "invalid_code")
    no_password = change(client, alice, {"password": "not it", "code": _code(secret, 1)})
    assert (no_password.status_code, no_password.json()["code"]) == (
        403,
        "current_password_invalid",
    )
    assert _state(client, alice) == before
    assert client.get("/users/me", headers=alice.headers).status_code == 200  # still signed in
    # A recovery code serves as well as the app's code.
    assert change(client, alice, {"password": PASSWORD, "code": codes[0]}).status_code == success


@pytest.mark.parametrize(
    ("change", "success", "after", "replayed"),
    [
        (_enrol, 201, ("pending", 1), (403, "invalid_challenge")),
        (_register, 200, ("off", 1), (403, "invalid_challenge")),
        # No factor is left: the password alone passes, and finds no passkey.
        (_remove, 204, ("off", 0), (404, "passkey_not_found")),
    ],
    ids=["enrol-totp", "passkey-options", "remove-passkey"],
)
def test_with_a_passkey_a_change_takes_a_passkey_too(
    client: httpx.Client,
    alice: Account,
    authenticator: SoftAuthenticator,
    change: Change,
    success: int,
    after: tuple[str, int],
    replayed: tuple[int, str],
) -> None:
    _add_passkey(client, alice, authenticator, {"password": PASSWORD})
    before = _state(client, alice)
    alone = change(client, alice, {"password": PASSWORD})
    assert (alone.status_code, alone.json()["code"]) == (403, "second_factor_required")
    assert "passkey" in alone.json()["message"]
    # A code is no proof for an account with no authenticator app.
    code = change(client, alice, {"password": PASSWORD, "code": "123456"})
    assert (code.status_code, code.json()["code"]) == (403, "second_factor_required")
    # A passkey's answer with a wrong password is refused.
    proof = passkey_proof(client, alice, authenticator)
    wrong = change(client, alice, proof | {"password": "not it"})
    assert (wrong.status_code, wrong.json()["code"]) == (403, "current_password_invalid")
    assert _state(client, alice) == before

    passed = change(client, alice, proof)
    assert passed.status_code == success, passed.text
    again = change(client, alice, proof)  # an answer proves once
    assert (again.status_code, again.json()["code"]) == replayed
    assert client.get("/users/me", headers=alice.headers).status_code == 200
    totp, passkeys = _state(client, alice)
    assert (totp, len(passkeys)) == after


def test_a_passkey_answer_proves_only_its_own_account(
    client: httpx.Client, alice: Account, bob: Account, authenticator: SoftAuthenticator
) -> None:
    _add_passkey(client, alice, authenticator, {"password": PASSWORD})
    _add_passkey(client, bob, authenticator, {"password": PASSWORD})
    bobs = passkey_proof(client, bob, authenticator)
    crossed = _enrol(client, alice, bobs)
    assert (crossed.status_code, crossed.json()["code"]) == (403, "invalid_challenge")
    # Alice's challenge, answered by Bob's passkey.
    started = client.post("/users/me/passkeys/verify/options", headers=alice.headers).json()
    (bob_passkey,) = _passkeys(client, bob)
    answer = authenticator.get(started["options"], credential_id=bob_passkey)
    forged = {
        "password": PASSWORD,
        "passkey": {"challenge_token": started["challenge_token"], "credential": answer},
    }
    refused = _enrol(client, alice, forged)
    assert (refused.status_code, refused.json()["code"]) == (403, "invalid_passkey")
    assert _totp(client, alice) == "off"


def test_a_code_and_a_passkey_together_are_refused(client: httpx.Client, alice: Account) -> None:
    passkey = {"challenge_token": "t", "credential": {}}
    both = {"password": PASSWORD, "code": "123456", "passkey": passkey}
    assert _enrol(client, alice, both).status_code == 422


def test_a_passkeys_registration_needs_a_challenge_from_a_reauthentication(
    client: httpx.Client, alice: Account, authenticator: SoftAuthenticator
) -> None:
    """The registration itself takes only the challenge token: a token of any other kind, or
    used already, is a 400 and registers nothing."""
    started = client.post("/auth/passkey/options").json()  # a login's challenge
    body = {
        "challenge_token": started["challenge_token"],
        "credential": authenticator.create(
            {
                "challenge": started["options"]["challenge"],
                "rp": {"id": started["options"]["rpId"], "name": "nimbus"},
                "user": {"id": "YWxpY2U", "name": "alice", "displayName": "alice"},
            }
        ),
    }
    refused = client.post("/users/me/passkeys", json=body, headers=alice.headers)
    assert (refused.status_code, refused.json()["code"]) == (400, "invalid_challenge")
    assert _passkeys(client, alice) == []
    assert client.get("/users/me", headers=alice.headers).status_code == 200


def test_a_refused_registration_says_nothing_of_the_library(
    client: httpx.Client, alice: Account, authenticator: SoftAuthenticator, container: Container
) -> None:
    ceremony = _register(client, alice, {"password": PASSWORD}).json()
    credential = authenticator.create(ceremony["options"], origin="https://evil.example")
    refused = client.post(
        "/users/me/passkeys",
        json={"challenge_token": ceremony["challenge_token"], "credential": credential},
        headers=alice.headers,
    )
    assert (refused.status_code, refused.json()["code"]) == (400, "invalid_passkey")
    assert "evil.example" not in refused.text
    assert "expected" not in refused.text.lower()
    # The reason is in the audit trail, for the operator.
    events = container.audit.list_all(subject=alice.id, limit=20).items
    (event,) = [e for e in events if e.kind is AuditKind.PASSKEY_REFUSED]
    assert event.detail["reason"] == "registration"
    assert event.detail["why"]


def test_a_disabled_account_is_refused_by_every_way_of_logging_in(
    client: httpx.Client,
    alice: Account,
    admin: Account,
    authenticator: SoftAuthenticator,
    container: Container,
) -> None:
    secret, _ = _turn_on(client, alice)
    _add_passkey(client, alice, authenticator, {"password": PASSWORD, "code": _code(secret, 1)})
    pending = _password_step(client, "alice", methods=("totp", "passkey"))
    disabled = client.patch(f"/users/{alice.id}", json={"disabled": True}, headers=admin.headers)
    assert disabled.status_code == 200, disabled.text

    password = client.post("/login", json={"username": "alice", "password": PASSWORD})
    assert (password.status_code, password.json()["code"]) == (403, "account_disabled")
    code = _second_step(client, pending, _code(secret, 1))
    assert (code.status_code, code.json()["code"]) == (403, "account_disabled")
    step_options = client.post("/auth/mfa/passkey/options", json={"mfa_token": pending})
    assert step_options.status_code == 200, step_options.text
    ceremony = step_options.json()
    passkey_step = client.post(
        "/auth/mfa",
        json={
            "mfa_token": pending,
            "challenge_token": ceremony["challenge_token"],
            "credential": authenticator.get(ceremony["options"]),
        },
    )
    assert (passkey_step.status_code, passkey_step.json()["code"]) == (403, "account_disabled")
    alone = _passkey_login(client, authenticator)
    assert (alone.status_code, alone.json()["code"]) == (403, "account_disabled")
    # Each refused before the passkey's use was recorded.
    (passkey,) = container.storage.passkeys.list_for(alice.id)
    assert passkey.last_used_at is None


def test_a_spent_step_token_uses_up_no_code(client: httpx.Client, alice: Account) -> None:
    secret, codes = _turn_on(client, alice)
    spent = _password_step(client, "alice")
    assert _second_step(client, spent, codes[0]).status_code == 200
    for code in (_code(secret, 1), codes[1]):
        replayed = _second_step(client, spent, code)
        assert (replayed.status_code, replayed.json()["code"]) == (401, "invalid_mfa_token")
        # The code is still good for a login of its own.
        passed = _second_step(client, _password_step(client, "alice"), code)
        assert passed.status_code == 200, passed.text


def test_a_removal_of_no_passkey_spends_no_proof(client: httpx.Client, alice: Account) -> None:
    secret, _ = _turn_on(client, alice)
    code = _code(secret, 1)
    proof = {"password": PASSWORD, "code": code}
    stale = client.request("DELETE", "/users/me/passkeys/AAAA", json=proof, headers=alice.headers)
    assert (stale.status_code, stale.json()["code"]) == (404, "passkey_not_found")
    # The code was not used up: it still turns the app off.
    assert _disable(client, alice, proof).status_code == 204


def test_a_passkeys_answer_removes_once(
    client: httpx.Client, alice: Account, authenticator: SoftAuthenticator
) -> None:
    first = _add_passkey(client, alice, authenticator, {"password": PASSWORD})
    second = _add_passkey(client, alice, authenticator, passkey_proof(client, alice, authenticator))
    proof = passkey_proof(client, alice, authenticator, credential_id=first)
    removed = client.request(
        "DELETE", f"/users/me/passkeys/{first}", json=proof, headers=alice.headers
    )
    assert removed.status_code == 204, removed.text
    again = client.request(
        "DELETE", f"/users/me/passkeys/{second}", json=proof, headers=alice.headers
    )
    assert (again.status_code, again.json()["code"]) == (403, "invalid_challenge")
    assert _passkeys(client, alice) == [second]


def test_a_code_proves_once(client: httpx.Client, alice: Account) -> None:
    secret, _ = _turn_on(client, alice)
    proof = {"password": PASSWORD, "code": _code(secret, 1)}
    assert _register(client, alice, proof).status_code == 200
    replayed = _register(client, alice, proof)
    assert (replayed.status_code, replayed.json()["code"]) == (403, "invalid_code")


def test_a_login_challenge_is_no_proof(
    client: httpx.Client, alice: Account, authenticator: SoftAuthenticator
) -> None:
    _add_passkey(client, alice, authenticator, {"password": PASSWORD})
    login = client.post("/auth/passkey/options").json()
    answer = {
        "challenge_token": login["challenge_token"],
        "credential": authenticator.get(login["options"]),
    }
    refused = _enrol(client, alice, {"password": PASSWORD, "passkey": answer})
    assert (refused.status_code, refused.json()["code"]) == (403, "invalid_challenge")
    # Nor the other way: a proof's challenge logs no one in.
    proof = passkey_proof(client, alice, authenticator)
    logged_in = client.post("/auth/passkey", json=proof["passkey"])
    assert (logged_in.status_code, logged_in.json()["code"]) == (401, "invalid_challenge")


def test_a_proof_by_passkey_needs_a_passkey(client: httpx.Client, alice: Account) -> None:
    answer = client.post("/users/me/passkeys/verify/options", headers=alice.headers)
    assert (answer.status_code, answer.json()["code"]) == (404, "passkey_not_found")


def test_a_wrong_app_code_leaves_the_step_open_and_a_wrong_recovery_code_ends_it(
    client: httpx.Client, alice: Account
) -> None:
    secret, codes = _turn_on(client, alice)
    step = _password_step(client, "alice")
    right = _code(secret, 1)
    wrong = "000000" if right != "000000" else "000001"
    assert _second_step(client, step, wrong).json()["code"] == "invalid_code"
    assert _second_step(client, step, right).status_code == 200
    step = _password_step(client, "alice")
    assert _second_step(client, step, codes[0][::-1]).json()["code"] == "invalid_code"
    ended = _second_step(client, step, codes[0])
    assert (ended.status_code, ended.json()["code"]) == (401, "invalid_mfa_token")
    # The recovery code itself was not used up.
    assert _second_step(client, _password_step(client, "alice"), codes[0]).status_code == 200


def test_with_verified_emails_required_an_unverified_account_cannot_log_in_with_a_passkey(
    client: httpx.Client, container: Container, authenticator: SoftAuthenticator
) -> None:
    # Signed up and given a passkey while verification is not required; then it is.
    sign_up(client, "una", email="una@example.com")
    una = Account("", "una", {"Authorization": f"Bearer {log_in(client, 'una')}"})
    _add_passkey(client, una, authenticator, {"password": PASSWORD})
    strict = container.settings.model_copy(update={"require_verified_email": True})
    storage = open_storage(strict.resolved_database_url, timeout=strict.database_timeout)
    built = build(strict, storage=storage)
    try:
        with live_server(built) as url, httpx.Client(base_url=url, timeout=30) as other:
            alone = _passkey_login(other, authenticator)
            assert (alone.status_code, alone.json()["code"]) == (403, "email_not_verified")
            step = other.post("/login", json={"username": "una", "password": PASSWORD})
            assert (step.status_code, step.json()["code"]) == (403, "email_not_verified")
    finally:
        built.close()
