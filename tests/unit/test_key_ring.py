"""The key ring behind access tokens: every token names its key (`kid`); a rotated key is
published before it signs; the key it replaces verifies until every token it signed has
expired, then retires; and nothing but a live key's own signature passes. The rotated keys
live in the in-memory store (tests/services/memory.py), or in a real SQLite file where the
store must fail."""

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest

from nimbus.domain.errors import Unauthenticated, Unavailable
from nimbus.domain.signing_keys import KeyState, SigningKey
from nimbus.domain.users import Role
from nimbus.security.key_ring import KeyRing, key_id
from nimbus.security.tokens import LEEWAY, AccessTokens
from nimbus.storage import open_storage
from nimbus.storage.base import SigningKeyStore
from tests.factories import a_user
from tests.services.memory import MemoryStorage

ROOT = b"r" * 48
TTL = timedelta(minutes=15)
LIFETIME = TTL + LEEWAY
RELOAD = 30.0
USER = a_user(username="alice", role=Role.ADMIN)
SCOPES = frozenset({"todos"})


class Clock:
    """The ring's own clock, which decides only when it rereads the store: a test moves it on."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).timestamp()

    def __call__(self) -> float:
        return self.now


def ring(store: SigningKeyStore | None = None, clock: Clock | None = None) -> KeyRing:
    return KeyRing(
        ROOT,
        store.list if store is not None else None,
        lifetime=LIFETIME,
        reload=RELOAD,
        clock=clock or Clock(),
    )


def tokens(keys: KeyRing) -> AccessTokens:
    return AccessTokens(keys, issuer="nimbus", audience="nimbus", ttl=TTL)


def rotated(store: SigningKeyStore, created: datetime) -> SigningKey:
    """A key as `nimbus keys rotate` stores it, as if made at `created`."""
    key = ring().new_key(created)
    store.add(key)
    return key


def header(token: str) -> dict[str, Any]:
    return jwt.get_unverified_header(token)


def now() -> datetime:
    return datetime.now(UTC)


def issue(access: AccessTokens, at: datetime | None = None) -> str:
    return access.issue(USER, SCOPES, at or now(), session_id="s1").token


def claims_now() -> dict[str, Any]:
    token = issue(tokens(ring()))
    return jwt.decode(token, options={"verify_signature": False})


def refused(access: AccessTokens, token: str) -> None:
    with pytest.raises(Unauthenticated):
        access.verify(token)


def test_every_token_names_its_key_and_key_0_is_a_fingerprint_of_the_root_key() -> None:
    access = tokens(ring())
    token = issue(access)
    assert header(token) == {"alg": "HS256", "typ": "at+jwt", "kid": key_id(ROOT)}
    assert access.verify(token).username == "alice"
    kid = key_id(ROOT)
    assert len(kid) == 16
    assert kid == key_id(ROOT)  # stable across processes and restarts
    assert base64.urlsafe_b64decode(kid) not in ROOT  # no part of the key


def test_a_token_from_before_key_ids_verifies_against_key_0() -> None:
    unnamed = jwt.encode(claims_now(), ROOT, algorithm="HS256", headers={"typ": "JWT"})
    assert "kid" not in header(unnamed)
    assert tokens(ring()).verify(unnamed).username == "alice"


def test_a_rotated_key_is_published_before_it_signs() -> None:
    store = MemoryStorage().signing_keys
    key = rotated(store, now())
    keys = ring(store)
    assert keys.publish == timedelta(seconds=RELOAD + 2)
    assert header(issue(tokens(keys)))["kid"] == key_id(ROOT)  # next: not signing yet
    states = [(s.kid, s.state) for s in keys.statuses()]
    assert states == [(key_id(ROOT), KeyState.SIGNING), (key.kid, KeyState.NEXT)]
    # A token another process signs once the key is old enough verifies here.
    later = now() + keys.publish
    assert header(issue(tokens(keys), later))["kid"] == key.kid


def test_a_token_of_a_key_still_next_verifies_as_every_process_knows_it() -> None:
    store = MemoryStorage().signing_keys
    key = rotated(store, now())
    keys = ring(store)
    kid, secret = keys.signing_key(now() + keys.publish)  # as a process a little ahead signs
    assert kid == key.kid
    token = jwt.encode(
        claims_now(), secret, algorithm="HS256", headers={"typ": "at+jwt", "kid": kid}
    )
    assert tokens(keys).verify(token).username == "alice"


def test_the_replaced_keys_tokens_verify_until_it_retires() -> None:
    store = MemoryStorage().signing_keys
    before = issue(tokens(ring(store)))  # key 0 signs: nothing rotated yet
    key = rotated(store, now() - timedelta(seconds=RELOAD + 2 + 1))  # signing for 1 s
    access = tokens(ring(store))
    assert header(issue(access))["kid"] == key.kid
    assert access.verify(before).username == "alice"
    zero, new = access.keys.statuses()
    assert (zero.state, new.state) == (KeyState.VERIFYING, KeyState.SIGNING)
    assert new.signs_from is not None
    assert new.signs_from == key.created_at + access.keys.publish == zero.signs_until
    assert zero.retires_at == new.signs_from + LIFETIME
    # The longest-lived token key 0 can have signed expires (with leeway) by its retirement.
    assert new.signs_from + TTL + LEEWAY <= zero.retires_at


def test_once_a_key_retires_its_tokens_are_refused_even_with_a_valid_signature() -> None:
    store = MemoryStorage().signing_keys
    # Rotated long enough ago that key 0 has retired.
    key = rotated(store, now() - timedelta(seconds=RELOAD + 2) - LIFETIME - timedelta(minutes=1))
    access = tokens(ring(store))
    assert [s.state for s in access.keys.statuses()] == [KeyState.RETIRED, KeyState.SIGNING]
    claims = claims_now()  # times that are valid now: only the key is wrong
    named = jwt.encode(
        claims, ROOT, algorithm="HS256", headers={"typ": "at+jwt", "kid": key_id(ROOT)}
    )
    unnamed = jwt.encode(claims, ROOT, algorithm="HS256")
    refused(access, named)
    refused(access, unnamed)
    assert header(issue(access))["kid"] == key.kid
    assert access.verify(issue(access)).username == "alice"


def test_a_cached_token_of_a_key_that_retires_is_refused() -> None:
    store, clock = MemoryStorage().signing_keys, Clock()
    access = tokens(ring(store, clock))
    token = issue(access)
    assert access.verify(token).username == "alice"  # verified, and kept in the cache
    # A key whose creation makes key 0 retired (as a store written long ago would say)...
    rotated(store, now() - timedelta(seconds=RELOAD + 2) - LIFETIME - timedelta(minutes=1))
    assert access.verify(token).username == "alice"  # ... not read yet
    clock.now += RELOAD
    refused(access, token)


def test_a_key_added_is_read_once_what_was_read_is_reload_seconds_old() -> None:
    store, clock = MemoryStorage().signing_keys, Clock()
    keys = ring(store, clock)
    assert len(keys.statuses()) == 1
    key = rotated(store, now() - timedelta(hours=1))
    kid, secret = key.kid, _secret_of(store, key)
    token = jwt.encode(
        claims_now(), secret, algorithm="HS256", headers={"typ": "at+jwt", "kid": kid}
    )
    access = tokens(keys)
    refused(access, token)  # a kid it has not read
    clock.now += RELOAD - 1
    refused(access, token)
    clock.now += 1
    assert access.verify(token).username == "alice"


def _secret_of(store: SigningKeyStore, key: SigningKey) -> bytes:
    """A stored key's secret, as the ring opens it."""
    kid, secret = ring(store).signing_key(key.created_at + timedelta(seconds=RELOAD + 2))
    assert kid == key.kid
    assert isinstance(secret, bytes)
    return secret


def _forged_header(token: str, **fields: Any) -> str:
    head, body, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(head + "=="))
    forged = base64.urlsafe_b64encode(json.dumps(decoded | fields).encode()).rstrip(b"=")
    return f"{forged.decode()}.{body}.{signature}"


@pytest.mark.parametrize(
    "case",
    [
        "another key's kid",
        "unknown kid",
        "kid not a string",
        "alg none",
        "alg none, no kid",
        "wrong key, key 0's kid",
        "wrong key, no kid",
        "a stored key's kid, root key",
    ],
)
def test_only_a_live_keys_own_signature_passes(case: str) -> None:
    store = MemoryStorage().signing_keys
    key = rotated(store, now() - timedelta(seconds=RELOAD + 2 + 1))
    access = tokens(ring(store))
    good = issue(access)
    assert header(good)["kid"] == key.kid
    claims = claims_now()
    token = {
        "another key's kid": _forged_header(issue(tokens(ring())), kid=key.kid),
        "unknown kid": _forged_header(good, kid="AAAAAAAAAAAAAAAA"),
        "kid not a string": _forged_header(good, kid=7),
        "alg none": jwt.encode(
            claims, "", algorithm="none", headers={"typ": "at+jwt", "kid": key.kid}
        ),
        "alg none, no kid": jwt.encode(claims, "", algorithm="none"),
        "wrong key, key 0's kid": jwt.encode(
            claims, b"x" * 48, algorithm="HS256", headers={"typ": "at+jwt", "kid": key_id(ROOT)}
        ),
        "wrong key, no kid": jwt.encode(claims, b"x" * 48, algorithm="HS256"),
        "a stored key's kid, root key": jwt.encode(
            claims, ROOT, algorithm="HS256", headers={"typ": "at+jwt", "kid": key.kid}
        ),
    }[case]
    refused(access, token)
    assert access.verify(good).username == "alice"


def test_a_key_sealed_under_another_root_key_is_ignored() -> None:
    store = MemoryStorage().signing_keys
    other = KeyRing(b"o" * 48, lifetime=LIFETIME).new_key(now() - timedelta(hours=1))
    store.add(other)
    access = tokens(ring(store))
    assert header(issue(access))["kid"] == key_id(ROOT)  # key 0 still signs
    [zero, ignored] = access.keys.statuses()
    assert (zero.state, ignored.kid, ignored.state) == (
        KeyState.SIGNING,
        other.kid,
        KeyState.UNUSABLE,
    )


def test_the_keys_read_before_serve_while_the_store_fails(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 'store.db'}")
    storage.create_schema()
    clock = Clock()
    try:
        key = rotated(storage.signing_keys, now() - timedelta(hours=1))
        access = tokens(ring(storage.signing_keys, clock))
        token = issue(access)
        assert header(token)["kid"] == key.kid
        storage.drop_schema()  # every read of the keys fails from now on
        clock.now += RELOAD
        assert access.verify(token).username == "alice"
        assert header(issue(access))["kid"] == key.kid
        # A process that has read nothing yet cannot tell a good token: 503, not 401.
        with pytest.raises(Unavailable):
            tokens(ring(storage.signing_keys)).verify(token)
    finally:
        storage.close()


def test_a_ring_shorter_lived_than_its_tokens_is_refused() -> None:
    short = KeyRing(ROOT, lifetime=TTL)
    with pytest.raises(ValueError, match="lifetime"):
        AccessTokens(short, issuer="nimbus", audience="nimbus", ttl=TTL)
