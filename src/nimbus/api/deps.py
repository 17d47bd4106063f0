"""Dependencies shared by the routes, declared once as Annotated aliases.

Those that only read the request are coroutines: FastAPI runs a plain-function dependency in
the thread pool, and a thread hop costs more than their work. The principal check is a plain
function because it asks the store whether the token's session is still live.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, cast
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from nimbus.api.middleware import ORIGINAL_RAW_PATH
from nimbus.bootstrap import Container
from nimbus.domain.credentials import ServiceCaller
from nimbus.domain.errors import PermissionDenied, Unauthenticated
from nimbus.domain.principals import Principal
from nimbus.security.bearer import token_from_header
from nimbus.security.sigv4 import SignedRequest


class TokenHeader(OAuth2PasswordBearer):
    """`Authorization: Bearer <jwt>`, or seed 000's bare `Authorization: <jwt>`."""

    async def __call__(self, request: HTTPConnection) -> str | None:
        return token_from_header(request.headers.get("authorization"))


token_header = TokenHeader(
    tokenUrl="auth/token",
    refreshUrl="auth/token",
    scopes={
        "profile": "Read and change your own account",
        "todos": "Your todos",
        "messages": "Post messages",
        "admin": "Administer users (administrators only)",
    },
    auto_error=False,
)


async def _container(request: Request) -> Container:
    return cast(Container, request.app.state.container)


ContainerDep = Annotated[Container, Depends(_container)]


# Set by the Lambda entry point from API Gateway's authorizer context: the claims nimbus's
# authorizer function has already verified, and the IAM identity whose SigV4 signature API
# Gateway has already checked. Nothing an HTTP client sends can set them.
VERIFIED_CLAIMS = "nimbus.verified_claims"
VERIFIED_IAM_CALLER = "nimbus.verified_iam_caller"


def _current_principal(
    request: Request,
    container: ContainerDep,
    token: Annotated[str | None, Depends(token_header)],
) -> Principal:
    if not token:
        raise Unauthenticated()
    return container.auth.authenticate(token, request.scope.get(VERIFIED_CLAIMS))


CurrentUser = Annotated[Principal, Depends(_current_principal)]


def _needs_scope(scope: str) -> Callable[[Principal], Awaitable[Principal]]:
    async def check(principal: CurrentUser) -> Principal:
        if scope not in principal.scopes:
            raise PermissionDenied(
                f"This token was not granted the {scope!r} scope", code="insufficient_scope"
            )
        return principal

    return check


async def _admin(principal: CurrentUser) -> Principal:
    if not principal.is_admin:
        raise PermissionDenied("Administrators only", code="admin_only")
    return principal


TodoUser = Annotated[Principal, Depends(_needs_scope("todos"))]
ProfileUser = Annotated[Principal, Depends(_needs_scope("profile"))]
MessageUser = Annotated[Principal, Depends(_needs_scope("messages"))]
AdminUser = Annotated[Principal, Depends(_admin)]


sigv4_header = APIKeyHeader(
    name="Authorization",
    scheme_name="sigv4",
    description=(
        "AWS Signature Version 4 (AWS4-HMAC-SHA256, service execute-api) made with a key from "
        "`nimbus credentials create`; a presigned URL works too"
    ),
    auto_error=False,
)


async def _signed_caller(
    request: Request,
    container: ContainerDep,
    _: Annotated[str | None, Depends(sigv4_header)],
) -> ServiceCaller:
    verified = request.scope.get(VERIFIED_IAM_CALLER)
    if isinstance(verified, ServiceCaller):
        return verified
    scope = request.scope
    raw_path = scope.get(ORIGINAL_RAW_PATH) or scope.get("raw_path")
    signed = SignedRequest(
        method=request.method,
        # The path as the client sent and signed it; rebuilt only when a server keeps none.
        path=raw_path.decode("latin-1") if raw_path else quote(request.url.path),
        query=scope.get("query_string", b"").decode("latin-1"),
        headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
        body=await request.body(),
    )
    return await run_in_threadpool(container.credentials.authenticate, signed)


SignedCaller = Annotated[ServiceCaller, Depends(_signed_caller)]
