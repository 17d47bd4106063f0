"""Asymmetric access tokens (ES256, EdDSA): each ring key's bytes yield the same key pair in
every process, named by a kid of the algorithm's own; only the configured algorithm passes
(RFC 8725); and every kind of token (access, MFA step, mailed link) is refused as every other.
"""

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from nimbus.bootstrap import LINK_PURPOSE
from nimbus.domain.errors import Unauthenticated
from nimbus.domain.signing_keys import KeyState
from nimbus.domain.users import Role
from nimbus.security.key_ring import KeyRing, key_id
from nimbus.security.links import InvalidLink, LinkKind, LinkTokens
from nimbus.security.macs import Mac
from nimbus.security.tokens import LEEWAY, AccessTokens
from nimbus.storage.base import SigningKeyStore
from tests.factories import a_user
from tests.services.memory import MemoryStorage

ROOT = b"r" * 48
TTL = timedelta(minutes=15)
LIFETIME = TTL + LEEWAY
RELOAD = 30.0
USER = a_user(username="alice", role=Role.ADMIN)
ASYMMETRIC = ["ES256", "EdDSA"]


def ring(algorithm: str, store: SigningKeyStore | None = None, root: bytes = ROOT) -> KeyRing:
    keys = store.list if store is not None else None
    return KeyRing(root, keys, lifetime=LIFETIME, reload=RELOAD, algorithm=algorithm)


def tokens(keys: KeyRing) -> AccessTokens:
    return AccessTokens(keys, issuer="nimbus", audience="nimbus", ttl=TTL)


def issue(access: AccessTokens, at: datetime | None = None) -> str:
    return access.issue(USER, frozenset({"todos"}), at or datetime.now(UTC), session_id="s1").token


def refused(access: AccessTokens, token: str) -> None:
    with pytest.raises(Unauthenticated):
        access.verify(token)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """An HS256 token made by hand: PyJWT refuses a public key as an HMAC secret itself."""
    signed = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.digest(secret, signed.encode(), hashlib.sha256)
    return f"{signed}.{_b64(signature)}"


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


@pytest.mark.parametrize("algorithm", ASYMMETRIC)
def test_the_key_pair_is_derived_alike_everywhere_with_a_kid_of_its_algorithm(
    algorithm: str,
) -> None:
    [jwk] = ring(algorithm).public_keys()
    assert ring(algorithm).public_keys() == [jwk]  # another process derives the same key
    assert jwk["kid"] == key_id(ROOT, algorithm)
    # One kid per algorithm: a switch never makes a verifier take one key for another.
    kids = {key_id(ROOT, name) for name in ["HS256", *ASYMMETRIC]}
    assert len(kids) == 3
    assert ring(algorithm, root=b"o" * 48).public_keys()[0]["x"] != jwk["x"]
    if algorithm == "ES256":
        assert set(jwk) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
        assert (jwk["kty"], jwk["crv"]) == ("EC", "P-256")
    else:
        assert set(jwk) == {"kty", "crv", "x", "kid", "alg", "use"}
        assert (jwk["kty"], jwk["crv"]) == ("OKP", "Ed25519")
    assert (jwk["alg"], jwk["use"]) == (algorithm, "sig")
    assert "d" not in jwk  # the public key alone


@pytest.mark.parametrize("algorithm", ASYMMETRIC)
def test_a_token_verifies_with_the_published_key_alone(algorithm: str) -> None:
    keys = ring(algorithm)
    token = issue(tokens(keys))
    [jwk] = keys.public_keys()
    assert jwt.get_unverified_header(token) == {
        "alg": algorithm,
        "typ": "at+jwt",
        "kid": jwk["kid"],
    }
    public = jwt.PyJWK(jwk).key
    claims = jwt.decode(token, public, algorithms=[algorithm], audience="nimbus", issuer="nimbus")
    assert claims["username"] == "alice"
    assert tokens(ring(algorithm)).verify(token).username == "alice"


def test_under_hs256_there_is_no_public_key() -> None:
    assert ring("HS256").public_keys() == []
    with pytest.raises(ValueError, match="RS256 is not one of"):
        ring("RS256")


@pytest.mark.parametrize("algorithm", ASYMMETRIC)
def test_a_next_key_is_published_before_it_signs_and_a_retired_one_leaves(
    algorithm: str,
) -> None:
    store = MemoryStorage().signing_keys
    now = datetime.now(UTC)
    stored = ring(algorithm).new_key(now)
    store.add(stored)
    keys = ring(algorithm, store)
    kid = keys.kid_for(stored)
    assert kid != stored.kid  # the store names it by its HS256 kid
    assert [s.state for s in keys.statuses()] == [KeyState.SIGNING, KeyState.NEXT]
    assert [jwk["kid"] for jwk in keys.public_keys()] == [key_id(ROOT, algorithm), kid]
    assert jwt.get_unverified_header(issue(tokens(keys)))["kid"] == key_id(ROOT, algorithm)
    later = issue(tokens(keys), now + keys.publish)
    assert jwt.get_unverified_header(later)["kid"] == kid
    # A process a little ahead signs with it already: it verifies here, as it is published.
    ahead = jwt.encode(
        claims_of(issue(tokens(keys))),
        keys.signing_key(now + keys.publish)[1],
        algorithm=algorithm,
        headers={"typ": "at+jwt", "kid": kid},
    )
    assert tokens(keys).verify(ahead).username == "alice"

    # Rotated long enough ago that key 0 has retired: its public key is gone.
    old = MemoryStorage().signing_keys
    long_ago = ring(algorithm).new_key(now - keys.publish - LIFETIME - timedelta(minutes=1))
    old.add(long_ago)
    retired = ring(algorithm, old)
    assert [s.state for s in retired.statuses()] == [KeyState.RETIRED, KeyState.SIGNING]
    assert [jwk["kid"] for jwk in retired.public_keys()] == [retired.kid_for(long_ago)]


def _public_pem(keys: KeyRing) -> bytes:
    public = jwt.PyJWK(keys.public_keys()[0]).key
    pem: bytes = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem


@pytest.mark.parametrize("algorithm", ASYMMETRIC)
@pytest.mark.parametrize(
    "case",
    [
        "HS256 over the public key PEM",
        "HS256 over the JWK",
        "HS256 under the root key",
        "alg none",
        "no kid",
        "the other asymmetric algorithm",
        "typ changed",
    ],
)
def test_only_the_configured_algorithm_passes(algorithm: str, case: str) -> None:
    keys = ring(algorithm)
    access = tokens(keys)
    good = issue(access)
    claims = claims_of(good)
    kid = jwt.get_unverified_header(good)["kid"]
    typed = {"typ": "at+jwt", "kid": kid}
    other = "EdDSA" if algorithm == "ES256" else "ES256"
    other_ring = ring(other)
    token = {
        "HS256 over the public key PEM": lambda: _hs256(
            {"alg": "HS256"} | typed, claims, _public_pem(keys)
        ),
        "HS256 over the JWK": lambda: _hs256(
            {"alg": "HS256"} | typed, claims, json.dumps(keys.public_keys()[0]).encode()
        ),
        "HS256 under the root key": lambda: jwt.encode(
            claims, ROOT, algorithm="HS256", headers={"typ": "at+jwt", "kid": key_id(ROOT)}
        ),
        "alg none": lambda: jwt.encode(claims, "", algorithm="none", headers=typed),
        "no kid": lambda: jwt.encode(
            claims, keys.signing_key(datetime.now(UTC))[1], algorithm=algorithm
        ),
        # Signed by the other algorithm's key of the same bytes, named by either kid.
        "the other asymmetric algorithm": lambda: jwt.encode(
            claims, other_ring.signing_key(datetime.now(UTC))[1], algorithm=other, headers=typed
        ),
        "typ changed": lambda: jwt.encode(
            claims,
            keys.signing_key(datetime.now(UTC))[1],
            algorithm=algorithm,
            headers={"typ": "JWT", "kid": kid},
        ),
    }[case]()
    refused(access, token)
    assert access.verify(good).username == "alice"


# Every kind of token nimbus issues, each as the service issues it: the access token under the
# root key's ring, the others under the key derived for links (bootstrap.LINK_PURPOSE).
KINDS = ["access", *(kind.name for kind in LinkKind)]


def _links() -> LinkTokens:
    return LinkTokens(Mac(ROOT, purpose=LINK_PURPOSE), issuer="nimbus", audience="nimbus")


def _token_of(kind: str, algorithm: str) -> str:
    if kind == "access":
        return issue(tokens(ring(algorithm)))
    token, _ = _links().issue(
        LinkKind[kind], subject=USER.id, state="s", ttl=TTL, now=datetime.now(UTC)
    )
    return token


def _accepted_as(kind: str, algorithm: str, token: str) -> bool:
    try:
        if kind == "access":
            tokens(ring(algorithm)).verify(token)
        else:
            _links().verify(LinkKind[kind], token)
    except (Unauthenticated, InvalidLink):
        return False
    return True


@pytest.mark.parametrize("algorithm", ["HS256", *ASYMMETRIC])
def test_each_kind_of_token_is_refused_as_every_other(algorithm: str) -> None:
    for made in KINDS:
        token = _token_of(made, algorithm)
        accepted = [kind for kind in KINDS if _accepted_as(kind, algorithm, token)]
        assert accepted == [made], (made, accepted)


@pytest.mark.parametrize("kind", list(LinkKind))
def test_an_access_token_retyped_as_another_kind_is_refused_everywhere(kind: LinkKind) -> None:
    keys = ring("HS256")
    good = issue(tokens(keys))
    kid, key = keys.signing_key(datetime.now(UTC))
    # Re-signed with the right key: only its typ differs.
    retyped = jwt.encode(
        claims_of(good), key, algorithm="HS256", headers={"typ": kind.typ, "kid": kid}
    )
    refused(tokens(keys), retyped)
    assert not _accepted_as(kind.name, "HS256", retyped)
