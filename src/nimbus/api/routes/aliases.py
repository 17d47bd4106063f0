"""The calls seeds 001 and 002 document, in their shapes, answered by nimbus's own services.

nimbus's API stays the canonical one (and the only one in the OpenAPI document); these paths
let a client written for a seed work unchanged, under nimbus's rules: each account is its
owner's or an administrator's, and a stolen token alone cannot change a password.
docs/seeds.md maps every seed call to its nimbus equivalent.
"""

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from nimbus.api.deps import ProfileUser, client_address, container_of
from nimbus.api.errors import COMMON_RESPONSES
from nimbus.api.routes import admin, docs, health, users
from nimbus.api.routes.auth import token_answer
from nimbus.api.routing import LeanRoute
from nimbus.api.schemas.users import (
    AccountDeletion,
    EmailSignUp,
    EmailUserPatch,
    EmailUserReplace,
    UserPublic,
)
from nimbus.domain.principals import Principal
from nimbus.domain.users import UNSET, Unset, User
from nimbus.services.users import UserService

router = APIRouter(route_class=LeanRoute, include_in_schema=False, responses=COMMON_RESPONSES)


# Seed 001: accounts named by their email.


@router.post("/user", status_code=201, response_model=UserPublic)
async def sign_up_with_email(body: EmailSignUp, request: Request) -> User:
    container = container_of(request)
    return await container.run(
        container.users.sign_up_with_email,
        client=client_address(request),
        email=body.email,
        password=body.password,
        name=body.name,
    )


@router.put("/user/{email}", response_model=UserPublic)
async def replace_user_by_email(
    email: str, body: EmailUserReplace, actor: ProfileUser, request: Request
) -> User:
    container = container_of(request)
    return await container.run(
        _update_by_email,
        container.users,
        actor,
        email,
        name=body.name,
        password=body.password,
        current_password=body.current_password,
        client=client_address(request),
    )


@router.patch("/user/{email}", response_model=UserPublic)
async def patch_user_by_email(
    email: str, body: EmailUserPatch, actor: ProfileUser, request: Request
) -> User:
    container = container_of(request)
    return await container.run(
        _update_by_email,
        container.users,
        actor,
        email,
        name=body.name if "name" in body.model_fields_set else UNSET,
        password=UNSET if body.password is None else body.password,
        current_password=body.current_password,
        client=client_address(request),
    )


@router.delete("/user/{email}", status_code=204)
async def delete_user_by_email(
    email: str, actor: ProfileUser, request: Request, body: AccountDeletion | None = None
) -> Response:
    container = container_of(request)
    await container.run(
        _delete_by_email,
        container.users,
        actor,
        email,
        client_address(request),
        body.current_password if body is not None else None,
    )
    return Response(status_code=204)


# One call each, so a network store takes one hop to a worker thread for both steps.
def _update_by_email(
    accounts: UserService,
    actor: Principal,
    email: str,
    *,
    name: str | Unset | None,
    password: str | Unset,
    current_password: str | None,
    client: str | None,
) -> User:
    return accounts.update(
        actor,
        accounts.id_for_email(actor, email),
        name=name,
        password=password,
        current_password=current_password,
        client=client,
    )


def _delete_by_email(
    accounts: UserService,
    actor: Principal,
    email: str,
    client: str | None,
    current_password: str | None,
) -> None:
    user_id = accounts.id_for_email(actor, email)
    accounts.delete(actor, user_id, client, current_password=current_password)


# Seed 002: the starter's /v1 routes. Its token endpoint takes `curl -F email=... -F
# password=...` (multipart, no grant_type), as the Firebase call behind it did.


async def v1_token(request: Request) -> Response:
    return await token_answer(request, default_grant="password", username_fields=("email",))


async def v1_openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


def _alias(path: str, endpoint: Callable[..., Any], name: str) -> None:
    """Serve `endpoint`'s route at `path` too, answering through the same response model: a
    route returns domain objects, which only its model limits to the public fields."""
    (route,) = (r for r in _ROUTES if isinstance(r, APIRoute) and r.endpoint is endpoint)
    router.add_api_route(
        path,
        endpoint,
        methods=sorted(route.methods or ()),
        name=name,
        response_model=route.response_model,
        status_code=route.status_code,
    )


_ROUTES = (*health.router.routes, *users.router.routes, *admin.router.routes)
_alias("/v1/manage/hc", health.health, "v1_health_check")
router.add_api_route("/v1/auth/token", v1_token, methods=["POST"], name="v1_token")
_alias("/v1/users/whoami", users.who_am_i, "v1_who_am_i")
_alias("/v1/admin/endpoints", admin.list_endpoints, "v1_list_endpoints")
for path in ("/v1/swagger.json", "/v1/openapi.json"):
    router.add_api_route(path, v1_openapi, methods=["GET"], name="v1_openapi")
router.add_api_route("/v1/docs", docs.swagger_ui, methods=["GET"], name="v1_docs")
router.add_api_route("/v1/redoc", docs.redoc, methods=["GET"], name="v1_redoc")
