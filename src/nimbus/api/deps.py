"""Dependencies shared by the routes, declared once as Annotated aliases.

Each caller check is one dependency that is also its OpenAPI security scheme: FastAPI's cost
per dependency is a sizeable share of a request to the busiest routes, so none sits on top of
another. They are coroutines, as the routes are: FastAPI runs a plain function in the thread
pool, and the container's runner decides instead which calls need a thread (nimbus.calls). The
routes take the container from the request (`container_of`), rather than from a dependency of
its own, for the same cost.
"""

from typing import Annotated, Any, cast
from urllib.parse import quote

from fastapi import Depends, Request, Security
from fastapi.openapi.models import APIKey, APIKeyIn, OAuth2, OAuthFlowPassword, OAuthFlows
from fastapi.security.base import SecurityBase
from starlette.requests import HTTPConnection

from nimbus.api.access import PRINCIPAL
from nimbus.api.middleware import ORIGINAL_RAW_PATH
from nimbus.container import Container
from nimbus.domain.credentials import ServiceCaller
from nimbus.domain.errors import PermissionDenied, Unauthenticated
from nimbus.domain.principals import Claimant, Principal
from nimbus.security.authenticator import token_from_header
from nimbus.security.sigv4 import SignedRequest

SCOPES = {
    "profile": "Read and change your own account",
    "todos": "Your todos",
    "messages": "Post messages",
    "admin": "Administer users (administrators only)",
}


def container_of(request: HTTPConnection) -> Container:
    return cast(Container, request.app.container)  # api.app.NimbusApp


def client_address(request: HTTPConnection) -> str | None:
    """The client's address: the peer's, or the one a trusted proxy named (ClientAddress)."""
    return request.client.host if request.client else None


# Set by the Lambda entry point from API Gateway's authorizer context: the claims nimbus's
# authorizer function has already verified, and the IAM identity whose SigV4 signature API
# Gateway has already checked. Nothing an HTTP client sends can set them.
VERIFIED_CLAIMS = "nimbus.verified_claims"
VERIFIED_IAM_CALLER = "nimbus.verified_iam_caller"


class _Bearer(SecurityBase):
    """An access token in `Authorization: Bearer <jwt>` (or seed 000's bare
    `Authorization: <jwt>`), which must have been granted `scope`."""

    def __init__(self, scope: str | None = None) -> None:
        self.model = OAuth2(
            flows=OAuthFlows(
                password=OAuthFlowPassword(
                    tokenUrl="auth/token", refreshUrl="auth/token", scopes=SCOPES
                )
            )
        )
        self.scheme_name = "OAuth2PasswordBearer"
        self.scope = scope

    def _admit(self, request: Request, principal: Principal) -> None:
        request.scope[PRINCIPAL] = principal.user_id
        if self.scope is not None and self.scope not in principal.scopes:
            raise PermissionDenied(
                f"This token was not granted the {self.scope!r} scope", code="insufficient_scope"
            )


class BearerAuth(_Bearer):
    """The principal whose access token the request carries, if its session is live."""

    async def __call__(self, request: Request) -> Principal:
        token = token_from_header(request.headers.get("authorization"))
        if not token:
            raise Unauthenticated()
        container = container_of(request)
        claims = request.scope.get(VERIFIED_CLAIMS)
        principal = await container.run(
            container.auth.authenticate, token, claims, client_address(request)
        )
        self._admit(request, principal)
        return principal


class ClaimAuth(_Bearer):
    """The claimant whose access token the request carries: its signature and scope are
    checked here, on the event loop when the token is nimbus's own, and its session by the
    route's store call (Claimant), so that the request costs the store one call, not two."""

    async def __call__(self, request: Request) -> Claimant:
        token = token_from_header(request.headers.get("authorization"))
        if not token:
            raise Unauthenticated()
        container = container_of(request)
        auth = container.auth
        claims = request.scope.get(VERIFIED_CLAIMS)
        client = client_address(request)
        if auth.claims_may_wait:
            claimant = await container.run(auth.claimant, token, claims, client)
        else:
            claimant = auth.claimant(token, claims, client)
        self._admit(request, claimant.principal)
        return claimant


def _signed_in(scope: str | None = None) -> Any:  # fastapi.params.Security
    # The scope named twice: once for the check, once for the operation's OpenAPI entry.
    return Security(BearerAuth(scope), scopes=[scope] if scope else None)


CurrentUser = Annotated[Principal, _signed_in()]
TodoUser = Annotated[Claimant, Security(ClaimAuth("todos"), scopes=["todos"])]
ProfileUser = Annotated[Principal, _signed_in("profile")]
MessageUser = Annotated[Principal, _signed_in("messages")]


async def _admin(principal: CurrentUser) -> Principal:
    if not principal.is_admin:
        raise PermissionDenied("Administrators only", code="admin_only")
    return principal


AdminUser = Annotated[Principal, Depends(_admin)]


class SigV4(SecurityBase):
    """The service caller whose AWS Signature Version 4 the request carries."""

    def __init__(self) -> None:
        self.model = APIKey(
            **{"in": APIKeyIn.header},
            name="Authorization",
            description=(
                "AWS Signature Version 4 (AWS4-HMAC-SHA256, service execute-api) made with a "
                "key from `nimbus credentials create`; a presigned URL works too"
            ),
        )
        self.scheme_name = "sigv4"

    async def __call__(self, request: Request) -> ServiceCaller:
        scope = request.scope
        verified = scope.get(VERIFIED_IAM_CALLER)
        if isinstance(verified, ServiceCaller):
            scope[PRINCIPAL] = verified.access_key_id
            return verified
        raw_path = scope.get(ORIGINAL_RAW_PATH) or scope.get("raw_path")
        signed = SignedRequest(
            method=request.method,
            # The path as the client sent and signed it; rebuilt only when a server keeps none.
            path=raw_path.decode("latin-1") if raw_path else quote(request.url.path),
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
            body=await request.body(),
        )
        container = container_of(request)
        caller = await container.run(container.credentials.authenticate, signed)
        scope[PRINCIPAL] = caller.access_key_id
        return caller


SignedCaller = Annotated[ServiceCaller, Security(SigV4())]
