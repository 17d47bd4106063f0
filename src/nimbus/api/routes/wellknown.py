"""The documents another service needs to verify nimbus's access tokens without its secret:
the public keys (JWKS) and an OpenID discovery document, under NIMBUS_TOKEN_ALGORITHM ES256 or
EdDSA. Under HS256 there is no public key, and both answer 404.

The JWKS holds every key that is next, signing or verifying, and may be cached for
NIMBUS_SIGNING_KEY_RELOAD seconds: a new key is published that long (and 2 s more) before it
signs, so a consumer that honours the cache knows it before it meets a token it signed.
"""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from nimbus.api.deps import container_of
from nimbus.api.errors import COMMON_RESPONSES, ERROR_JSON
from nimbus.api.openapi import headers
from nimbus.api.routing import LeanRoute
from nimbus.container import Container
from nimbus.domain.errors import NotFound
from nimbus.domain.principals import ADMIN_SCOPES

router = APIRouter(route_class=LeanRoute, tags=["well-known"], responses=COMMON_RESPONSES)

JWKS_PATH = "/.well-known/jwks.json"
_NOT_PUBLISHED: dict[int | str, dict[str, Any]] = {
    200: {"headers": headers("Cache-Control")},
    404: {"content": ERROR_JSON, "description": "HS256 tokens: there is no public key"},
}


class Jwks(BaseModel):
    keys: list[dict[str, str]]


class OpenIdConfiguration(BaseModel):
    issuer: str
    jwks_uri: str
    token_endpoint: str
    grant_types_supported: list[str]
    response_types_supported: list[str]
    subject_types_supported: list[str]
    id_token_signing_alg_values_supported: list[str]
    token_endpoint_auth_methods_supported: list[str]
    scopes_supported: list[str]


@router.get(JWKS_PATH, response_model=Jwks, responses=_NOT_PUBLISHED)
async def jwks(request: Request) -> JSONResponse:
    """The public keys of the access tokens, by kid (RFC 7517)."""
    container = _published(request)
    keys = await container.run(container.keys.public_keys)
    return _cached(container, {"keys": keys})


@router.get(
    "/.well-known/openid-configuration",
    response_model=OpenIdConfiguration,
    responses=_NOT_PUBLISHED,
)
async def openid_configuration(request: Request) -> JSONResponse:
    """Where the keys are and what the tokens are (OpenID Connect Discovery 1.0): enough for
    an OIDC client, or API Gateway's JWT authorizer, to verify the access tokens."""
    container = _published(request)
    settings = container.settings
    base = settings.link_base
    document = OpenIdConfiguration(
        issuer=settings.token_issuer,
        jwks_uri=base + JWKS_PATH,
        token_endpoint=base + "/auth/token",
        grant_types_supported=["password", "refresh_token"],
        # No authorization endpoint: tokens come from the token endpoint alone.
        response_types_supported=["token"],
        subject_types_supported=["public"],
        id_token_signing_alg_values_supported=[settings.token_algorithm],
        token_endpoint_auth_methods_supported=["none"],
        scopes_supported=sorted(ADMIN_SCOPES),
    )
    return _cached(container, document.model_dump())


def _published(request: Request) -> Container:
    container = container_of(request)
    if container.keys.algorithm == "HS256":
        raise NotFound("There are no public keys: access tokens are HS256 (NIMBUS_TOKEN_ALGORITHM)")
    return container


def _cached(container: Container, body: dict[str, Any]) -> JSONResponse:
    reload = container.settings.signing_key_reload
    return JSONResponse(body, headers={"Cache-Control": f"public, max-age={reload}"})
