"""GET /: the web app, plain files from nimbus/web served as they are (no build step, no CDN).

The page names its script and style under /app/<version>/, where the version is a hash of
every file: those URLs never change content, so browsers keep them for a year, and a new
release is new URLs. The page itself is revalidated on each visit (its ETag is the version).
"""

import functools
import hashlib
from html import escape
from pathlib import Path

from fastapi import APIRouter, Request, Response
from starlette.exceptions import HTTPException

from nimbus.api.routing import LeanRoute
from nimbus.values import frozen

WEB = Path(__file__).parents[2] / "web"
ASSETS_PATH = "/app"
ASSET_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}

# The page runs its own scripts and talks to its own origin, and nothing else.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-cache",
}
ASSET_HEADERS = {
    "Cache-Control": "public, max-age=31536000, immutable",
}

router = APIRouter(route_class=LeanRoute, include_in_schema=False)


@frozen
class Bundle:
    version: str
    page: str
    assets: dict[str, bytes]


@functools.cache
def bundle() -> Bundle:
    """The files, read once per process (on the first request, not at import: cold starts)."""
    page = (WEB / "index.html").read_text(encoding="utf-8")
    assets = {
        path.name: path.read_bytes()
        for path in sorted(WEB.iterdir())
        if path.suffix in ASSET_TYPES and path.is_file()
    }
    digest = hashlib.sha256(page.encode())
    for name, content in assets.items():
        digest.update(b"\0" + name.encode() + b"\0" + content)
    return Bundle(version=digest.hexdigest()[:16], page=page, assets=assets)


@functools.lru_cache(maxsize=16)
def _render(root: str) -> str:
    files = bundle()
    prefix = escape(root)
    return files.page.replace("{{assets}}", f"{prefix}{ASSETS_PATH}/{files.version}").replace(
        "{{root}}", prefix
    )


@router.get("/")
async def web_app(request: Request) -> Response:
    etag = f'"{bundle().version}"'
    headers = PAGE_HEADERS | {"ETag": etag}
    if etag in _tags(request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers=headers)
    # A stage or mount prefix (API Gateway, --root-path) goes in front of every URL.
    body = _render(request.scope.get("root_path", ""))
    return Response(body, media_type="text/html; charset=utf-8", headers=headers)


@router.get(ASSETS_PATH + "/{version}/{name}")
async def web_asset(version: str, name: str) -> Response:
    files = bundle()
    content = files.assets.get(name)
    if content is None or version != files.version:
        raise HTTPException(404)
    media_type = ASSET_TYPES[Path(name).suffix]
    return Response(content, media_type=media_type, headers=ASSET_HEADERS)


def _tags(header: str) -> list[str]:
    """The entity tags of an If-None-Match header, compared weakly (RFC 9110 13.1.2)."""
    return [tag.strip().removeprefix("W/") for tag in header.split(",")]
