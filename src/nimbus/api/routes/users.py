from fastapi import APIRouter

from nimbus.api.deps import ContainerDep
from nimbus.api.schemas.errors import ErrorBody
from nimbus.api.schemas.users import UserCreate, UserPublic
from nimbus.domain.errors import PermissionDenied

router = APIRouter(tags=["users"])


@router.post(
    "/users", status_code=201, responses={403: {"model": ErrorBody}, 409: {"model": ErrorBody}}
)
def sign_up(body: UserCreate, container: ContainerDep) -> UserPublic:
    """Create an account (when sign-up is open)."""
    if not container.settings.allow_signup:
        raise PermissionDenied(
            "Sign-up is closed; ask an administrator for an account", code="signup_disabled"
        )
    user = container.users.create(
        username=body.username, password=body.password, email=body.email, name=body.name
    )
    return UserPublic.of(user)
