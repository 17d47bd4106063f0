"""Access tokens: JWTs (HS256, or ES256 / EdDSA: NIMBUS_TOKEN_ALGORITHM) with a fixed issuer
and audience, checked per RFC 8725.

Only the one configured algorithm is accepted, so `alg: none` and HS/ES confusion fail before
any signature is computed; exp, nbf, iat, iss, aud, sub and jti are all required. Each token
names the key that signed it in its `kid` header and is typed `at+jwt` (RFC 9068), which no
other kind of nimbus token is (nimbus.security.links); the key ring
(nimbus.security.key_ring) picks the signing key and the key to verify with, and refuses a kid
it does not know or has retired.
The root key may be a function, called on first use: on Lambda it is read from SSM, and
start-up makes no network call. HS256 tokens are verified by nimbus.security.hs256, which
answers as PyJWT does without loading it (and cryptography with it, tens of milliseconds of a
cold start); PyJWT signs, and verifies the asymmetric algorithms, loaded on first use.
"""

import time
import uuid
from collections.abc import Callable
from dataclasses import field
from datetime import UTC, datetime, timedelta
from typing import Any

from nimbus.domain.errors import Unauthenticated
from nimbus.domain.principals import Principal
from nimbus.domain.users import Role, User
from nimbus.security import hs256
from nimbus.security.key_ring import HS256, KeyRing
from nimbus.values import frozen

TYPE = "at+jwt"
REQUIRED_CLAIMS = ["sub", "iat", "nbf", "exp", "jti", "iss", "aud", "sid"]
# Tokens already verified, by their exact text: a client sends the same token with every
# request, and parsing and checking it again is a fifth of a request's work. Only valid
# tokens go in; their times are checked again on every use. When full, the oldest goes: the
# clients busy at any one time are what it is for, and each entry held for long pins memory
# far beyond its own size (a few KiB each, and the allocator's pages they are spread over).
VERIFIED_CACHE_SIZE = 512
# The last second of year 9999: a later exp is no time a datetime can hold.
MAX_EXPIRY = 253402300799
LEEWAY = timedelta(seconds=30)  # for clocks apart, on exp and nbf


@frozen
class IssuedToken:
    token: str = field(repr=False)
    claims: dict[str, Any]
    expires_in: int


class AccessTokens:
    def __init__(
        self,
        keys: KeyRing | bytes | Callable[[], bytes],
        *,
        issuer: str,
        audience: str,
        ttl: timedelta,
        leeway: timedelta = LEEWAY,
    ) -> None:
        """`keys` is a key ring, or the root key alone (a ring of key 0 only)."""
        self.keys = keys if isinstance(keys, KeyRing) else KeyRing(keys, lifetime=ttl + leeway)
        if self.keys.lifetime < ttl + leeway:
            # A key would retire while tokens it signed are still valid.
            raise ValueError("the key ring's token lifetime is shorter than the TTL and leeway")
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl
        self._leeway = leeway
        # Each verified token's principal and the kid that signed it (None: key 0's, unnamed).
        self._verified: dict[str, tuple[Principal, object]] = {}

    def issue(
        self,
        user: User,
        scopes: frozenset[str],
        now: datetime,
        *,
        session_id: str,
        token_id: str | None = None,
    ) -> IssuedToken:
        issued_at = int(now.timestamp())
        expires_in = int(self.ttl.total_seconds())
        claims: dict[str, Any] = {
            "sub": user.id,
            "username": user.username,
            "role": user.role.value,
            "groups": list(user.groups),
            "scope": " ".join(sorted(scopes)),
            "iat": issued_at,
            "nbf": issued_at,
            "exp": issued_at + expires_in,
            "jti": token_id or str(uuid.uuid4()),
            "iss": self.issuer,
            "aud": self.audience,
            "sid": session_id,
        }
        kid, key = self.keys.signing_key(now)
        import jwt  # PyJWT, only once a token is signed

        token = jwt.encode(
            claims, key, algorithm=self.keys.algorithm, headers={"typ": TYPE, "kid": kid}
        )
        return IssuedToken(token, claims, expires_in)

    def verify(self, token: str) -> Principal:
        """The principal a token this service signed names, once signature, times, issuer
        and audience check out and its claims are well formed."""
        now = time.time()
        verified = self._verified.get(token)
        if verified is None:
            kid, claims = self._decode(token, now)
            verified = self.principal(claims), kid
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                del self._verified[next(iter(self._verified))]
            self._verified[token] = verified
        else:
            # A key retires only after every token it signed has expired (the ring's
            # lifetime is at least TTL and leeway), so the times below refuse a retired key's
            # tokens first; asked all the same, as it costs a lookup.
            self.keys.verifying_key(verified[1], now)
        principal = verified[0]
        claims, leeway = principal.claims, self._leeway.total_seconds()
        if not claims["nbf"] - leeway <= now < claims["exp"] + leeway:
            raise Unauthenticated()
        return principal

    def _decode(self, token: str, now: float) -> tuple[object, dict[str, Any]]:
        if self.keys.algorithm != HS256:
            return self._decode_asymmetric(token, now)
        try:
            parsed = hs256.parse(token)
        except hs256.InvalidToken:
            raise Unauthenticated() from None
        kid = self._checked_kid(parsed.header)
        # Only the key its kid names (key 0's for none) is tried: one signature per token.
        key = self.keys.verifying_key(kid, now)
        try:
            claims = hs256.verify(
                parsed,
                key,
                issuer=self.issuer,
                audience=self.audience,
                leeway=self._leeway.total_seconds(),
                require=REQUIRED_CLAIMS,
            )
        except hs256.InvalidToken:
            raise Unauthenticated() from None
        return kid, claims

    def _decode_asymmetric(self, token: str, now: float) -> tuple[object, dict[str, Any]]:
        import jwt  # PyJWT and cryptography, only under an asymmetric algorithm

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated() from None
        kid = self._checked_kid(header)
        key = self.keys.verifying_key(kid, now)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[self.keys.algorithm],
                issuer=self.issuer,
                audience=self.audience,
                leeway=self._leeway,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError:
            raise Unauthenticated() from None
        return kid, claims

    @staticmethod
    def _checked_kid(header: dict[str, Any]) -> object:
        kid = header.get("kid")
        # Every token with a kid is typed; those from before key ids (key 0's) are neither.
        if kid is not None and header.get("typ") != TYPE:
            raise Unauthenticated()
        return kid

    @staticmethod
    def principal(claims: dict[str, Any]) -> Principal:
        """The principal verified claims name; Unauthenticated if they are not well formed."""
        try:
            username, role = claims["username"], Role(claims["role"])
            groups, scope = claims.get("groups", []), claims.get("scope", "")
            session_id = claims.get("sid")
            subject, token_id, expires = claims["sub"], claims["jti"], claims["exp"]
        except (KeyError, ValueError):
            raise Unauthenticated() from None
        well_formed = (
            isinstance(username, str)
            and isinstance(subject, str)
            and isinstance(scope, str)
            and isinstance(groups, list)
            and all(isinstance(group, str) for group in groups)
            and isinstance(token_id, str)
            and isinstance(expires, int)
            # Every token of ours names its session, which logout and a new password end.
            and isinstance(session_id, str)
        )
        if not well_formed:
            raise Unauthenticated()
        return Principal(
            user_id=subject,
            username=username,
            role=role,
            groups=tuple(groups),
            scopes=frozenset(scope.split()),
            token_id=token_id,
            expires_at=expiry(expires),
            session_id=session_id,
            claims=claims,
        )


def expiry(exp: object) -> datetime:
    """A token's `exp` as a time; Unauthenticated if it is no time (or none a datetime holds)."""
    if isinstance(exp, bool) or not isinstance(exp, int | float) or not 0 < exp <= MAX_EXPIRY:
        raise Unauthenticated()
    return datetime.fromtimestamp(int(exp), UTC)
