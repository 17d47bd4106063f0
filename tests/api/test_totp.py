"""Two-step login with an authenticator app (TOTP, RFC 6238), over HTTP on every backend:
enrolment, the second step of /login and of the token endpoint, recovery codes, turning it
off, and the limits on codes."""

import re
import time
from typing import Any

import httpx
import jwt

from nimbus.container import Container
from nimbus.domain.audit import AuditKind
from nimbus.security.totp import code_at, step_at
from tests.factories import Account
from tests.support import PASSWORD

RECOVERY_CODE = re.compile(r"^[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}$")


def _code(secret: str, steps_ahead: int = 0) -> str:
    """The code an authenticator app shows now, or that many steps later (within the drift
    nimbus accepts)."""
    return code_at(secret, step_at(time.time()) + steps_ahead)


def _turn_on(client: httpx.Client, account: Account) -> tuple[str, list[str]]:
    """Enrol and confirm a TOTP factor; its secret and recovery codes. The code that confirms
    it is the present step's: a later login uses the next step's."""
    started = client.post(
        "/users/me/mfa/totp", json={"password": PASSWORD}, headers=account.headers
    )
    assert started.status_code == 201, started.text
    secret: str = started.json()["secret"]
    confirmed = client.post(
        "/users/me/mfa/totp/confirm", json={"code": _code(secret)}, headers=account.headers
    )
    assert confirmed.status_code == 200, confirmed.text
    codes: list[str] = confirmed.json()["recovery_codes"]
    return secret, codes


def _password_step(
    client: httpx.Client, username: str, methods: tuple[str, ...] = ("totp",)
) -> str:
    answer = client.post("/login", json={"username": username, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["mfa_required"] is True
    assert set(body) == {
        "mfa_required",
        "mfa_token",
        "expires_in",
        "methods",
    }  # no token of any use
    assert body["methods"] == list(methods)
    token: str = body["mfa_token"]
    return token


def _second_step(client: httpx.Client, mfa_token: str, code: str) -> httpx.Response:
    return client.post("/auth/mfa", json={"mfa_token": mfa_token, "code": code})


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _kinds(container: Container, account: Account) -> list[AuditKind]:
    return [e.kind for e in container.audit.list_all(subject=account.id, limit=50).items]


def test_enrolment_confirmed_by_a_code_turns_on_the_second_step(
    client: httpx.Client, alice: Account, container: Container
) -> None:
    started = client.post("/users/me/mfa/totp", json={"password": PASSWORD}, headers=alice.headers)
    assert started.status_code == 201
    assert started.headers["cache-control"] == "no-store"
    enrolment = started.json()
    secret = enrolment["secret"]
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    assert enrolment["otpauth_uri"].startswith("otpauth://totp/nimbus:alice?")
    assert f"secret={secret}" in enrolment["otpauth_uri"]
    assert enrolment["qr_svg"].startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    # Pending: a login still needs only the password.
    pending = client.post("/login", json={"username": "alice", "password": PASSWORD})
    assert "access_token" in pending.json()

    wrong = client.post(
        "/users/me/mfa/totp/confirm", json={"code": "000000"}, headers=alice.headers
    )
    if wrong.status_code == 200:  # one code in a million is the right one: use another
        wrong = client.post(
            "/users/me/mfa/totp/confirm", json={"code": "000001"}, headers=alice.headers
        )
    assert wrong.status_code in (400, 409)
    confirmed = client.post(
        "/users/me/mfa/totp/confirm", json={"code": _code(secret)}, headers=alice.headers
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.headers["cache-control"] == "no-store"
    codes = confirmed.json()["recovery_codes"]
    assert len(codes) == len(set(codes)) == 10
    assert all(RECOVERY_CODE.match(code) for code in codes)

    mfa_token = _password_step(client, "alice")
    refused = _second_step(client, mfa_token, "12345")
    assert refused.status_code == 401
    assert refused.json()["code"] == "invalid_code"
    passed = _second_step(client, mfa_token, _code(secret, 1))
    assert passed.status_code == 200, passed.text
    assert passed.headers["cache-control"] == "no-store"
    me = client.get("/users/me", headers=_bearer(passed.json()["access_token"]))
    assert me.status_code == 200
    assert me.json()["user"]["username"] == "alice"
    kinds = _kinds(container, alice)
    assert AuditKind.MFA_ENABLED in kinds
    assert AuditKind.MFA_FAILED in kinds


def test_a_code_works_once_and_a_step_token_for_one_login(
    client: httpx.Client, alice: Account
) -> None:
    secret = client.post(
        "/users/me/mfa/totp", json={"password": PASSWORD}, headers=alice.headers
    ).json()["secret"]
    confirming = _code(secret)
    confirmed = client.post(
        "/users/me/mfa/totp/confirm", json={"code": confirming}, headers=alice.headers
    )
    assert confirmed.status_code == 200
    # The code that confirmed the factor is spent: its step is the last accepted.
    spent = _second_step(client, _password_step(client, "alice"), confirming)
    assert spent.status_code == 401
    first = _password_step(client, "alice")
    code = _code(secret, 1)
    assert _second_step(client, first, code).status_code == 200
    replayed = _second_step(client, _password_step(client, "alice"), code)
    assert replayed.status_code == 401
    assert replayed.json()["code"] == "invalid_code"
    # The step token that passed is spent too.
    assert _second_step(client, first, _code(secret, 1)).status_code == 401


def test_recovery_codes_log_in_once_each(
    client: httpx.Client, alice: Account, container: Container
) -> None:
    _, codes = _turn_on(client, alice)
    typed = " " + codes[0].upper().replace("-", " - ") + " "  # as a person may type it
    passed = _second_step(client, _password_step(client, "alice"), typed.replace(" ", ""))
    assert passed.status_code == 200, passed.text
    spent = _second_step(client, _password_step(client, "alice"), codes[0])
    assert spent.status_code == 401
    assert _second_step(client, _password_step(client, "alice"), codes[1]).status_code == 200
    used = [
        e
        for e in container.audit.list_all(subject=alice.id, limit=50).items
        if e.kind is AuditKind.RECOVERY_CODE_USED
    ]
    assert [e.detail["left"] for e in used] == ["8", "9"]  # newest first
    # No code, secret or digest is in the trail.
    for event in container.audit.list_all(subject=alice.id, limit=50).items:
        assert not any(code.replace("-", "") in str(event.detail) for code in codes)


def test_the_token_endpoint_says_a_second_step_is_needed(
    client: httpx.Client, alice: Account
) -> None:
    secret, _ = _turn_on(client, alice)
    answer = client.post(
        "/auth/token",
        data={
            "grant_type": "password",
            "username": "alice",
            "password": PASSWORD,
            "scope": "todos",
        },
    )
    assert answer.status_code == 400
    body = answer.json()
    assert body["error"] == "invalid_grant"  # RFC 6749's: every client handles it
    assert body["code"] == "mfa_required"
    assert "access_token" not in body
    passed = _second_step(client, body["mfa_token"], _code(secret, 1))
    assert passed.status_code == 200, passed.text
    # The scope the login asked for is the scope it gets.
    claims = jwt.decode(passed.json()["access_token"], options={"verify_signature": False})
    assert claims["scope"] == "todos"
    # A wrong password is told as before: nothing says a factor is on.
    wrong = client.post(
        "/auth/token", data={"grant_type": "password", "username": "alice", "password": "nope"}
    )
    assert wrong.status_code == 400
    assert "mfa_token" not in wrong.json() or wrong.json()["mfa_token"] is None


def test_a_step_token_is_good_for_nothing_else(client: httpx.Client, alice: Account) -> None:
    _turn_on(client, alice)
    mfa_token = _password_step(client, "alice")
    assert client.get("/users/me", headers=_bearer(mfa_token)).status_code == 401
    reset = client.post(
        "/auth/password/reset", json={"token": mfa_token, "password": "a new long password 1"}
    )
    assert reset.status_code == 400
    assert reset.json()["code"] == "invalid_token"
    access_token = alice.headers["Authorization"].removeprefix("Bearer ")
    as_step = _second_step(client, access_token, "123456")
    assert as_step.status_code == 401
    assert as_step.json()["code"] == "invalid_mfa_token"
    for forged in ("", "x" * 3000):
        assert _second_step(client, forged, "123456").status_code == 422


def test_a_step_token_dies_when_the_password_changes(client: httpx.Client, alice: Account) -> None:
    secret, _ = _turn_on(client, alice)
    mfa_token = _password_step(client, "alice")
    new_password = "another correct horse"
    changed = client.patch(
        f"/users/{alice.id}",
        json={"password": new_password, "current_password": PASSWORD},
        headers=alice.headers,
    )
    assert changed.status_code == 200, changed.text
    refused = _second_step(client, mfa_token, _code(secret, 1))
    assert refused.status_code == 401
    assert refused.json()["code"] == "invalid_mfa_token"


def test_wrong_codes_are_limited_per_account(client: httpx.Client, alice: Account) -> None:
    secret, _ = _turn_on(client, alice)
    mfa_token = _password_step(client, "alice")
    right = _code(secret, 1)
    wrong = "000000" if right != "000000" else "000001"
    for _ in range(5):
        assert _second_step(client, mfa_token, wrong).status_code == 401
    limited = _second_step(client, mfa_token, right)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0
    # A new login does not start the count again: it is the account's.
    assert _second_step(client, _password_step(client, "alice"), right).status_code == 429


def test_turning_it_off_takes_the_password_and_a_code(
    client: httpx.Client, alice: Account, container: Container
) -> None:
    secret, codes = _turn_on(client, alice)
    again = client.post("/users/me/mfa/totp", json={"password": PASSWORD}, headers=alice.headers)
    assert again.status_code == 409
    assert again.json()["code"] == "mfa_enabled"

    def turn_off(password: str, code: str) -> httpx.Response:
        return client.request(
            "DELETE",
            "/users/me/mfa/totp",
            json={"password": password, "code": code},
            headers=alice.headers,
        )

    assert turn_off("not the password", _code(secret, 1)).status_code == 403
    wrong_code = turn_off(PASSWORD, codes[0][::-1])
    assert wrong_code.status_code == 403  # a client mistake: the session is fine
    assert wrong_code.json()["code"] == "invalid_code"
    assert client.get("/users/me", headers=alice.headers).status_code == 200
    assert turn_off(PASSWORD, _code(secret, 1)).status_code == 204
    assert turn_off(PASSWORD, _code(secret, 1)).status_code == 404
    back = client.post("/login", json={"username": "alice", "password": PASSWORD})
    assert "access_token" in back.json()
    assert AuditKind.MFA_DISABLED in _kinds(container, alice)
    # A factor can be enrolled again, with a new secret.
    restarted = client.post(
        "/users/me/mfa/totp", json={"password": PASSWORD}, headers=alice.headers
    )
    assert restarted.status_code == 201
    assert restarted.json()["secret"] != secret


def test_confirming_with_nothing_pending_is_a_conflict(
    client: httpx.Client, alice: Account
) -> None:
    refused = client.post(
        "/users/me/mfa/totp/confirm", json={"code": "123456"}, headers=alice.headers
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "mfa_not_pending"
    # Each answer needs a signed-in account.
    for method, path in (
        ("POST", "/users/me/mfa/totp"),
        ("POST", "/users/me/mfa/totp/confirm"),
        ("DELETE", "/users/me/mfa/totp"),
    ):
        body: dict[str, Any] = {"code": "123456", "password": PASSWORD}
        assert client.request(method, path, json=body).status_code == 401


def test_the_account_says_whether_two_step_login_is_on(
    client: httpx.Client, alice: Account
) -> None:
    def status() -> dict[str, Any]:
        answer = client.get("/users/me/mfa", headers=alice.headers)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    assert client.get("/users/me/mfa").status_code == 401
    assert status() == {"totp": "off", "recovery_codes_left": 0}
    secret = client.post(
        "/users/me/mfa/totp", json={"password": PASSWORD}, headers=alice.headers
    ).json()["secret"]
    assert status() == {"totp": "pending", "recovery_codes_left": 0}
    confirmed = client.post(
        "/users/me/mfa/totp/confirm", json={"code": _code(secret)}, headers=alice.headers
    )
    assert confirmed.status_code == 200, confirmed.text
    assert status() == {"totp": "on", "recovery_codes_left": 10}
    codes = confirmed.json()["recovery_codes"]
    assert _second_step(client, _password_step(client, "alice"), codes[0]).status_code == 200
    assert status() == {"totp": "on", "recovery_codes_left": 9}
    off = client.request(
        "DELETE",
        "/users/me/mfa/totp",
        json={"password": PASSWORD, "code": _code(secret, 1)},
        headers=alice.headers,
    )
    assert off.status_code == 204, off.text
    assert status() == {"totp": "off", "recovery_codes_left": 0}
