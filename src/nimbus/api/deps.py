"""Dependencies shared by the routes, declared once as Annotated aliases.

Those that only read the request are coroutines: FastAPI runs a plain-function dependency in
the thread pool, and a thread hop costs more than their work. The principal check asks the
store whether the token's session is still live, so it runs as `store_read` says.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, ParamSpec, TypeVar, cast
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

P = ParamSpec("P")
T = TypeVar("T")


async def store_read(
    container: Container, read: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """Run a read of the store on the event loop when the store is an embedded file (a read
    costs less than the hop to a worker thread), else in the thread pool."""
    if container.inline_reads:
        return read(*args, **kwargs)
    return await run_in_threadpool(read, *args, **kwargs)


# Set by the Lambda entry point from API Gateway's authorizer context: the claims nimbus's
# authorizer function has already verified, and the IAM identity whose SigV4 signature API
# Gateway has already checked. Nothing an HTTP client sends can set them.
VERIFIED_CLAIMS = "nimbus.verified_claims"
VERIFIED_IAM_CALLER = "nimbus.verified_iam_caller"


async def _authenticated(request: Request, token: str | None) -> Principal:
    if not token:
        raise Unauthenticated()
    container = cast(Container, request.app.state.container)
    claims = request.scope.get(VERIFIED_CLAIMS)
    return await store_read(container, container.auth.authenticate, token, claims)


async def _current_principal(
    request: Request, token: Annotated[str | None, Depends(token_header)]
) -> Principal:
    return await _authenticated(request, token)


CurrentUser = Annotated[Principal, Depends(_current_principal)]


def _needs_scope(scope: str) -> Callable[..., Awaitable[Principal]]:
    # One dependency, not one on top of CurrentUser: FastAPI's cost per dependency is a
    # sizeable share of a request to the hottest routes.
    async def check(
        request: Request, token: Annotated[str | None, Depends(token_header)]
    ) -> Principal:
        principal = await _authenticated(request, token)
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
