from fastapi import APIRouter, Request, Response

from nimbus.api.deps import AdminUser, ProfileUser, client_address, container_of
from nimbus.api.errors import COMMON_RESPONSES
from nimbus.api.http import (
    CONDITIONAL,
    PAGED,
    VERSIONED,
    Cursor,
    IfMatch,
    Limit,
    expected_version,
    link_next_page,
    set_etag,
)
from nimbus.api.schemas.errors import ErrorBody
from nimbus.api.schemas.users import UserCreate, UserPatch, UserPublic, UserReplace, WhoAmI
from nimbus.domain.users import UNSET, User

router = APIRouter(tags=["users"], responses=COMMON_RESPONSES)

_AUTHENTICATED: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorBody},
    403: {"model": ErrorBody},
    404: {"model": ErrorBody},
}
_CONFLICT: dict[int | str, dict[str, object]] = {409: {"model": ErrorBody}}


@router.post(
    "/users",
    status_code=201,
    responses={
        403: {"model": ErrorBody},
        409: {"model": ErrorBody},
        429: {"model": ErrorBody, "description": "Too many sign-ups from this address"},
    },
)
def sign_up(body: UserCreate, request: Request) -> UserPublic:
    """Create an account (when sign-up is open)."""
    container = container_of(request)
    user = container.users.sign_up(
        client=client_address(request),
        username=body.username,
        password=body.password,
        email=body.email,
        name=body.name,
    )
    return UserPublic.model_validate(user)


@router.get("/users/me", responses=_AUTHENTICATED)
def who_am_i(user: ProfileUser, request: Request) -> WhoAmI:
    """Your account and the claims of the token you sent."""
    container = container_of(request)
    return WhoAmI(
        user=UserPublic.model_validate(container.users.get(user, user.user_id)), claims=user.claims
    )


@router.get("/users", responses=_AUTHENTICATED | PAGED)
def list_users(
    request: Request,
    response: Response,
    admin: AdminUser,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> list[UserPublic]:
    """Every account, oldest first (administrators)."""
    container = container_of(request)
    page = container.users.list(admin, limit=limit, cursor=cursor)
    link_next_page(request, response, page.next_cursor, limit=limit)
    return [UserPublic.model_validate(user) for user in page.items]


@router.get("/users/{user_id}", responses=_AUTHENTICATED | VERSIONED)
def get_user(user_id: str, response: Response, actor: ProfileUser, request: Request) -> UserPublic:
    """An account: your own, or any for an administrator."""
    container = container_of(request)
    return _with_etag(response, container.users.get(actor, user_id))


@router.put("/users/{user_id}", responses=_AUTHENTICATED | CONDITIONAL | _CONFLICT | VERSIONED)
def replace_user(
    user_id: str,
    body: UserReplace,
    response: Response,
    actor: ProfileUser,
    request: Request,
    if_match: IfMatch = None,
) -> UserPublic:
    """Replace email and name; set a new password or (administrators) role if sent."""
    container = container_of(request)
    user = container.users.update(
        actor,
        user_id,
        email=body.email,
        name=body.name,
        password=UNSET if body.password is None else body.password,
        role=UNSET if body.role is None else body.role,
        current_password=body.current_password,
        expected_version=expected_version(if_match),
    )
    return _with_etag(response, user)


@router.patch("/users/{user_id}", responses=_AUTHENTICATED | CONDITIONAL | _CONFLICT | VERSIONED)
def patch_user(
    user_id: str,
    body: UserPatch,
    response: Response,
    actor: ProfileUser,
    request: Request,
    if_match: IfMatch = None,
) -> UserPublic:
    """Change some of email, name, password and (administrators) role."""
    container = container_of(request)
    sent = body.model_fields_set
    user = container.users.update(
        actor,
        user_id,
        email=body.email if "email" in sent else UNSET,
        name=body.name if "name" in sent else UNSET,
        password=body.password if body.password is not None else UNSET,
        role=body.role if body.role is not None else UNSET,
        current_password=body.current_password,
        expected_version=expected_version(if_match),
    )
    return _with_etag(response, user)


@router.delete("/users/{user_id}", status_code=204, responses=_AUTHENTICATED)
def delete_user(user_id: str, actor: ProfileUser, request: Request) -> Response:
    """Delete an account with its todos and messages, and end its sessions."""
    container = container_of(request)
    container.users.delete(actor, user_id)
    return Response(status_code=204)


def _with_etag(response: Response, user: User) -> UserPublic:
    set_etag(response, user.version)
    return UserPublic.model_validate(user)
