"""Bearer tokens into principals: nimbus's own, an OIDC provider's, or claims already verified.

One place decides which verifier a token goes to, so the API and the Lambda authorizer can
never disagree about what a valid token is. A token whose unverified issuer is the configured
OIDC provider goes to that provider's verifier; every other token must be one of nimbus's.
Either way nothing in it is trusted before its signature is checked.
"""

import hashlib
from typing import Any, Protocol

from nimbus.domain.errors import AccountDisabled, Unauthenticated
from nimbus.domain.principals import Principal, scopes_for
from nimbus.domain.users import ADMIN_GROUP, USER_GROUP, Role, User
from nimbus.security.oidc import OidcVerifier
from nimbus.security.tokens import AccessTokens, expiry


class ExternalAccounts(Protocol):
    def account_for(
        self, subject: str, claims: dict[str, Any], *, client: str | None = None
    ) -> User:
        """The local account of an OIDC provider's user ("issuer|sub"), made on first sight
        (from `client`'s address)."""


class Authenticator:
    def __init__(
        self,
        tokens: AccessTokens,
        oidc: OidcVerifier | None = None,
        *,
        accounts: ExternalAccounts | None = None,
        oidc_admin_group: str = ADMIN_GROUP,
    ) -> None:
        self._tokens = tokens
        self._oidc = oidc
        self._accounts = accounts
        self._oidc_admin_group = oidc_admin_group

    @property
    def may_wait(self) -> bool:
        """Whether verifying a token may wait: a provider's keys are fetched and its users'
        accounts made when first seen; nimbus's own tokens need only their signature
        checked."""
        return self._oidc is not None

    def principal(
        self, token: str, verified: dict[str, Any] | None = None, *, client: str | None = None
    ) -> Principal:
        """The principal `token` names. `verified` holds its claims when something trusted
        (nimbus's API Gateway authorizer) has already checked its signature; they still have
        to be well formed. Unauthenticated, or Unavailable if the provider's keys cannot be
        fetched; AccountDisabled for the provider's token of an account an administrator
        disabled. Whether its session is live is the caller's to check. `client`, the caller's
        address, is recorded when the token enrols a provider's user."""
        if verified is None and self._is_ours(token):
            return self._tokens.verify(token)
        claims = verified if verified is not None else self._verify_external(token)
        if self._oidc is None or claims.get("iss") != self._oidc.issuer:
            return self._tokens.principal(claims)
        return self._external_principal(self._oidc, claims, token, client)

    def claims(self, token: str) -> dict[str, Any]:
        """The token's verified claims (a copy), for the Lambda authorizer to pass on."""
        if self._is_ours(token):
            return dict(self._tokens.verify(token).claims)
        return self._verify_external(token)

    def _is_ours(self, token: str) -> bool:
        # Peeked at only when a provider is configured: parsing a token costs as much again.
        return self._oidc is None or _unverified_issuer(token) != self._oidc.issuer

    def _verify_external(self, token: str) -> dict[str, Any]:
        assert self._oidc is not None  # only a token that is not ours comes here
        return self._oidc.verify(token)

    def _external_principal(
        self, oidc: OidcVerifier, claims: dict[str, Any], token: str, client: str | None
    ) -> Principal:
        if self._accounts is None:
            raise Unauthenticated()  # no accounts to map the provider's users to
        user = self._accounts.account_for(f"{claims['iss']}|{claims['sub']}", claims, client=client)
        if user.disabled:
            # The provider still vouches for its user; this service no longer serves it.
            raise AccountDisabled()
        groups = oidc.groups(claims)
        role = Role.ADMIN if self._oidc_admin_group in groups else Role.USER
        ours = (ADMIN_GROUP, USER_GROUP) if role is Role.ADMIN else (USER_GROUP,)
        jti = claims.get("jti")
        return Principal(
            user_id=user.id,
            username=user.username,
            role=role,
            groups=tuple(dict.fromkeys([*groups, *ours])),
            scopes=scopes_for(role),
            # Some providers (Firebase) set no jti; the token's hash identifies it as well.
            token_id=jti if isinstance(jti, str) else hashlib.sha256(token.encode()).hexdigest(),
            expires_at=expiry(claims.get("exp")),
            claims=claims,
        )


def token_from_header(value: str | None) -> str | None:
    """The token in an Authorization header: `Bearer <jwt>`, or seed 000's bare `<jwt>`;
    None for nothing or another scheme."""
    if not value or not value.strip():
        return None
    scheme, _, credentials = value.strip().partition(" ")
    if not credentials:
        return scheme
    return credentials.strip() if scheme.lower() == "bearer" else None


def _unverified_issuer(token: str) -> str | None:
    import jwt  # PyJWT, only where a provider is configured (nimbus.security.oidc's too)

    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    issuer = claims.get("iss")
    return issuer if isinstance(issuer, str) else None
