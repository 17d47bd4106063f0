"""Passkeys (WebAuthn): registering and removing an account's, a login with one alone, and
one as a login's second step."""

from typing import Any

from fastapi import APIRouter, Request, Response

from nimbus.api.deps import ProfileUser, client_address, container_of
from nimbus.api.errors import COMMON_RESPONSES, ERROR_JSON, SIGNED_IN_RESPONSES
from nimbus.api.routes.auth import NO_STORE, remember_device, token_response
from nimbus.api.routes.mfa import REAUTH_RESPONSES, proof_of
from nimbus.api.routing import LeanRoute
from nimbus.api.schemas.auth import TokenResponse
from nimbus.api.schemas.factors import Reauthentication
from nimbus.api.schemas.passkeys import (
    MfaPasskeyOptions,
    PasskeyCeremony,
    PasskeyList,
    PasskeyLogin,
    PasskeyOut,
    PasskeyRegistration,
)
from nimbus.domain.passkeys import Passkey
from nimbus.security.devices import COOKIE as DEVICE_COOKIE
from nimbus.services.passkeys import Ceremony

router = APIRouter(route_class=LeanRoute, tags=["passkeys"], responses=COMMON_RESPONSES)

_NOT_ACCEPTED: dict[int | str, dict[str, Any]] = {
    401: {
        "content": ERROR_JSON,
        "description": "The passkey was not accepted (`invalid_passkey`), or the challenge"
        " token has expired or was used (`invalid_challenge`)",
    }
}


def _out(passkey: Passkey) -> PasskeyOut:
    return PasskeyOut(
        id=passkey.credential_id,
        name=passkey.name,
        created_at=passkey.created_at,
        last_used_at=passkey.last_used_at,
    )


def _ceremony(ceremony: Ceremony, response: Response) -> PasskeyCeremony:
    response.headers.update(NO_STORE)
    return PasskeyCeremony(options=ceremony.options, challenge_token=ceremony.challenge_token)


@router.get("/users/me/passkeys", responses=SIGNED_IN_RESPONSES)
async def list_passkeys(user: ProfileUser, request: Request) -> PasskeyList:
    """The account's passkeys, oldest first."""
    container = container_of(request)
    passkeys = await container.run(container.passkeys.passkeys_of, user)
    return PasskeyList(items=[_out(p) for p in passkeys])


@router.post("/users/me/passkeys/options", responses=SIGNED_IN_RESPONSES | REAUTH_RESPONSES)
async def registration_options(
    body: Reauthentication, user: ProfileUser, request: Request, response: Response
) -> PasskeyCeremony:
    """Options for navigator.credentials.create(): a discoverable credential with user
    verification, none of the account's own again. With the password, and a code or one of
    the account's passkeys if it has a second factor: the challenge token is all that
    registering the new passkey then needs."""
    container = container_of(request)
    ceremony = await container.run(
        container.factor_changes.passkey_options, user, proof_of(body), client_address(request)
    )
    return _ceremony(ceremony, response)


@router.post(
    "/users/me/passkeys/verify/options",
    responses=SIGNED_IN_RESPONSES
    | {404: {"content": ERROR_JSON, "description": "The account has no passkey"}},
)
async def verify_options(
    user: ProfileUser, request: Request, response: Response
) -> PasskeyCeremony:
    """Options for navigator.credentials.get() to confirm it is you with one of the account's
    passkeys: the answer goes in the `passkey` field of a change to the account's factors."""
    container = container_of(request)
    ceremony = await container.run(container.factor_changes.passkey_challenge, user)
    return _ceremony(ceremony, response)


@router.post(
    "/users/me/passkeys",
    status_code=201,
    responses=SIGNED_IN_RESPONSES
    | {
        400: {
            "content": ERROR_JSON,
            "description": "The passkey was not accepted (`invalid_passkey`), or the challenge"
            " token has expired or was used (`invalid_challenge`)",
        },
        409: {"content": ERROR_JSON, "description": "The passkey is registered already"},
    },
)
async def add_passkey(body: PasskeyRegistration, user: ProfileUser, request: Request) -> PasskeyOut:
    """Register the passkey the browser made with the options' challenge."""
    container = container_of(request)
    passkey = await container.run(
        container.passkeys.register,
        user,
        challenge_token=body.challenge_token,
        credential=body.credential,
        name=body.name,
        client=client_address(request),
    )
    return _out(passkey)


@router.delete(
    "/users/me/passkeys/{passkey_id}",
    status_code=204,
    responses=SIGNED_IN_RESPONSES
    | REAUTH_RESPONSES
    | {404: {"content": ERROR_JSON, "description": "No such passkey"}},
)
async def remove_passkey(
    passkey_id: str, body: Reauthentication, user: ProfileUser, request: Request
) -> Response:
    """Remove one of the account's passkeys: with the password, and a code or a passkey (this
    one or another)."""
    container = container_of(request)
    await container.run(
        container.factor_changes.remove_passkey,
        user,
        passkey_id,
        proof_of(body),
        client_address(request),
    )
    return Response(status_code=204)


@router.post("/auth/passkey/options")
async def login_options(request: Request, response: Response) -> PasskeyCeremony:
    """Options for navigator.credentials.get() to log in with a passkey alone: any of the
    site's discoverable credentials, with user verification."""
    container = container_of(request)
    return _ceremony(await container.run(container.passkeys.login_options), response)


@router.post("/auth/passkey", responses=_NOT_ACCEPTED | {403: {"content": ERROR_JSON}})
async def passkey_login(body: PasskeyLogin, request: Request, response: Response) -> TokenResponse:
    """Log in with a passkey alone: a verified passkey is a whole login, no second step."""
    container = container_of(request)
    pair = await container.run(
        container.auth.passkey_login,
        challenge_token=body.challenge_token,
        credential=body.credential,
        client=client_address(request),
        device=request.cookies.get(DEVICE_COOKIE),
        user_agent=request.headers.get("user-agent"),
    )
    response.headers.update(NO_STORE)
    remember_device(request, response, pair)
    return token_response(pair)


@router.post(
    "/auth/mfa/passkey/options",
    responses={401: {"content": ERROR_JSON, "description": "The MFA token is not valid"}},
)
async def second_step_options(
    body: MfaPasskeyOptions, request: Request, response: Response
) -> PasskeyCeremony:
    """Options for navigator.credentials.get() for a login's second step: one of the
    account's passkeys. The answer goes to POST /auth/mfa with the MFA token."""
    container = container_of(request)
    ceremony = await container.run(container.auth.passkey_step_options, body.mfa_token)
    return _ceremony(ceremony, response)
