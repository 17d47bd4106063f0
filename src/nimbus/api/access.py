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
from nimbus.logs import REQUEST_ID, FixedLine, Prepared

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
        started = time.perf_counter_ns()
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
                elapsed = time.perf_counter_ns() - started
                route = route_template(scope)
                metrics.request(scope["method"], route or "", status, elapsed / 1e9)
                if ACCESS.isEnabledFor(logging.INFO):
                    _log(scope, route, status, (elapsed + 5_000) // 10_000)  # in 10 us
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
    number="duration_ms",
)
# The access line's JSON by all but its time, request id and duration: requests come again
# and again from one caller to one route, and a line made anew costs twice what one made once
# does (bench.overhead). Emptied when full, as a client may send a new user agent each time.
_PREPARED: dict[tuple[str, str | None, int, str | None, str | None, bytes | None], Prepared] = {}
_PREPARED_MAX = 1024


def _log(scope: Scope, route: str | None, status: int, hundredths_ms: int) -> None:
    agent = None
    for name, value in scope["headers"]:  # not next() over a generator: a third of the cost
        if name == b"user-agent":
            agent = value[:_USER_AGENT_MAX]
            break
    method = scope["method"]
    principal = scope.get(PRINCIPAL)
    client = scope.get("client")
    host = client[0] if client else None
    key = (method, route, status, principal, host, agent)
    prepared = _PREPARED.get(key)
    if prepared is None:
        if len(_PREPARED) >= _PREPARED_MAX:
            _PREPARED.clear()
        prepared = _PREPARED[key] = _LINE.prepare(
            f"{method} {route or '-'} {status}",
            method,
            route,
            status,
            principal,
            host,
            agent.decode("latin-1") if agent else None,
        )
    _LINE.write_prepared(prepared, hundredths_ms)
