"""The ASGI application: routes, error handlers and middleware around a built Container."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

import nimbus
from nimbus import metrics, tracing
from nimbus.api import errors, openapi
from nimbus.api.access import AccessLog
from nimbus.api.middleware import ClientAddress, LimitRequest, StripTrailingSlash
from nimbus.api.routes import (
    accounts,
    admin,
    aliases,
    auth,
    docs,
    health,
    index,
    messages,
    mfa,
    passkeys,
    products,
    todos,
    users,
    web,
    wellknown,
)
from nimbus.api.spans import request_spans
from nimbus.container import Container

# Matched in this order, a route at a time: the busiest routes first (no paths overlap). Each
# router declares errors.COMMON_RESPONSES: its routes join the app's own table rather than being
# included, whose routes are matched twice per request (tests/api/test_service.py pins this).
ROUTERS: tuple[APIRouter, ...] = (
    todos.router,
    health.router,
    auth.router,
    users.router,
    accounts.router,
    mfa.router,
    passkeys.router,
    messages.router,
    products.router,
    index.router,
    admin.router,
    docs.router,
    wellknown.router,
    aliases.router,
    web.router,
)


class NimbusApp(FastAPI):
    # The routes reach the container as request.app.container (deps.container_of): a plain
    # attribute, where app.state is a lookup through State.__getattr__ on every request.
    container: Container

    def build_middleware_stack(self) -> ASGIApp:
        # Outside Starlette's ServerErrorMiddleware, where the 500 handler runs, so that its
        # record and its answer carry the request id too; the access log inside ClientAddress,
        # so that it names the client a trusted proxy named.
        # A request's span (when traces are on) inside the access log, whose request id it
        # records, and outside the 500 handler, whose answer it sees.
        app: ASGIApp = AccessLog(request_spans(super().build_middleware_stack()))
        trusted = self.container.settings.forwarded_allow_ips
        return ClientAddress(app, trusted=trusted) if trusted else app

    def openapi(self) -> dict[str, Any]:
        if not self.openapi_schema:
            self.openapi_schema = openapi.finish(super().openapi())
        return self.openapi_schema


def create_app(container: Container) -> NimbusApp:
    @asynccontextmanager
    async def lifespan(app: NimbusApp) -> AsyncIterator[None]:
        yield
        try:
            container.close()
        finally:
            tracing.shutdown()  # the last spans, before a worker dies of uvicorn's SIGTERM
            metrics.sink().close()  # the last requests' counts, to the files the others read

    app = NimbusApp(
        title="nimbus",
        version=nimbus.__version__,
        summary="Todos, accounts, messages and products behind one secure HTTP API.",
        docs_url=None,  # the UIs are served from local assets, not a CDN
        redoc_url=None,
        lifespan=lifespan,
        redirect_slashes=False,
        # FastAPI's own spans and metrics off: nimbus makes its request spans (nimbus.tracing),
        # which name no path; and off, FastAPI's check for an OpenTelemetry provider no longer
        # runs on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.container = container
    errors.install(app)
    for router in ROUTERS:
        app.router.routes.extend(router.routes)
    openapi.name_operations(app.routes)
    app.mount(docs.ASSETS_PATH, docs.assets(), name="docs-assets")
    token = container.settings.metrics_token
    if token is not None:
        from nimbus.api import prometheus  # the client library, only where metrics are on

        sink = prometheus.Prometheus()
        metrics.use(sink)
        # Last: a scrape now and then, where every request would try it first.
        app.router.routes.append(prometheus.route(sink, token.get_secret_value()))
    app.add_middleware(StripTrailingSlash)
    app.add_middleware(LimitRequest, max_bytes=container.settings.max_body_bytes)
    if container.settings.cors_origins:
        # Outermost, so that errors from the middleware above carry CORS headers as well.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=container.settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-Match"],
            expose_headers=["ETag", "Link", "Retry-After"],
            max_age=600,
        )
    return app
