from fastapi import APIRouter

from nimbus.api.deps import ContainerDep
from nimbus.api.schemas.auth import LoginRequest, TokenResponse
from nimbus.api.schemas.errors import ErrorBody

router = APIRouter(tags=["auth"])


@router.post("/login", responses={401: {"model": ErrorBody}})
def login(body: LoginRequest, container: ContainerDep) -> TokenResponse:
    """Exchange a username (or email) and password for tokens."""
    pair = container.auth.login(username=body.username, email=body.email, password=body.password)
    return TokenResponse(
        token=pair.access.token,
        access_token=pair.access.token,
        expires_in=pair.access.expires_in,
        refresh_token=pair.refresh_token,
    )
