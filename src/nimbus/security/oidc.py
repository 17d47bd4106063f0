"""Tokens from an external OpenID Connect provider (Cognito, Auth0, Firebase, ...).

Keys come from the provider's JWKS, chosen by the token's `kid`. Only asymmetric algorithms
are accepted, so a token "signed" with HMAC over the public key (algorithm confusion) fails,
and PyJWT further refuses a key whose type does not match the algorithm.
"""

import json
import threading
from typing import TYPE_CHECKING, Any

from nimbus.domain.errors import Unauthenticated, Unavailable

ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA"]
REQUIRED_CLAIMS = ["iss", "aud", "sub", "exp", "iat"]
FETCH_TIMEOUT_SECONDS = 5

if TYPE_CHECKING:
    import jwt


class OidcVerifier:
    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks_url: str | None,
        groups_claim: str,
        leeway_seconds: int = 30,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.groups_claim = groups_claim
        self._jwks_url = jwks_url
        self._leeway = leeway_seconds
        self._client: jwt.PyJWKClient | None = None
        self._lock = threading.Lock()

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims once signature, issuer, audience and times check out."""
        import jwt  # PyJWT and cryptography, only once a provider's token comes

        try:
            key = self._keys().get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                # One algorithm per key (RFC 8725): the JWK's own, never the token's choice.
                algorithms=[key.algorithm_name] if key.algorithm_name in ALGORITHMS else [],
                issuer=self.issuer,
                audience=self.audience,
                leeway=self._leeway,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.PyJWKClientConnectionError as exc:
            raise Unavailable("The identity provider's keys cannot be fetched") from exc
        except jwt.PyJWTError:
            # Not chained: the cause describes the bearer token, which a 401 needs none of.
            raise Unauthenticated() from None
        if not isinstance(claims["sub"], str) or not claims["sub"]:
            raise Unauthenticated()
        return claims

    def groups(self, claims: dict[str, Any]) -> tuple[str, ...]:
        """The groups claim, as a list or as API Gateway's "[A B]" string."""
        value = claims.get(self.groups_claim, [])
        if isinstance(value, str):
            value = value.strip("[]").replace(",", " ").split()
        if not isinstance(value, list):
            return ()
        return tuple(str(group) for group in value)

    def _keys(self) -> "jwt.PyJWKClient":
        import jwt

        # Built on first use: discovery is a network call, and start-up must make none.
        with self._lock:
            if self._client is None:
                url = self._jwks_url or _discover_jwks_url(self.issuer)
                self._client = jwt.PyJWKClient(
                    url, cache_keys=True, lifespan=300, timeout=FETCH_TIMEOUT_SECONDS
                )
            return self._client


def _discover_jwks_url(issuer: str) -> str:
    import urllib.request  # only where a provider's keys are looked up

    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_SECONDS) as response:  # noqa: S310
            document = json.load(response)
        jwks_uri = document["jwks_uri"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise Unavailable("The identity provider's discovery document cannot be read") from exc
    if not isinstance(jwks_uri, str):
        raise Unavailable("The identity provider's discovery document has no jwks_uri")
    return jwks_uri
