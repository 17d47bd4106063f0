"""Link tokens (nimbus.security.links): each kind verifies as itself and as nothing else."""

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from nimbus.security.links import InvalidLink, LinkKind, LinkTokens
from nimbus.security.macs import Mac

KEY = b"k" * 32
NOW = datetime.now(UTC)
TTL = timedelta(minutes=30)


def _links(key: bytes = KEY, purpose: str = "links") -> LinkTokens:
    return LinkTokens(Mac(key, purpose=purpose), issuer="nimbus", audience="nimbus")


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def test_a_token_verifies_as_its_own_kind_with_its_binding() -> None:
    links = _links()
    token, issued = links.issue(
        LinkKind.PASSWORD_RESET, subject="u1", state="hash-1", ttl=TTL, now=NOW
    )
    claims = links.verify(LinkKind.PASSWORD_RESET, token)
    assert (claims.subject, claims.token_id) == ("u1", issued.token_id)
    assert claims.binding == links.binding(LinkKind.PASSWORD_RESET, "hash-1")
    assert claims.binding != links.binding(LinkKind.PASSWORD_RESET, "hash-2")
    # The binding is a keyed fingerprint: the state itself is nowhere in the token.
    assert "hash-1" not in str(_claims(token))
    assert jwt.get_unverified_header(token)["typ"] == "nimbus-reset+jwt"
    assert _claims(token)["aud"] == "nimbus:password-reset"


def test_one_kind_is_never_taken_for_another() -> None:
    links = _links()
    token, _ = links.issue(LinkKind.PASSWORD_RESET, subject="u1", state="s", ttl=TTL, now=NOW)
    with pytest.raises(InvalidLink):
        links.verify(LinkKind.EMAIL_VERIFICATION, token)


def test_a_forged_header_or_audience_fails_the_signature_or_the_checks() -> None:
    links = _links()
    token, _ = links.issue(LinkKind.PASSWORD_RESET, subject="u1", state="s", ttl=TTL, now=NOW)
    claims = _claims(token)
    key = Mac(KEY, purpose="links").key()
    # The right key, the other kind's audience under this kind's typ: refused on the audience.
    forged = jwt.encode(
        claims | {"aud": "nimbus:email-verification"},
        key,
        algorithm="HS256",
        headers={"typ": "nimbus-reset+jwt"},
    )
    with pytest.raises(InvalidLink):
        links.verify(LinkKind.EMAIL_VERIFICATION, forged)
    # The service's own key (the access tokens'), not the one derived for links.
    with pytest.raises(InvalidLink):
        links.verify(
            LinkKind.PASSWORD_RESET,
            jwt.encode(claims, KEY, algorithm="HS256", headers={"typ": "nimbus-reset+jwt"}),
        )
    unsigned = jwt.encode(claims, "", algorithm="none", headers={"typ": "nimbus-reset+jwt"})
    with pytest.raises(InvalidLink):
        links.verify(LinkKind.PASSWORD_RESET, unsigned)
    for missing in ("bnd", "jti", "exp", "sub"):
        partial = {name: value for name, value in claims.items() if name != missing}
        token = jwt.encode(partial, key, algorithm="HS256", headers={"typ": "nimbus-reset+jwt"})
        with pytest.raises(InvalidLink):
            links.verify(LinkKind.PASSWORD_RESET, token)


def test_an_expired_token_or_another_services_token_is_refused() -> None:
    links = _links()
    old, _ = links.issue(
        LinkKind.PASSWORD_RESET, subject="u1", state="s", ttl=TTL, now=NOW - 2 * TTL
    )
    with pytest.raises(InvalidLink):
        links.verify(LinkKind.PASSWORD_RESET, old)
    theirs, _ = _links(b"o" * 32).issue(
        LinkKind.PASSWORD_RESET, subject="u1", state="s", ttl=TTL, now=NOW
    )
    with pytest.raises(InvalidLink):
        links.verify(LinkKind.PASSWORD_RESET, theirs)
    with pytest.raises(InvalidLink):
        links.verify(LinkKind.PASSWORD_RESET, "not.a.jwt")
