"""The calls seeds 001 and 002 document, in their shapes, answered by nimbus's own services.

nimbus's API stays the canonical one (and the only one in the OpenAPI document); these paths
let a client written for a seed work unchanged, under nimbus's rules: each account is its
owner's or an administrator's, and a stolen token alone cannot change a password.
docs/seeds.md maps every seed call to its nimbus equivalent.
"""

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from nimbus.api.deps import ProfileUser, client_address, container_of
from nimbus.api.errors import COMMON_RESPONSES
from nimbus.api.routes import admin, docs, health, users
from nimbus.api.routes.auth import token_answer
from nimbus.api.schemas.users import EmailSignUp, EmailUserPatch, EmailUserReplace, UserPublic
from nimbus.domain.users import UNSET

router = APIRouter(include_in_schema=False, responses=COMMON_RESPONSES)


# Seed 001: accounts named by their email.


@router.post("/user", status_code=201)
def sign_up_with_email(body: EmailSignUp, request: Request) -> UserPublic:
    container = container_of(request)
    user = container.users.sign_up_with_email(
        client=client_address(request), email=body.email, password=body.password, name=body.name
    )
    return UserPublic.model_validate(user)


@router.put("/user/{email}")
def replace_user_by_email(
    email: str, body: EmailUserReplace, actor: ProfileUser, request: Request
) -> UserPublic:
    accounts = container_of(request).users
    user = accounts.update(
        actor,
        accounts.id_for_email(actor, email),
        name=body.name,
        password=body.password,
        current_password=body.current_password,
    )
    return UserPublic.model_validate(user)


@router.patch("/user/{email}")
def patch_user_by_email(
    email: str, body: EmailUserPatch, actor: ProfileUser, request: Request
) -> UserPublic:
    accounts = container_of(request).users
    user = accounts.update(
        actor,
        accounts.id_for_email(actor, email),
        name=body.name if "name" in body.model_fields_set else UNSET,
        password=UNSET if body.password is None else body.password,
        current_password=body.current_password,
    )
    return UserPublic.model_validate(user)


@router.delete("/user/{email}", status_code=204)
def delete_user_by_email(email: str, actor: ProfileUser, request: Request) -> Response:
    accounts = container_of(request).users
    accounts.delete(actor, accounts.id_for_email(actor, email))
    return Response(status_code=204)


# Seed 002: the starter's /v1 routes. Its token endpoint takes `curl -F email=... -F
# password=...` (multipart, no grant_type), as the Firebase call behind it did.


async def v1_token(request: Request) -> Response:
    return await token_answer(request, default_grant="password", username_fields=("email",))


async def v1_openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


router.add_api_route("/v1/manage/hc", health.health, methods=["GET"], name="v1_health_check")
router.add_api_route("/v1/auth/token", v1_token, methods=["POST"], name="v1_token")
router.add_api_route("/v1/users/whoami", users.who_am_i, methods=["GET"], name="v1_who_am_i")
router.add_api_route(
    "/v1/admin/endpoints", admin.list_endpoints, methods=["GET"], name="v1_list_endpoints"
)
for path in ("/v1/swagger.json", "/v1/openapi.json"):
    router.add_api_route(path, v1_openapi, methods=["GET"], name="v1_openapi")
router.add_api_route("/v1/docs", docs.swagger_ui, methods=["GET"], name="v1_docs")
router.add_api_route("/v1/redoc", docs.redoc, methods=["GET"], name="v1_redoc")
