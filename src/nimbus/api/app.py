"""The ASGI application: routes, error handlers and middleware around a built Container.

Building a router's routes (FastAPI's models of every parameter and response) is most of the
app's build. A process that may serve only a request or two before it is reclaimed (a Lambda
cold start) builds the app with `lazy_routes`: each router then stands in the table as a
placeholder (`_LazyRouter`) until a request reaches it, and is built then, its routes taking
its place. Requests are matched against the same routes in the same order either way, and
anything that lists the routes (`app.routes`: OpenAPI, /admin/endpoints) builds them all first.
"""

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import ASGIApp, Receive, Scope, Send

import nimbus
from nimbus import metrics, tracing
from nimbus.api import errors, openapi
from nimbus.api.access import AccessLog
from nimbus.api.middleware import ClientAddress, LimitRequest, StripTrailingSlash
from nimbus.api.routes import docs
from nimbus.api.spans import request_spans
from nimbus.container import Container

# The modules of the routers, in nimbus.api.routes, matched in this order, a route at a time:
# the busiest routes first (no paths overlap). Each router declares errors.COMMON_RESPONSES: its
# routes join the app's own table rather than being included, whose routes are matched twice
# per request (tests/api/test_service.py pins this).
ROUTER_MODULES = (
    "todos",
    "health",
    "auth",
    "users",
    "accounts",
    "mfa",
    "passkeys",
    "messages",
    "products",
    "index",
    "admin",
    "docs",
    "wellknown",
    "aliases",
    "web",
)


def router_of(module: str) -> APIRouter:
    """The router of a module in ROUTER_MODULES, its routes built as it is imported."""
    router: APIRouter = importlib.import_module(f"nimbus.api.routes.{module}").router
    return router


def __getattr__(name: str) -> tuple[APIRouter, ...]:
    # ROUTERS, every router in ROUTER_MODULES' order, built when asked for.
    if name == "ROUTERS":
        return tuple(router_of(module) for module in ROUTER_MODULES)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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

    @property
    def routes(self) -> list[BaseRoute]:
        """Every route, each router's built (lazy_routes) if it is not yet."""
        load_routes(self)
        return self.router.routes


def load_routes(app: FastAPI) -> None:
    """Build every router a lazily built app has not built yet."""
    for route in list(app.router.routes):
        if isinstance(route, _LazyRouter):
            route.load()


class _LazyRouter(BaseRoute):
    """A router's place in the app's table until a request reaches it: asked whether it
    matches, it builds the router, puts the router's routes in its own place, and answers
    for them as they would have, the first full match or else the first partial one. The
    table is then what an app built at once has."""

    def __init__(self, table: list[BaseRoute], module: str) -> None:
        self._table = table
        self._module = module
        self._routes: list[BaseRoute] | None = None

    def load(self) -> list[BaseRoute]:
        if self._routes is None:
            routes = list(router_of(self._module).routes)
            openapi.name_operations(routes)
            self._routes = routes
            # In place, while the router may be iterating over the table: the routes after
            # this one's first are then asked again, and answer as this one did.
            for index, entry in enumerate(self._table):
                if entry is self:
                    self._table[index : index + 1] = routes
                    break
        return self._routes

    def _match(self, scope: Scope) -> tuple[Match, Scope, BaseRoute | None]:
        partial: tuple[Scope, BaseRoute] | None = None
        for route in self.load():
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                return match, child_scope, route
            if match is Match.PARTIAL and partial is None:
                partial = child_scope, route
        if partial is not None:
            return Match.PARTIAL, *partial
        return Match.NONE, {}, None

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope, _ = self._match(scope)
        return match, child_scope

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The router has put the matched route's child scope in `scope`; the same route
        # matches it again.
        _, _, route = self._match(scope)
        assert route is not None
        await route.handle(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        for route in self.load():
            try:
                return route.url_path_for(name, **path_params)
            except NoMatchFound:
                pass
        raise NoMatchFound(name, path_params)


def create_app(container: Container, *, lazy_routes: bool = False) -> NimbusApp:
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
    table = app.router.routes
    for module in ROUTER_MODULES:
        if lazy_routes:
            table.append(_LazyRouter(table, module))
        else:
            table.extend(router_of(module).routes)
    if not lazy_routes:
        openapi.name_operations(table)
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
