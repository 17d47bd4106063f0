"""Bearer tokens of either kind: nimbus's own, or an external OIDC provider's.

One place decides which verifier a token goes to, so the API and the Lambda authorizer can
never disagree about what a valid token is.
"""

from typing import Any

import jwt

from nimbus.security.oidc import OidcVerifier
from nimbus.security.tokens import AccessTokens


class BearerTokens:
    def __init__(self, tokens: AccessTokens, oidc: OidcVerifier | None) -> None:
        self.tokens = tokens
        self.oidc = oidc

    def verify(self, token: str) -> dict[str, Any]:
        """The token's verified claims; Unauthenticated, or Unavailable if the provider's
        keys cannot be fetched.

        A token whose unverified issuer is the configured OIDC provider goes to that
        provider's verifier; every other token must be one of ours. Either way nothing in it
        is trusted before its signature is checked.
        """
        if self.oidc is not None and not self.is_ours(token):
            return self.oidc.verify(token)
        return self.tokens.decode(token)

    def is_ours(self, token: str) -> bool:
        """Whether a token goes to nimbus's own verifier rather than the OIDC provider's."""
        # Peeked at only when a provider is configured: parsing a token costs as much again.
        return self.oidc is None or not self.is_external(_unverified_issuer(token))

    def is_external(self, issuer: object) -> bool:
        return self.oidc is not None and issuer == self.oidc.issuer


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
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    issuer = claims.get("iss")
    return issuer if isinstance(issuer, str) else None
