"""API Gateway events for HTTP requests, and an httpx transport that sends them to a handler.

The events start from those `sam local generate-event` writes (kept in events/sam/), with the
request's method, path, query, headers and body put in the way API Gateway does: a REST API
(payload 1.0) puts the stage in `requestContext.path` only, an HTTP API (payload 2.0) in
`rawPath` too; REST bodies are text unless binary, HTTP API bodies base64 here.
"""

import base64
import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

import httpx

EVENTS = Path(__file__).parents[2] / "events"
SAM_EVENTS = EVENTS / "sam"

Event = dict[str, Any]
Handler = Callable[[Event, Any], dict[str, Any]]


def sam_event(name: str) -> Event:
    event: Event = json.loads((SAM_EVENTS / f"{name}.json").read_text())
    return event


def rest_event(
    method: str,
    path: str,
    *,
    query: str = "",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    stage: str = "prod",
    authorizer: dict[str, Any] | None = None,
) -> Event:
    event = sam_event("rest-api-proxy")
    pairs = parse_qsl(query, keep_blank_values=True)
    multi_query: dict[str, list[str]] = {}
    for key, value in pairs:
        multi_query.setdefault(key, []).append(value)
    multi_headers: dict[str, list[str]] = {}
    for key, value in headers or []:
        multi_headers.setdefault(key, []).append(value)
    text, is_base64 = _body(body, base64_always=False)
    event.update(
        httpMethod=method,
        path=path,
        pathParameters={"proxy": path.lstrip("/")} if path != "/" else None,
        queryStringParameters={k: v[-1] for k, v in multi_query.items()} or None,
        multiValueQueryStringParameters=multi_query or None,
        headers={k: v[-1] for k, v in multi_headers.items()},
        multiValueHeaders=multi_headers,
        body=text,
        isBase64Encoded=is_base64,
    )
    context = event["requestContext"]
    context.update(httpMethod=method, stage=stage, path=f"/{stage}{quote(path)}")
    if authorizer is not None:
        context["authorizer"] = authorizer
    return event


def http_event(
    method: str,
    path: str,
    *,
    query: str = "",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    stage: str = "$default",
    authorizer: dict[str, Any] | None = None,
) -> Event:
    event = sam_event("http-api-proxy")
    raw_path = quote(path) if stage == "$default" else f"/{stage}{quote(path)}"
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for key, value in headers or []:
        if key.lower() == "cookie":
            cookies.extend(part.strip() for part in value.split(";"))
        else:
            name = key.lower()  # HTTP APIs lower-case header names
            joined[name] = f"{joined[name]},{value}" if name in joined else value
    params: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        params[key] = f"{params[key]},{value}" if key in params else value
    text, is_base64 = _body(body, base64_always=True)
    event.update(
        rawPath=raw_path,
        rawQueryString=query,
        headers=joined,
        cookies=cookies,
        queryStringParameters=params or None,
        pathParameters=None,
        body=text,
        isBase64Encoded=is_base64,
    )
    context = event["requestContext"]
    context["http"].update(method=method, path=raw_path)
    context["stage"] = stage
    del context["authorizer"]
    if authorizer is not None:
        context["authorizer"] = authorizer
    return event


def _body(body: bytes, *, base64_always: bool) -> tuple[str | None, bool]:
    if not body:
        return None, False
    if not base64_always:
        try:
            return body.decode(), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode(), True


class LambdaTransport(httpx.BaseTransport):
    """Sends each request through a Lambda handler as an API Gateway event."""

    def __init__(
        self,
        handler: Handler,
        *,
        payload: str,
        stage: str = "prod",
        authorizer: Callable[[Event], dict[str, Any] | None] | None = None,
    ) -> None:
        self.handler = handler
        self.payload = payload
        self.stage = stage
        self.authorizer = authorizer
        self.events: list[Event] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        make = rest_event if self.payload == "1.0" else http_event
        event = make(
            request.method,
            request.url.path,
            query=request.url.query.decode(),
            headers=[(k.decode(), v.decode()) for k, v in request.headers.raw],
            body=request.read(),
            stage=self.stage,
        )
        if self.authorizer is not None and "authorization" in request.headers:
            context = self.authorizer(event)
            if context is None:  # denied: API Gateway answers without calling the function
                denied = {"message": "Unauthorized", "code": "unauthorized"}
                return httpx.Response(401, json=denied, request=request)
            event["requestContext"]["authorizer"] = context
        self.events.append(event)
        return response_from(self.handler(copy.deepcopy(event), None), request)


def response_from(result: dict[str, Any], request: httpx.Request) -> httpx.Response:
    headers = [(k, v) for k, v in (result.get("headers") or {}).items()]
    for key, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((key, value) for value in values)
    headers.extend(("set-cookie", cookie) for cookie in result.get("cookies") or [])
    body = result.get("body") or ""
    content = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    return httpx.Response(result["statusCode"], headers=headers, content=content, request=request)


def token_authorizer_event(token: str | None) -> Event:
    """A REST API TOKEN authorizer's event; API Gateway sends the header value as it came."""
    event = sam_event("token-authorizer")
    if token is None:
        del event["authorizationToken"]
    else:
        event["authorizationToken"] = token
    return event


def request_authorizer_event(headers: dict[str, str]) -> Event:
    """A REST API REQUEST authorizer's event (payload 1.0)."""
    event = sam_event("request-authorizer")
    event["headers"] = event["headers"] | headers
    return event


def http_authorizer_event(
    headers: dict[str, str], method: str = "GET", path: str = "/todos"
) -> Event:
    """An HTTP API Lambda authorizer's event in payload 2.0, which `sam local generate-event`
    does not make: the proxy event's request, with the route ARN and identity source."""
    event = http_event(method, path, headers=list(headers.items()), stage="prod")
    event.update(
        type="REQUEST",
        routeArn=f"arn:aws:execute-api:us-east-1:123456789012:api-id/prod/{method}{path}",
        identitySource=[v for k, v in headers.items() if k.lower() == "authorization"],
    )
    for key in ("body", "isBase64Encoded"):
        event.pop(key, None)
    return event


def served_routes(app: Any) -> dict[tuple[str, str], Any]:
    """(method, path) of every route the app serves, mapped to the route; a mount as
    ("GET", "<path>/{proxy+}"), the way API Gateway names it."""
    from fastapi.routing import APIRoute
    from starlette.routing import Mount, Route

    from nimbus.api.app import ROUTERS

    found: dict[tuple[str, str], Any] = {}
    nested = [route for router in ROUTERS for route in router.routes]
    for route in [*app.routes, *nested]:
        if isinstance(route, APIRoute | Route):
            for method in (route.methods or set()) - {"HEAD"}:
                found[(method, route.path)] = route
        elif isinstance(route, Mount):
            found[("GET", f"{route.path}/{{proxy+}}")] = route
    return found
