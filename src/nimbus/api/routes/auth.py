from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from nimbus.api.deps import CurrentUser, client_address, container_of
from nimbus.api.errors import COMMON_RESPONSES, ERROR_JSON, status_of
from nimbus.api.routing import LeanRoute
from nimbus.api.schemas.auth import (
    LoginRequest,
    OAuthError,
    OAuthTokenResponse,
    RefreshRequest,
    TokenResponse,
)
from nimbus.api.schemas.mfa import MfaRequired
from nimbus.container import Container
from nimbus.domain.errors import InvalidCredentials, NimbusError, SecondFactorRequired
from nimbus.domain.users import PASSWORD_MAX_LENGTH
from nimbus.security.devices import COOKIE as DEVICE_COOKIE
from nimbus.security.devices import TTL as DEVICE_TTL
from nimbus.services.auth import TokenPair

router = APIRouter(route_class=LeanRoute, tags=["auth"], responses=COMMON_RESPONSES)

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_LOGIN_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"content": ERROR_JSON},
    403: {
        "content": ERROR_JSON,
        "description": "The right password, of an account that may not log in: disabled, or"
        " with its email unverified (NIMBUS_REQUIRE_VERIFIED_EMAIL)",
    },
    429: {"content": ERROR_JSON, "description": "Too many failed logins; see Retry-After"},
}


@router.post("/login", responses=_LOGIN_ERRORS)
async def login(
    body: LoginRequest, request: Request, response: Response
) -> TokenResponse | MfaRequired:
    """Exchange a username (or email) and password for tokens; or, for an account with a
    second factor, for an MFA token to send with a code to /auth/mfa."""
    container = container_of(request)
    try:
        pair = await container.run(
            container.auth.login,
            name=body.username or body.email or "",
            password=body.password,
            client=client_address(request),
            device=request.cookies.get(DEVICE_COOKIE),
            user_agent=request.headers.get("user-agent"),
        )
    except SecondFactorRequired as step:
        response.headers.update(NO_STORE)
        return MfaRequired(
            mfa_token=step.mfa_token,
            expires_in=step.expires_in,
            methods=list(step.methods),
        )
    response.headers.update(NO_STORE)
    remember_device(request, response, pair)
    return token_response(pair)


@router.post(
    "/auth/refresh",
    responses={
        401: {"content": ERROR_JSON},
        429: {"content": ERROR_JSON, "description": "Too many refreshes from this address"},
    },
)
async def refresh(body: RefreshRequest, response: Response, request: Request) -> TokenResponse:
    """Trade a refresh token for a new pair; the old one stops working."""
    container = container_of(request)
    pair = await container.run(container.auth.refresh, body.refresh_token, client_address(request))
    response.headers.update(NO_STORE)
    return token_response(pair)


@router.post("/auth/logout", status_code=204, responses={401: {"content": ERROR_JSON}})
async def logout(user: CurrentUser, request: Request) -> Response:
    """End this session: its refresh token and this access token stop working."""
    container = container_of(request)
    await container.run(container.auth.logout, user, client_address(request))
    return Response(status_code=204)


# RFC 6749 asks for a urlencoded form; `curl -F` and some clients send multipart.
_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
_TOKEN_FIELDS = {
    "type": "object",
    "required": ["grant_type"],
    "properties": {
        "grant_type": {"type": "string", "enum": ["password", "refresh_token"]},
        "username": {"type": "string", "maxLength": 254},
        "password": {"type": "string", "maxLength": PASSWORD_MAX_LENGTH},
        "scope": {"type": "string", "maxLength": 200},
        "refresh_token": {"type": "string", "maxLength": 512},
        "client_id": {"type": "string", "maxLength": 200},
    },
}


def token_form(fields: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI request body of a token endpoint with these form fields."""
    return {
        "requestBody": {
            "required": True,
            "content": {media: {"schema": fields} for media in sorted(_FORM_TYPES)},
        }
    }


@router.post(
    "/auth/token",
    openapi_extra=token_form(_TOKEN_FIELDS),
    response_model=OAuthTokenResponse,
    responses={
        400: {"model": OAuthError},
        429: {"content": ERROR_JSON, "description": "Too many failed logins; see Retry-After"},
    },
)
async def oauth_token(request: Request) -> Response:
    """OAuth2 token endpoint (RFC 6749): the password and refresh_token grants."""
    return await token_answer(request)


async def token_answer(
    request: Request, *, default_grant: str | None = None, username_fields: tuple[str, ...] = ()
) -> Response:
    """The token endpoint's answer: RFC 6749's body, or its error body with nimbus's
    message and code beside it. `default_grant` and `username_fields` (alternative names for
    the username field) serve clients written for other token endpoints."""
    container = container_of(request)
    try:
        pair = await _grant(request, container, default_grant, ("username", *username_fields))
    except _OAuthFailure as failure:
        body = {"error": failure.error, "error_description": failure.description}
        body |= {"message": failure.description, "code": failure.error}
        return JSONResponse(body, 400, headers=NO_STORE)
    except SecondFactorRequired as step:
        # RFC 6749's invalid_grant, which every client handles; a client that knows nimbus
        # reads the code and carries the MFA token on to /auth/mfa.
        needed = OAuthError(
            error="invalid_grant",
            error_description=MFA_REQUIRED,
            message=MFA_REQUIRED,
            code=step.code,
            mfa_token=step.mfa_token,
            expires_in=step.expires_in,
        )
        return JSONResponse(needed.model_dump(), 400, headers=NO_STORE)
    except NimbusError as exc:
        status = status_of(exc)
        if status not in (400, 401, 403):
            raise
        error = "invalid_scope" if exc.code == "invalid_scope" else "invalid_grant"
        body = {"error": error, "error_description": exc.message}
        # A 403 (the right password of an account that may not log in: a disabled one, say) is
        # RFC 6749's invalid_grant too, and keeps nimbus's code: the client can tell the
        # person what to do.
        body |= {"message": exc.message, "code": exc.code if status == 403 else error}
        return JSONResponse(body, 400, headers=NO_STORE)
    token = OAuthTokenResponse(
        access_token=pair.access.token,
        expires_in=pair.access.expires_in,
        refresh_token=pair.refresh_token,
        scope=" ".join(sorted(pair.scopes)),
    )
    answer = JSONResponse(token.model_dump(), headers=NO_STORE)
    remember_device(request, answer, pair)
    return answer


MFA_REQUIRED = "This account asks for a second factor: send mfa_token and a code to /auth/mfa"


class _OAuthFailure(Exception):
    def __init__(self, error: str, description: str) -> None:
        self.error = error
        self.description = description


async def _grant(
    request: Request,
    container: Container,
    default_grant: str | None,
    username_fields: tuple[str, ...],
) -> TokenPair:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in _FORM_TYPES:
        raise _OAuthFailure("invalid_request", "Send application/x-www-form-urlencoded")
    try:
        form = await request.form(max_fields=20, max_files=0)
    except HTTPException as exc:  # a malformed multipart body, or a file in it
        raise _OAuthFailure("invalid_request", str(exc.detail)) from None
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    grant = fields.get("grant_type", default_grant)
    if grant == "password":
        username = next((fields[name] for name in username_fields if fields.get(name)), None)
        password = fields.get("password")
        if not username or not password:
            raise _OAuthFailure("invalid_request", "username and password are required")
        if len(username) > 254 or len(password) > PASSWORD_MAX_LENGTH:
            raise InvalidCredentials()
        scope = fields.get("scope", "").split()
        return await container.run(
            container.auth.login,
            name=username,
            password=password,
            client=client_address(request),
            device=request.cookies.get(DEVICE_COOKIE),
            scopes=frozenset(scope) if scope else None,
            user_agent=request.headers.get("user-agent"),
        )
    if grant == "refresh_token":
        token = fields.get("refresh_token")
        if not token:
            raise _OAuthFailure("invalid_request", "refresh_token is required")
        return await container.run(container.auth.refresh, token, client_address(request))
    if grant is None:
        raise _OAuthFailure("invalid_request", "grant_type is required")
    raise _OAuthFailure("unsupported_grant_type", f"Unsupported grant_type {grant!r}")


def remember_device(request: Request, response: Response, pair: TokenPair) -> None:
    """The device cookie that gives this client its own allowance of failed logins."""
    if pair.device is None:
        return
    response.set_cookie(
        DEVICE_COOKIE,
        pair.device,
        max_age=int(DEVICE_TTL.total_seconds()),
        path=(request.scope.get("root_path") or "") + "/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


def token_response(pair: TokenPair) -> TokenResponse:
    return TokenResponse(
        token=pair.access.token,
        access_token=pair.access.token,
        expires_in=pair.access.expires_in,
        refresh_token=pair.refresh_token,
    )
