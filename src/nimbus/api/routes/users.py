from collections.abc import Sequence

from fastapi import APIRouter, Request, Response

from nimbus.api.deps import AdminUser, ProfileUser, client_address, container_of
from nimbus.api.errors import COMMON_RESPONSES, ERROR_JSON
from nimbus.api.http import (
    CONDITIONAL,
    PAGED,
    VERSIONED,
    Cursor,
    IfMatch,
    Limit,
    expected_version,
    link_next_page,
    versioned,
)
from nimbus.api.routing import LeanRoute
from nimbus.api.schemas.audit import AuditEventPublic
from nimbus.api.schemas.users import (
    AccountDeletion,
    UserCreate,
    UserPatch,
    UserPublic,
    UserReplace,
    WhoAmI,
)
from nimbus.domain.audit import AuditEvent
from nimbus.domain.users import UNSET, User

router = APIRouter(route_class=LeanRoute, tags=["users"], responses=COMMON_RESPONSES)

_AUTHENTICATED: dict[int | str, dict[str, object]] = {
    401: {"content": ERROR_JSON},
    403: {"content": ERROR_JSON},
    404: {"content": ERROR_JSON},
}
_CONFLICT: dict[int | str, dict[str, object]] = {409: {"content": ERROR_JSON}}


@router.post(
    "/users",
    status_code=201,
    response_model=UserPublic,
    responses={
        403: {"content": ERROR_JSON},
        409: {"content": ERROR_JSON},
        429: {"content": ERROR_JSON, "description": "Too many sign-ups from this address"},
    },
)
async def sign_up(body: UserCreate, request: Request) -> User:
    """Create an account (when sign-up is open)."""
    container = container_of(request)
    return await container.run(
        container.users.sign_up,
        client=client_address(request),
        username=body.username,
        password=body.password,
        email=body.email,
        name=body.name,
    )


@router.get("/users/me", response_model=WhoAmI, responses=_AUTHENTICATED)
async def who_am_i(user: ProfileUser, request: Request) -> dict[str, object]:
    """Your account and the claims of the token you sent."""
    container = container_of(request)
    return {
        "user": await container.run(container.users.get, user, user.user_id),
        "claims": user.claims,
    }


@router.get(
    "/users/me/events", response_model=list[AuditEventPublic], responses=_AUTHENTICATED | PAGED
)
async def my_events(
    user: ProfileUser,
    request: Request,
    response: Response,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Sequence[AuditEvent]:
    """Your recent security activity, newest first: sign-ins (and failed ones), sign-outs, and
    changes to your account, whoever made them; the next page is in the Link header."""
    container = container_of(request)
    page = await container.run(container.audit.events_of, user, limit=limit, cursor=cursor)
    link_next_page(request, response, page.next_cursor, limit=limit)
    return page.items


@router.get("/users", response_model=list[UserPublic], responses=_AUTHENTICATED | PAGED)
async def list_users(
    request: Request,
    response: Response,
    admin: AdminUser,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Sequence[User]:
    """Every account, oldest first (administrators)."""
    container = container_of(request)
    page = await container.run(container.users.list, admin, limit=limit, cursor=cursor)
    link_next_page(request, response, page.next_cursor, limit=limit)
    return page.items


@router.get("/users/{user_id}", response_model=UserPublic, responses=_AUTHENTICATED | VERSIONED)
async def get_user(user_id: str, response: Response, actor: ProfileUser, request: Request) -> User:
    """An account: your own, or any for an administrator."""
    container = container_of(request)
    return versioned(response, await container.run(container.users.get, actor, user_id))


@router.put(
    "/users/{user_id}",
    response_model=UserPublic,
    responses=_AUTHENTICATED | CONDITIONAL | _CONFLICT | VERSIONED,
)
async def replace_user(
    user_id: str,
    body: UserReplace,
    response: Response,
    actor: ProfileUser,
    request: Request,
    if_match: IfMatch = None,
) -> User:
    """Replace email and name; set a new password or (administrators) role if sent."""
    container = container_of(request)
    user = await container.run(
        container.users.update,
        actor,
        user_id,
        email=body.email,
        name=body.name,
        password=UNSET if body.password is None else body.password,
        role=UNSET if body.role is None else body.role,
        current_password=body.current_password,
        expected_version=expected_version(if_match),
        client=client_address(request),
    )
    return versioned(response, user)


@router.patch(
    "/users/{user_id}",
    response_model=UserPublic,
    responses=_AUTHENTICATED | CONDITIONAL | _CONFLICT | VERSIONED,
)
async def patch_user(
    user_id: str,
    body: UserPatch,
    response: Response,
    actor: ProfileUser,
    request: Request,
    if_match: IfMatch = None,
) -> User:
    """Change some of email, name, password and (administrators) role; or (administrators)
    disable or enable the account, with `disabled` alone."""
    container = container_of(request)
    sent = body.model_fields_set
    if body.disabled is not None:
        disabled = await container.run(
            container.users.set_disabled,
            actor,
            user_id,
            body.disabled,
            client=client_address(request),
            expected_version=expected_version(if_match),
        )
        return versioned(response, disabled)
    user = await container.run(
        container.users.update,
        actor,
        user_id,
        email=body.email if "email" in sent else UNSET,
        name=body.name if "name" in sent else UNSET,
        password=body.password if body.password is not None else UNSET,
        role=body.role if body.role is not None else UNSET,
        current_password=body.current_password,
        expected_version=expected_version(if_match),
        client=client_address(request),
    )
    return versioned(response, user)


@router.delete("/users/{user_id}", status_code=204, responses=_AUTHENTICATED)
async def delete_user(
    user_id: str, actor: ProfileUser, request: Request, body: AccountDeletion | None = None
) -> Response:
    """Delete an account with its todos and messages, and end its sessions. Your own needs
    your password: `{"current_password": ...}`."""
    container = container_of(request)
    await container.run(
        container.users.delete,
        actor,
        user_id,
        client_address(request),
        current_password=body.current_password if body is not None else None,
    )
    return Response(status_code=204)
