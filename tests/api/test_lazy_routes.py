"""An app built with lazy_routes (a Lambda cold start) answers as one built at once: the same
routes in the same order, built when a request first reaches them."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from nimbus.api.app import NimbusApp, create_app
from nimbus.bootstrap import build
from nimbus.container import Container
from tests.support import make_settings

REQUESTS = [
    ("GET", "/todos"),
    ("GET", "/todos/some-id"),
    ("GET", "/health"),
    ("GET", "/health/"),
    ("DELETE", "/health"),
    ("DELETE", "/login"),
    ("POST", "/auth/token"),
    ("GET", "/users/me"),
    ("GET", "/admin/endpoints"),
    ("GET", "/products"),
    ("GET", "/.well-known/jwks.json"),
    ("GET", "/v1/manage/hc"),
    ("GET", "/v1/users/whoami"),
    ("GET", "/docs"),
    ("GET", "/openapi.json"),
    ("GET", "/static/docs/swagger-ui-bundle.js"),
    ("GET", "/"),
    ("GET", "/no/such/thing"),
    ("PATCH", "/no/such/thing"),
]


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    built = build(make_settings(tmp_path / "data"))
    yield built
    built.close()


def _answer(app: NimbusApp, method: str, path: str) -> tuple[int, bytes, dict[str, str]]:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://nimbus") as http:
            return await http.request(method, path)

    response = asyncio.run(call())
    headers = {k: v for k, v in response.headers.items() if k not in ("x-request-id", "date")}
    return response.status_code, response.content, headers


def _table(routes: list[BaseRoute]) -> list[object]:
    # The routers' routes are the same objects in either app; the docs' mount is each app's.
    return [r if isinstance(r, APIRoute) else (type(r), getattr(r, "path", None)) for r in routes]


@pytest.mark.parametrize(("method", "path"), REQUESTS)
def test_a_first_request_is_answered_as_by_an_app_built_at_once(
    container: Container, method: str, path: str
) -> None:
    eager = create_app(container)
    lazy = create_app(container, lazy_routes=True)
    assert _answer(lazy, method, path) == _answer(eager, method, path)
    # And the next, after the first built what it reached.
    assert _answer(lazy, method, path) == _answer(eager, method, path)
    assert _table(lazy.routes) == _table(eager.routes)


def test_a_request_builds_only_the_routers_before_its_route(container: Container) -> None:
    lazy = create_app(container, lazy_routes=True)
    unbuilt = len(lazy.router.routes)
    assert not any(isinstance(route, APIRoute) for route in lazy.router.routes)
    assert _answer(lazy, "GET", "/todos/some-id")[0] == 401
    table = lazy.router.routes
    assert any(isinstance(r, APIRoute) and r.path == "/todos/{uid}" for r in table)
    # The health router, next in the table, is not built yet; nor any after it.
    assert not any(isinstance(r, APIRoute) and r.path == "/health" for r in table)
    assert sum(not isinstance(r, APIRoute) for r in table) == unbuilt - 1
    # A path no route has goes through every router: all are built.
    assert _answer(lazy, "GET", "/no/such/thing")[0] == 404
    assert _table(lazy.router.routes) == _table(create_app(container).routes)


def test_listing_the_routes_builds_them_all(container: Container) -> None:
    eager = create_app(container)
    lazy = create_app(container, lazy_routes=True)
    assert lazy.openapi() == eager.openapi()
    assert _table(lazy.router.routes) == _table(eager.router.routes)


def test_urls_for_unbuilt_routes_are_found(container: Container) -> None:
    eager = create_app(container)
    names = [r.name for r in eager.routes if isinstance(r, APIRoute) and not r.param_convertors]
    assert len(names) > 10
    for name in names:
        lazy = create_app(container, lazy_routes=True)
        assert lazy.router.url_path_for(name) == eager.router.url_path_for(name)
