"""ASGI middleware that must see a request before routing does."""

from starlette.types import ASGIApp, Receive, Scope, Send


class StripTrailingSlash:
    """Route `/todos/` as `/todos`: HTTPie and curl do not follow redirects by default."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if len(path) > 1 and path.endswith("/"):
                scope = dict(scope)
                scope["path"] = path.rstrip("/") or "/"
                raw: bytes | None = scope.get("raw_path")
                if raw:
                    scope["raw_path"] = raw.rstrip(b"/") or b"/"
        await self.app(scope, receive, send)
