"""Access tokens: HS256 JWTs with a fixed issuer and audience, checked per RFC 8725.

Only the one algorithm is accepted, so `alg: none` and HS/RS confusion fail before any
signature is computed; exp, nbf, iat, iss, aud, sub and jti are all required.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt

from nimbus.domain.errors import Unauthenticated
from nimbus.domain.principals import Principal
from nimbus.domain.users import Role, User

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["sub", "iat", "nbf", "exp", "jti", "iss", "aud"]


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    claims: dict[str, Any]
    expires_in: int


class AccessTokens:
    def __init__(
        self,
        key: bytes,
        *,
        issuer: str,
        audience: str,
        ttl: timedelta,
        leeway: timedelta = timedelta(seconds=30),
    ) -> None:
        self._key = key
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl
        self._leeway = leeway

    def issue(self, user: User, scopes: frozenset[str], now: datetime) -> IssuedToken:
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
            "jti": str(uuid.uuid4()),
            "iss": self.issuer,
            "aud": self.audience,
        }
        token = jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"typ": "JWT"})
        return IssuedToken(token, claims, expires_in)

    def verify(self, token: str) -> Principal:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                audience=self.audience,
                leeway=self._leeway,
                options={"require": REQUIRED_CLAIMS},
            )
            return Principal(
                user_id=str(claims["sub"]),
                username=str(claims["username"]),
                role=Role(claims["role"]),
                groups=tuple(str(group) for group in claims.get("groups", ())),
                scopes=frozenset(str(claims.get("scope", "")).split()),
                claims=claims,
            )
        except (jwt.PyJWTError, KeyError, ValueError, TypeError):
            raise Unauthenticated() from None
