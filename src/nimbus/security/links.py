"""Tokens that mailed links carry (a password reset, an email verification), and the token
that holds a login between its password and its second factor.

Each is a JWT of its own kind, signed under a key derived for links alone, with its own `typ`
header and audience: no such token is ever an access token, nor one kind the other (RFC 8725,
section 3.11). Each names its account and binds a fingerprint of the state it acts on (the
password hash it replaces, the email it verifies), so it dies once that state changes.
"""

import uuid
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from nimbus.security.macs import Mac
from nimbus.values import frozen

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["sub", "iat", "nbf", "exp", "jti", "iss", "aud", "bnd"]


class LinkKind(Enum):
    """A kind of link token: its `typ` header and the suffix of its audience."""

    PASSWORD_RESET = ("nimbus-reset+jwt", "password-reset")
    EMAIL_VERIFICATION = ("nimbus-verify+jwt", "email-verification")
    MFA_STEP = ("nimbus-mfa+jwt", "mfa-step")  # a password checked, a second factor awaited
    PASSKEY_CHALLENGE = ("nimbus-passkey+jwt", "passkey-challenge")  # a WebAuthn ceremony's

    @property
    def typ(self) -> str:
        return self.value[0]

    @property
    def audience_suffix(self) -> str:
        return self.value[1]


@frozen
class LinkClaims:
    subject: str  # the account's id
    binding: str
    token_id: str
    expires_at: datetime
    scope: str | None = None  # the scopes a login asked for, carried to its second step


class InvalidLink(Exception):
    """A link token that is not one of ours, not of the kind asked for, or expired."""


class LinkTokens:
    def __init__(self, mac: Mac, *, issuer: str, audience: str) -> None:
        self._mac = mac  # its key signs, and its digests are the bindings
        self._issuer = issuer
        self._audience = audience

    def issue(
        self,
        kind: LinkKind,
        *,
        subject: str,
        state: str,
        ttl: timedelta,
        now: datetime,
        scope: str | None = None,
    ) -> tuple[str, LinkClaims]:
        issued_at = int(now.timestamp())
        claims: dict[str, Any] = {
            "sub": subject,
            "iat": issued_at,
            "nbf": issued_at,
            "exp": issued_at + int(ttl.total_seconds()),
            "jti": str(uuid.uuid4()),
            "iss": self._issuer,
            "aud": self._audience_of(kind),
            "bnd": self.binding(kind, state),
        }
        if scope is not None:
            claims["scp"] = scope
        import jwt  # PyJWT and cryptography, only once a link is made or followed

        token = jwt.encode(claims, self._mac.key(), algorithm=ALGORITHM, headers={"typ": kind.typ})
        return token, _claims(claims)

    def verify(self, kind: LinkKind, token: str) -> LinkClaims:
        """The claims of a valid, unexpired token of `kind`; InvalidLink otherwise."""
        import jwt

        try:
            if jwt.get_unverified_header(token).get("typ") != kind.typ:
                raise InvalidLink()
            claims: dict[str, Any] = jwt.decode(
                token,
                self._mac.key(),
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                audience=self._audience_of(kind),
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError:
            raise InvalidLink() from None
        if not all(isinstance(claims[name], str) for name in ("sub", "jti", "bnd")):
            raise InvalidLink()
        if not isinstance(claims.get("scp", ""), str):
            raise InvalidLink()
        return _claims(claims)

    def binding(self, kind: LinkKind, state: str) -> str:
        """The fingerprint of `state` a token of `kind` carries: the state itself (a password
        hash, an email) never leaves the service."""
        return self._mac.sign(f"{kind.audience_suffix}:{state}")[:32]

    def _audience_of(self, kind: LinkKind) -> str:
        return f"{self._audience}:{kind.audience_suffix}"


def _claims(claims: dict[str, Any]) -> LinkClaims:
    return LinkClaims(
        subject=claims["sub"],
        binding=claims["bnd"],
        token_id=claims["jti"],
        expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        scope=claims.get("scp"),
    )
