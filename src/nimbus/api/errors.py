"""Every error leaves the API as JSON {"message", "code"}; this module is the one place that
decides the status code for each kind."""

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match, Route

from nimbus.api.access import route_template
from nimbus.domain import errors

log = logging.getLogger("nimbus.api")

# An error answer's OpenAPI content: `{404: {"content": ERROR_JSON}}`. Named, not declared
# as a `model`: FastAPI builds a validator for every response model of every route, for the
# document alone (half a router's build), and documents a model as HTML on the HTML routes.
# nimbus.api.openapi.finish puts the ErrorBody schema in the document.
ERROR_JSON = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}

# What any operation may answer besides its own responses, so that the OpenAPI document
# covers every status the API sends.
COMMON_RESPONSES: dict[int | str, dict[str, object]] = {
    400: {"content": ERROR_JSON, "description": "A body that cannot be parsed, or a bad cursor"},
    413: {"content": ERROR_JSON, "description": "The body is over NIMBUS_MAX_BODY_BYTES"},
    431: {"content": ERROR_JSON, "description": "A request header is too large"},
    503: {"content": ERROR_JSON, "description": "The store cannot be reached; try again later"},
}

# What a route for a signed-in caller may also answer.
SIGNED_IN_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"content": ERROR_JSON, "description": "No valid bearer token"},
    403: {"content": ERROR_JSON, "description": "The token lacks the scope"},
}

STATUS_BY_ERROR: dict[type[errors.NimbusError], int] = {
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PermissionDenied: 403,
    errors.SignatureRejected: 403,
    errors.AccountDisabled: 403,
    errors.SecondFactorNeeded: 403,
    errors.SecondFactorRequired: 401,
    errors.Unauthenticated: 401,
    errors.InvalidCredentials: 401,
    errors.PreconditionFailed: 412,
    errors.InvalidInput: 400,
    errors.RateLimited: 429,
    errors.Unavailable: 503,
}

# Seconds a client should wait after a 503: most store stalls and failovers pass in that.
UNAVAILABLE_RETRY_AFTER = "5"

CODE_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: object
) -> JSONResponse:
    return JSONResponse({"message": message, "code": code, **extra}, status, headers=headers)


def status_of(exc: errors.NimbusError) -> int:
    for kind in type(exc).__mro__:
        if kind in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[kind]
    return 500


async def _nimbus_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.NimbusError)
    status = status_of(exc)
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, errors.RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, errors.Unavailable):
        # The one record of an outage, with the traceback of what failed underneath. The
        # answer itself says only that the service is unavailable.
        log.error(
            "503 on %s %s: %s", request.method, route_path(request), exc.message, exc_info=exc
        )
        headers["Retry-After"] = UNAVAILABLE_RETRY_AFTER
        return error_response(status, exc.code, exc.default_message, headers)
    return error_response(status, exc.code, exc.message, headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    code = CODE_BY_STATUS.get(status, "error")
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).phrase
    headers = dict(exc.headers or {})
    if status == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return error_response(status, code, message, headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route takes at this path (RFC 9110): Starlette names only those of
    the first route that matched the path."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.methods:
            match, _ = route.matches({**request.scope, "method": "OPTIONS-NONE"})
            if match is Match.PARTIAL:
                methods |= route.methods
    return sorted(methods)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # The input is left out on purpose: it may hold a password.
    fields = [
        {
            "field": ".".join(str(part) for part in error["loc"]),
            "message": error["msg"],
            "type": error["type"],
        }
        for error in exc.errors()
    ]
    return error_response(422, "validation_error", "Request validation failed", errors=fields)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s", request.method, route_path(request), exc_info=exc)
    setattr(exc, _LOGGED, True)
    return error_response(500, "internal_error", "Internal Server Error")


_LOGGED = "_nimbus_logged"


class _LoggedOnce(logging.Filter):
    """Drops the server's record of an exception the 500 handler has logged: Starlette raises
    it again once the 500 is sent, and uvicorn (or Mangum, on Lambda) logs it a second time."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not getattr(error, _LOGGED, False)


for _server in ("uvicorn.error", "mangum.http"):
    logging.getLogger(_server).addFilter(_LoggedOnce())


def route_path(request: Request) -> str:
    """The route's template for a log record, or "-" if no route matched (nimbus.api.access)."""
    return route_template(request.scope) or "-"


def install(app: FastAPI) -> None:
    app.add_exception_handler(errors.NimbusError, _nimbus_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
