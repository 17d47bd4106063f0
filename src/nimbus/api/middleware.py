"""ASGI middleware that must see a request before routing does."""

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The raw path before StripTrailingSlash changed it: a SigV4 signature covers what was sent.
ORIGINAL_RAW_PATH = "nimbus.original_raw_path"


class StripTrailingSlash:
    """Route `/todos/` as `/todos`: HTTPie and curl do not follow redirects by default."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            # The path holds the root path (a stage) in front: "/prod/" is the route "/".
            route = path.removeprefix(scope.get("root_path", ""))
            if len(route) > 1 and route.endswith("/"):
                scope = dict(scope)
                scope["path"] = path.rstrip("/") or "/"
                raw: bytes | None = scope.get("raw_path")
                scope[ORIGINAL_RAW_PATH] = raw
                if raw:
                    scope["raw_path"] = raw.rstrip(b"/") or b"/"
        await self.app(scope, receive, send)


class LimitBody:
    """413 for a body over `max_bytes`, declared or streamed, before any handler parses it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = f"The request body is larger than {self.max_bytes} bytes"
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            response = JSONResponse({"message": message, "code": "payload_too_large"}, 413)
            await response(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            event = await receive()
            if event["type"] == "http.request":
                seen += len(event.get("body", b""))
                if seen > self.max_bytes:
                    # An HTTPException passes FastAPI's body parsing and reaches the error table.
                    raise HTTPException(413, message)
            return event

        await self.app(scope, limited, send)
