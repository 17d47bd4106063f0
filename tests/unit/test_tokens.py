import base64
import json
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from nimbus.domain.errors import Unauthenticated
from nimbus.domain.users import Role
from nimbus.security.authenticator import Authenticator
from nimbus.security.tokens import AccessTokens
from tests.factories import a_user

KEY = b"k" * 32
NOW = datetime.now(UTC)
USER = a_user(username="alice", role=Role.ADMIN)


def _tokens(key: bytes = KEY, **overrides: Any) -> AccessTokens:
    options: dict[str, Any] = {
        "issuer": "nimbus",
        "audience": "nimbus",
        "ttl": timedelta(minutes=15),
    }
    return AccessTokens(key, **(options | overrides))


def _claims(**changes: Any) -> dict[str, Any]:
    issued = _tokens().issue(USER, frozenset({"todos"}), datetime.now(UTC), session_id="s1")
    return issued.claims | changes


def test_an_issued_token_verifies_to_its_principal() -> None:
    tokens = _tokens()
    issued = tokens.issue(USER, frozenset({"todos", "admin"}), datetime.now(UTC), session_id="s1")
    principal = tokens.verify(issued.token)
    assert principal.user_id == USER.id
    assert principal.username == "alice"
    assert principal.role is Role.ADMIN
    assert principal.groups == ("admins", "users")
    assert principal.scopes == {"todos", "admin"}
    assert issued.expires_in == 900
    assert issued.claims["exp"] - issued.claims["iat"] == 900


def test_each_token_has_its_own_jti() -> None:
    tokens = _tokens()
    first = tokens.issue(USER, frozenset(), datetime.now(UTC), session_id="s1").claims["jti"]
    assert (
        first != tokens.issue(USER, frozenset(), datetime.now(UTC), session_id="s1").claims["jti"]
    )


def _rejected(token: str) -> None:
    with pytest.raises(Unauthenticated):
        _tokens().verify(token)


def test_an_expired_token_is_rejected() -> None:
    past = int((NOW - timedelta(hours=1)).timestamp())
    _rejected(jwt.encode(_claims(iat=past, nbf=past, exp=past + 60), KEY, "HS256"))


def test_a_token_expired_within_the_leeway_is_still_accepted() -> None:
    just = int(datetime.now(UTC).timestamp()) - 10
    _tokens().verify(jwt.encode(_claims(exp=just), KEY, "HS256"))


def test_a_token_not_yet_valid_is_rejected() -> None:
    future = int((NOW + timedelta(hours=1)).timestamp())
    _rejected(jwt.encode(_claims(nbf=future, iat=future), KEY, "HS256"))


def test_a_token_signed_with_another_key_is_rejected() -> None:
    _rejected(jwt.encode(_claims(), b"x" * 32, "HS256"))


@pytest.mark.parametrize(("claim", "value"), [("iss", "evil"), ("aud", "other-app")])
def test_a_token_for_another_issuer_or_audience_is_rejected(claim: str, value: str) -> None:
    _rejected(jwt.encode(_claims(**{claim: value}), KEY, "HS256"))


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat", "sub", "jti", "iss", "aud"])
def test_a_token_missing_a_required_claim_is_rejected(claim: str) -> None:
    claims = _claims()
    del claims[claim]
    _rejected(jwt.encode(claims, KEY, "HS256"))


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_alg_none_is_rejected() -> None:
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}."
    _rejected(unsigned)


def test_a_tampered_payload_is_rejected() -> None:
    header, _, signature = (
        _tokens().issue(USER, frozenset(), datetime.now(UTC), session_id="s1").token.split(".")
    )
    forged = _b64(_claims(role="admin", sub="someone-else"))
    _rejected(f"{header}.{forged}.{signature}")


def test_a_token_in_any_other_algorithm_is_rejected() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _rejected(jwt.encode(_claims(), private, "RS256"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        hs512 = jwt.encode(_claims(), KEY, "HS512")  # the right key, the wrong algorithm
    _rejected(hs512)


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "....", "e30.e30.e30"])
def test_garbage_is_rejected(token: str) -> None:
    _rejected(token)


def test_claims_of_the_wrong_type_are_rejected() -> None:
    _rejected(jwt.encode(_claims(role="superuser"), KEY, "HS256"))
    _rejected(jwt.encode(_claims(username=None), KEY, "HS256"))
    _rejected(jwt.encode(_claims(groups="admins"), KEY, "HS256"))
    _rejected(jwt.encode(_claims(scope=["todos"]), KEY, "HS256"))


def test_a_token_verified_before_is_still_refused_once_it_expires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Verified tokens are remembered, but their expiry is checked again on every use."""
    import time

    tokens = _tokens(ttl=timedelta(minutes=1))
    issued = tokens.issue(USER, frozenset({"todos"}), datetime.now(UTC), session_id="s1")
    assert tokens.verify(issued.token).username == "alice"
    later = time.time() + 60 + 31  # past the expiry and the 30 s leeway
    monkeypatch.setattr("nimbus.security.tokens.time.time", lambda: later)
    with pytest.raises(Unauthenticated):
        tokens.verify(issued.token)


def test_remembered_claims_are_not_shared_between_uses() -> None:
    tokens = _tokens()
    issued = tokens.issue(USER, frozenset({"todos"}), datetime.now(UTC), session_id="s1")
    authenticator = Authenticator(tokens)
    authenticator.claims(issued.token)["username"] = "mallory"
    assert authenticator.claims(issued.token)["username"] == "alice"
    assert tokens.verify(issued.token).claims["username"] == "alice"
