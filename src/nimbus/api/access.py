"""The request id and the access log: one line per request, written when its answer is sent.

The line names the route's template (`/todos/{uid}`), never the path itself, which may hold an
id or an email; the caller by id; and no header but the user agent, so no token, cookie or
signature can reach it. A client's `X-Request-ID` is kept when it is short and plain, else
replaced; either way the answer carries it.
"""

import logging
import re
import secrets
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nimbus import metrics
from nimbus.logs import REQUEST_ID, FixedLine

ACCESS = logging.getLogger("nimbus.access")
# Set by the caller checks (nimbus.api.deps): the user's id, or a service credential's key id.
PRINCIPAL = "nimbus.principal"
HEADER = b"x-request-id"
_PLAIN = re.compile(r"[A-Za-z0-9._:+=/-]{1,128}")
_USER_AGENT_MAX = 256


def request_id(scope: Scope) -> str:
    """The client's X-Request-ID if it is plain and at most 128 characters, else a new one."""
    for name, value in scope["headers"]:
        if name == HEADER:
            sent: str = value.decode("latin-1")
            if _PLAIN.fullmatch(sent):
                return sent
            break
    return secrets.token_hex(16)


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = request_id(scope)
        header = (HEADER, rid.encode())
        status = 500  # until an answer starts: an exception that escapes becomes one

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        token = REQUEST_ID.set(rid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            try:
                elapsed = time.perf_counter() - started
                route = route_template(scope)
                metrics.request(scope["method"], route or "", status, elapsed)
                if ACCESS.isEnabledFor(logging.INFO):
                    _log(scope, route, status, elapsed * 1000)
            finally:
                REQUEST_ID.reset(token)


def route_template(scope: Scope) -> str | None:
    """The template of the route that matched ("/user/{email}"), never the request's own path,
    which may hold an id or an email address; None if no route matched."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else None


_LINE = FixedLine(
    ACCESS,
    logging.INFO,
    ("method", "route", "status", "duration_ms", "principal", "client", "user_agent"),
)


def _log(scope: Scope, route: str | None, status: int, elapsed_ms: float) -> None:
    client = scope.get("client")
    agent = next((value for name, value in scope["headers"] if name == b"user-agent"), None)
    method = scope["method"]
    _LINE.write(
        f"{method} {route or '-'} {status}",
        method,
        route,
        status,
        round(elapsed_ms, 2),
        scope.get(PRINCIPAL),
        client[0] if client else None,
        agent[:_USER_AGENT_MAX].decode("latin-1") if agent else None,
    )
