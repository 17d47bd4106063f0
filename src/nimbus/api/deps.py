"""Dependencies shared by the routes, declared once as Annotated aliases.

They are coroutines on purpose: FastAPI runs a plain-function dependency in the thread pool,
and a thread hop per dependency would cost more than the work they do.
"""

from typing import Annotated, cast

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from starlette.requests import HTTPConnection

from nimbus.bootstrap import Container
from nimbus.domain.errors import Unauthenticated
from nimbus.domain.principals import Principal


class TokenHeader(OAuth2PasswordBearer):
    """`Authorization: Bearer <jwt>`, or seed 000's bare `Authorization: <jwt>`."""

    async def __call__(self, request: HTTPConnection) -> str | None:
        header = request.headers.get("authorization")
        if not header:
            return None
        scheme, _, credentials = header.strip().partition(" ")
        if not credentials:
            return scheme
        if scheme.lower() == "bearer":
            return credentials.strip()
        return None


token_header = TokenHeader(tokenUrl="auth/token", auto_error=False)


async def _container(request: Request) -> Container:
    return cast(Container, request.app.state.container)


ContainerDep = Annotated[Container, Depends(_container)]


async def _current_principal(
    container: ContainerDep, token: Annotated[str | None, Depends(token_header)]
) -> Principal:
    if not token:
        raise Unauthenticated()
    return container.auth.authenticate(token)


CurrentUser = Annotated[Principal, Depends(_current_principal)]
