"""API Gateway Lambda authorizer (`nimbus.entrypoints.aws_authorizer.handler`).

Verifies a nimbus or OIDC bearer token exactly as the API does (signature, times, issuer,
audience) and answers in the shape the caller expects: an IAM policy for a REST API (TOKEN or
REQUEST authorizer) or an HTTP API on payload 1.0, a simple response for an HTTP API on
payload 2.0. A good token is allowed on the whole stage, so a cached answer holds for every
route; what a user may do on each route stays the API's decision (RBAC, scopes, sessions).
A missing, malformed, expired or tampered token gets a Deny, never an exception.

It reads one thing from the store: the signing keys `nimbus keys rotate` added (a Scan of a
few items, on first use and then every NIMBUS_SIGNING_KEY_RELOAD seconds); sessions and
logouts are checked by the API on every request. It imports no web framework, and opens the
store only when it first reads it, so its cold start is short.
"""

import functools
import json
import logging
from typing import Any

from nimbus.bootstrap import access_tokens, authenticator, stored_signing_keys
from nimbus.domain.errors import Unauthenticated, Unavailable
from nimbus.entrypoints.aws_events import (
    CLAIMS_CONTEXT_KEY,
    LambdaEvent,
    LambdaFunction,
    is_warm_up,
)
from nimbus.security.authenticator import token_from_header
from nimbus.settings import Settings

logger = logging.getLogger(__name__)


def make_authorizer(settings: Settings) -> LambdaFunction:
    keys = stored_signing_keys(settings)
    tokens = authenticator(settings, access_tokens(settings, eager=False, keys=keys))

    def authorize(event: LambdaEvent, context: Any) -> dict[str, Any]:
        if is_warm_up(event):
            return {"warm": True}
        token = bearer_token(event)
        try:
            if token is None:
                raise Unauthenticated("No bearer token")
            claims = tokens.claims(token)
        except Unauthenticated as error:
            logger.info("Denied: %s", error.message)
            return _answer(event, None, {"message": error.message, "code": error.code})
        except Unavailable as error:
            # Not the caller's fault: it propagates, API Gateway answers 500 and does not cache
            # the answer. The Lambda runtime reports this exception alone; this record keeps
            # what failed underneath.
            logger.error("Unavailable: %s", error.message, exc_info=error)
            raise
        subject = str(claims["sub"])
        return _answer(event, subject, {CLAIMS_CONTEXT_KEY: json.dumps(claims)})

    return authorize


@functools.cache
def _default_authorizer() -> LambdaFunction:
    return make_authorizer(Settings())


def handler(event: LambdaEvent, context: Any) -> dict[str, Any]:
    return _default_authorizer()(event, context)


def bearer_token(event: LambdaEvent) -> str | None:
    """The token from a TOKEN authorizer's `authorizationToken` or the request's Authorization
    header: `Bearer <jwt>`, or seed 000's bare `<jwt>`."""
    value = event.get("authorizationToken")
    if not isinstance(value, str):
        headers = event.get("headers") or {}
        value = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
    return token_from_header(value) if isinstance(value, str) else None


def _answer(event: LambdaEvent, subject: str | None, context: dict[str, str]) -> dict[str, Any]:
    if event.get("version") == "2.0":
        return {"isAuthorized": subject is not None, "context": context}
    arn = event.get("methodArn") or event.get("routeArn") or ""
    return {
        "principalId": subject or "anonymous",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow" if subject is not None else "Deny",
                    "Resource": stage_resource(arn),
                }
            ],
        },
        "context": context,
    }


def stage_resource(arn: str) -> str:
    """`arn:aws:execute-api:REGION:ACCOUNT:API/STAGE/*` for any method ARN in that stage."""
    prefix, _, path = arn.rpartition(":")
    api_and_stage = path.split("/")[:2]
    if not prefix or len(api_and_stage) < 2:
        return arn or "*"
    return f"{prefix}:{'/'.join(api_and_stage)}/*"
