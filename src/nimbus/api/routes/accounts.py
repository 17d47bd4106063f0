"""Getting back into an account, proving an email, and the sessions a person can end."""

import asyncio
import time
from collections.abc import Awaitable

from fastapi import APIRouter, Request, Response

from nimbus.api.deps import CurrentUser, ProfileUser, client_address, container_of
from nimbus.api.errors import COMMON_RESPONSES, ERROR_JSON, SIGNED_IN_RESPONSES
from nimbus.api.routing import LeanRoute
from nimbus.api.schemas.accounts import (
    Accepted,
    ForgotPassword,
    ResetPassword,
    SendVerification,
    SessionPublic,
    VerifyEmail,
)

router = APIRouter(route_class=LeanRoute, tags=["accounts"], responses=COMMON_RESPONSES)

# Every answer to a link asked for takes at least this long, account or none, so its timing
# tells nothing: the work differs by a token and a mail handed to the queue, or on Lambda,
# where the mail is sent before the answer, by the send itself (well under a second at SES).
ANSWER_FLOOR = 0.25  # seconds
INLINE_ANSWER_FLOOR = 1.0
FORGOT_ANSWER = "If an account matches, a link to reset its password is on its way to its email"
VERIFY_ANSWER = "If an account has that email unverified, a new link is on its way to it"
_LINK_ERRORS: dict[int | str, dict[str, object]] = {
    429: {"content": ERROR_JSON, "description": "Too many links asked for from this address"}
}
_TOKEN_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"content": ERROR_JSON, "description": "The link is not valid (`invalid_token`)"}
}


async def _padded(request: Request, work: Awaitable[None]) -> None:
    """`work`, answered no sooner than the floor after the request began."""
    container = container_of(request)
    floor = INLINE_ANSWER_FLOOR if container.mails.inline else ANSWER_FLOOR
    started = time.monotonic()
    try:
        await work
    finally:
        await asyncio.sleep(max(started + floor - time.monotonic(), 0))


@router.post("/auth/password/forgot", status_code=202, responses=_LINK_ERRORS)
async def forgot_password(body: ForgotPassword, request: Request) -> Accepted:
    """Mail a link to choose a new password. The answer is the same whether or not the
    account exists."""
    container = container_of(request)
    name = body.email or body.username or ""
    await _padded(
        request, container.run(container.accounts.forgot, name, client=client_address(request))
    )
    return Accepted(message=FORGOT_ANSWER)


@router.post("/auth/password/reset", status_code=204, responses=_TOKEN_ERRORS)
async def reset_password(body: ResetPassword, request: Request) -> Response:
    """Set a new password with the token of a reset link; every session of the account ends."""
    container = container_of(request)
    await container.run(
        container.accounts.reset, body.token, body.password, client=client_address(request)
    )
    return Response(status_code=204)


@router.post("/auth/email/verify", status_code=204, responses=_TOKEN_ERRORS)
async def verify_email(body: VerifyEmail, request: Request) -> Response:
    """Confirm an email with the token of a verification link."""
    container = container_of(request)
    await container.run(container.accounts.verify_email, body.token, client=client_address(request))
    return Response(status_code=204)


@router.post("/auth/email/verify/send", status_code=202, responses=_LINK_ERRORS)
async def send_verification(body: SendVerification, request: Request) -> Accepted:
    """Mail a new verification link to an email whose account has not verified it. The
    answer is the same whether or not such an account exists."""
    container = container_of(request)
    await _padded(
        request,
        container.run(
            container.accounts.send_verification, body.email, client=client_address(request)
        ),
    )
    return Accepted(message=VERIFY_ANSWER)


@router.get("/users/me/sessions", response_model=list[SessionPublic], responses=SIGNED_IN_RESPONSES)
async def my_sessions(user: ProfileUser, request: Request) -> list[SessionPublic]:
    """Your sessions (one per login, on each device), the most recently used first."""
    container = container_of(request)
    sessions = await container.run(container.auth.sessions_of, user)
    return [
        SessionPublic(
            id=session.id,
            user_agent=session.user_agent,
            address=session.address,
            created_at=session.created_at,
            last_used_at=session.last_used_at or session.created_at,
            current=session.id == user.session_id,
        )
        for session in sessions
    ]


@router.delete(
    "/users/me/sessions/{session_id}",
    status_code=204,
    responses=SIGNED_IN_RESPONSES | {404: {"content": ERROR_JSON}},
)
async def end_session(session_id: str, user: CurrentUser, request: Request) -> Response:
    """End one of your sessions: its tokens stop working (this one's too, if it is this)."""
    container = container_of(request)
    await container.run(container.auth.end_session, user, session_id, client_address(request))
    return Response(status_code=204)


@router.delete("/users/me/sessions", status_code=204, responses=SIGNED_IN_RESPONSES)
async def end_other_sessions(user: CurrentUser, request: Request) -> Response:
    """Log out everywhere else: end every session but this one."""
    container = container_of(request)
    await container.run(container.auth.end_other_sessions, user, client_address(request))
    return Response(status_code=204)
