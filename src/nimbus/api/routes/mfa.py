"""Second factors: whether one is on, enrolling a TOTP authenticator, turning it off, and a
login's second step."""

from typing import Any

from fastapi import APIRouter, Request, Response

from nimbus.api.deps import ProfileUser, client_address, container_of
from nimbus.api.errors import COMMON_RESPONSES, ERROR_JSON, SIGNED_IN_RESPONSES
from nimbus.api.routes.auth import NO_STORE, remember_device, token_response
from nimbus.api.routing import LeanRoute
from nimbus.api.schemas.auth import TokenResponse
from nimbus.api.schemas.factors import Reauthentication
from nimbus.api.schemas.mfa import (
    FactorStatus,
    MfaStep,
    RecoveryCodes,
    TotpCode,
    TotpEnrolment,
)
from nimbus.security.devices import COOKIE as DEVICE_COOKIE
from nimbus.services.factors import Proof
from nimbus.services.passkeys import PasskeyAnswer

router = APIRouter(route_class=LeanRoute, tags=["mfa"], responses=COMMON_RESPONSES)

_TOO_MANY: dict[int | str, dict[str, Any]] = {
    429: {"content": ERROR_JSON, "description": "Too many wrong codes; see Retry-After"}
}
# A change to the account's factors takes a full re-authentication (Reauthentication).
REAUTH_RESPONSES: dict[int | str, dict[str, Any]] = _TOO_MANY | {
    400: {"content": ERROR_JSON, "description": "A passkey's answer that is no WebAuthn response"},
    403: {
        "content": ERROR_JSON,
        "description": "The password is not right (`current_password_invalid`); the account"
        " has a second factor and none came (`second_factor_required`); the code or passkey"
        " is not right (`invalid_code`, `invalid_passkey`, `invalid_challenge`); or the token"
        " lacks the scope",
    },
}


def proof_of(body: Reauthentication) -> Proof:
    passkey = body.passkey
    answer = PasskeyAnswer(passkey.challenge_token, passkey.credential) if passkey else None
    return Proof(password=body.password, code=body.code, passkey=answer)


@router.get("/users/me/mfa", responses=SIGNED_IN_RESPONSES)
async def factor_status(user: ProfileUser, request: Request) -> FactorStatus:
    """Whether two-step login is on, and how many recovery codes are left."""
    container = container_of(request)
    status = await container.run(container.mfa.status, user)
    return FactorStatus(totp=status.totp, recovery_codes_left=status.recovery_codes_left)


@router.post(
    "/users/me/mfa/totp",
    status_code=201,
    responses=SIGNED_IN_RESPONSES
    | REAUTH_RESPONSES
    | {409: {"content": ERROR_JSON, "description": "A factor is on already"}},
)
async def start_totp(
    body: Reauthentication, user: ProfileUser, request: Request, response: Response
) -> TotpEnrolment:
    """Start enrolling an authenticator app (again, if one is pending), with the password
    (and a passkey, if the account has one): confirm it with a code at
    /users/me/mfa/totp/confirm."""
    container = container_of(request)
    enrolment = await container.run(
        container.factor_changes.enrol_totp, user, proof_of(body), client_address(request)
    )
    response.headers.update(NO_STORE)
    return TotpEnrolment(
        secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri, qr_svg=enrolment.qr_svg
    )


@router.post(
    "/users/me/mfa/totp/confirm",
    responses=SIGNED_IN_RESPONSES
    | _TOO_MANY
    | {
        400: {"content": ERROR_JSON, "description": "The code is not right (`invalid_code`)"},
        409: {"content": ERROR_JSON, "description": "No enrolment is pending"},
    },
)
async def confirm_totp(
    body: TotpCode, user: ProfileUser, request: Request, response: Response
) -> RecoveryCodes:
    """Turn two-step login on with a first code from the app; the recovery codes, shown once."""
    container = container_of(request)
    codes = await container.run(container.mfa.confirm, user, body.code, client_address(request))
    response.headers.update(NO_STORE)
    return RecoveryCodes(recovery_codes=codes)


@router.delete(
    "/users/me/mfa/totp",
    status_code=204,
    responses=SIGNED_IN_RESPONSES
    | REAUTH_RESPONSES
    | {404: {"content": ERROR_JSON, "description": "Two-step login is not on"}},
)
async def stop_totp(body: Reauthentication, user: ProfileUser, request: Request) -> Response:
    """Turn two-step login off: with the password and a code (or a recovery code, or a
    passkey)."""
    container = container_of(request)
    await container.run(
        container.factor_changes.disable_totp, user, proof_of(body), client_address(request)
    )
    return Response(status_code=204)


@router.post(
    "/auth/mfa",
    responses=_TOO_MANY
    | {
        401: {
            "content": ERROR_JSON,
            "description": "The code is not right (`invalid_code`), the passkey not accepted"
            " (`invalid_passkey`, `invalid_challenge`), or the MFA token is not valid"
            " (`invalid_mfa_token`)",
        }
    },
)
async def second_step(body: MfaStep, request: Request, response: Response) -> TokenResponse:
    """A login's second step: the MFA token /login answered, and a code from the
    authenticator app (or a recovery code), or a passkey's answer to the challenge of
    /auth/mfa/passkey/options, for the tokens."""
    container = container_of(request)
    device, user_agent = request.cookies.get(DEVICE_COOKIE), request.headers.get("user-agent")
    if body.code is not None:
        pair = await container.run(
            container.auth.second_step,
            mfa_token=body.mfa_token,
            code=body.code,
            client=client_address(request),
            device=device,
            user_agent=user_agent,
        )
    else:
        pair = await container.run(
            container.auth.passkey_second_step,
            mfa_token=body.mfa_token,
            challenge_token=body.challenge_token or "",  # both there: MfaStep checks
            credential=body.credential or {},
            client=client_address(request),
            device=device,
            user_agent=user_agent,
        )
    response.headers.update(NO_STORE)
    remember_device(request, response, pair)
    return token_response(pair)
