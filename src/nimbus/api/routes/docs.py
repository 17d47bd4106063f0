"""Swagger UI and ReDoc, with their scripts served by nimbus itself (no CDN)."""

import base64
import functools
import hashlib
import re
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from nimbus.api.routing import LeanRoute

# fastapi-offline packages the Swagger UI and ReDoc bundles; only its files are used.
ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSETS_PATH = "/static/docs"
REDOC_BUNDLE = "redoc.standalone.js"
REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
EMPTY_IMAGE = b"data:image/gif;base64,R0lGODlhAQABAAAAACwAAAAAAQABAAA="

router = APIRouter(route_class=LeanRoute, include_in_schema=False)


class _Assets(StaticFiles):
    """The bundles' files, with ReDoc's one image from a CDN (its logo) left out."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if path == REDOC_BUNDLE:
            return Response(
                _redoc_bundle(),
                media_type="text/javascript; charset=utf-8",
                headers={"Cache-Control": "public, max-age=86400"},
            )
        return await super().get_response(path, scope)


@functools.cache
def _redoc_bundle() -> bytes:
    return (ASSETS / REDOC_BUNDLE).read_bytes().replace(REDOC_LOGO, EMPTY_IMAGE)


def assets() -> StaticFiles:
    return _Assets(directory=ASSETS)


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return _guarded(
        get_swagger_ui_html(
            openapi_url=f"{root}/openapi.json",
            title="nimbus API",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            oauth2_redirect_url=f"{root}/docs/oauth2-redirect",
            # No validator badge: it is an image from validator.swagger.io.
            swagger_ui_parameters={"persistAuthorization": False, "validatorUrl": None},
        )
    )


@router.get("/docs/oauth2-redirect")
async def swagger_ui_redirect() -> HTMLResponse:
    return _guarded(get_swagger_ui_oauth2_redirect_html())


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return _guarded(
        get_redoc_html(
            openapi_url=f"{root}/openapi.json",
            title="nimbus API",
            redoc_js_url=f"{root}{ASSETS_PATH}/{REDOC_BUNDLE}",
            redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            with_google_fonts=False,
        )
    )


def _guarded(page: HTMLResponse) -> HTMLResponse:
    """The page may run only its own scripts (the inline ones by hash) and talk to its own
    origin, and may not be framed: the Authorize dialog takes a password."""
    inline = re.findall(rb"<script>(.*?)</script>", bytes(page.body), re.DOTALL)
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in inline
    )
    page.headers.update(
        {
            "Content-Security-Policy": f"default-src 'none'; script-src 'self' {hashes}; "
            # Both UIs set styles from their scripts, and ReDoc searches in a blob: worker.
            "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
            "connect-src 'self'; worker-src 'self' blob:; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
        }
    )
    return page
