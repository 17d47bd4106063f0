"""The routes nimbus.api.routing serves with a planned handler answer as FastAPI's own handler
would: the same requests, right and wrong (no token, a bad one, a missing scope, bad
parameters, another user's todo, a stale version), get the same status, body and headers
from either, and the busiest reads are among them."""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request, Response
from fastapi._body_limit import wrap_app_with_body_limit
from fastapi.routing import request_response

from nimbus.api.app import ROUTERS
from nimbus.api.routing import LeanRoute
from tests.factories import Account
from tests.support import PASSWORD

pytestmark = pytest.mark.store_independent

HOT = {("GET", "/todos"), ("GET", "/todos/{uid}"), ("DELETE", "/todos/{uid}")}


def _lean_routes() -> list[LeanRoute]:
    return [
        route
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, LeanRoute) and route.lean
    ]


@contextmanager
def _fastapi_handlers() -> Iterator[None]:
    """Every lean route served by FastAPI's handler instead, as APIRoute builds its app."""
    routes = _lean_routes()
    saved = [route.app for route in routes]
    for route in routes:
        handler = request_response(route.fastapi_handler)
        route.app = wrap_app_with_body_limit(handler, route.max_body_size)
    try:
        yield
    finally:
        for route, app in zip(routes, saved, strict=True):
            route.app = app


Answer = tuple[int, bytes, dict[str, str]]


def _answer(client: httpx.Client, method: str, path: str, **options: Any) -> Answer:
    response = client.request(method, path, **options)
    headers = {k: v for k, v in response.headers.items() if k not in ("x-request-id", "date")}
    return response.status_code, response.content, headers


def test_the_busiest_reads_are_served_lean() -> None:
    lean = {(method, route.path) for route in _lean_routes() for method in route.methods or ()}
    assert lean >= HOT


def test_every_lean_route_answers_as_fastapis_handler(
    client: httpx.Client, alice: Account, bob: Account
) -> None:
    def todo(headers: dict[str, str], description: str) -> str:
        created = client.post("/todos", json={"description": description}, headers=headers)
        assert created.status_code == 201, created.text
        uid: str = created.json()["uid"]
        return uid

    mine = [todo(alice.headers, f"todo {n}") for n in range(3)]
    theirs = todo(bob.headers, "bob's")
    form = {"grant_type": "password", "username": "alice", "password": PASSWORD}
    profile_only = client.post("/auth/token", data=form | {"scope": "profile"})
    narrow = {"Authorization": f"Bearer {profile_only.json()['access_token']}"}
    bad = {"Authorization": "Bearer not-a-token"}
    a = alice.headers
    next_page = client.get("/todos", params={"limit": 1}, headers=a).links["next"]["url"]

    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/todos", {"headers": a}),
        ("GET", "/todos", {}),
        ("GET", "/todos", {"headers": bad}),
        ("GET", "/todos", {"headers": {"Authorization": "Basic YTpi"}}),
        ("GET", "/todos", {"headers": narrow}),
        ("GET", "/todos", {"headers": bob.headers}),
        ("GET", "/todos?limit=2", {"headers": a}),
        ("GET", next_page, {"headers": a}),
        ("GET", "/todos?limit=0", {"headers": a}),
        ("GET", "/todos?limit=many&state=bogus", {"headers": a}),
        ("GET", "/todos?limit=1&limit=2", {"headers": a}),
        ("GET", "/todos?state=completed", {"headers": a}),
        ("GET", "/todos?cursor=not-a-cursor", {"headers": a}),
        ("GET", "/todos?limit=0", {}),
        ("GET", f"/todos/{mine[0]}", {"headers": a}),
        ("GET", f"/todos/{mine[0]}", {"headers": narrow}),
        ("GET", f"/todos/{theirs}", {"headers": a}),
        ("GET", "/todos/no-such-todo", {"headers": a}),
        ("GET", f"/todos/{mine[0]}", {}),
        ("DELETE", f"/todos/{mine[0]}", {"headers": a | {"If-Match": '"7"'}}),
        ("DELETE", f"/todos/{mine[0]}", {"headers": a | {"If-Match": "seven"}}),
        ("DELETE", f"/todos/{theirs}", {"headers": a}),
        ("DELETE", "/todos/no-such-todo", {"headers": a}),
        ("DELETE", f"/todos/{mine[0]}", {"headers": narrow}),
        ("POST", "/auth/token", {"data": {"grant_type": "magic"}}),
        ("POST", "/auth/token", {"data": {"grant_type": "password"}}),
        ("POST", "/v1/auth/token", {"data": {}}),
        ("POST", "/auth/logout", {}),
        ("POST", "/auth/logout", {"headers": bad}),
        ("DELETE", "/users/me/sessions/no-such-session", {"headers": a}),
        ("DELETE", "/users/me/sessions/no-such-session", {}),
        ("DELETE", "/users/me/sessions", {"headers": bad}),
        ("DELETE", "/products/some-product", {}),
        ("DELETE", "/products/some-product", {"headers": a}),
        ("GET", "/index", {}),
        ("GET", "/index?limit=0", {}),
        ("GET", "/docs", {}),
        ("GET", "/docs/oauth2-redirect", {}),
        ("GET", "/redoc", {}),
        ("GET", "/.well-known/jwks.json", {}),
        ("GET", "/.well-known/openid-configuration", {}),
        ("GET", "/v1/swagger.json", {}),
        ("GET", "/v1/openapi.json", {}),
        ("GET", "/v1/docs", {}),
        ("GET", "/v1/redoc", {}),
        ("GET", "/", {}),
        ("GET", "/app/0/app.js", {}),
        ("GET", "/app/0/no-such-file.js", {}),
    ]
    first = [_answer(client, method, path, **options) for method, path, options in requests]
    with _fastapi_handlers():
        second = [_answer(client, method, path, **options) for method, path, options in requests]
    for (method, path, _), one, other in zip(requests, first, second, strict=True):
        assert one == other, f"{method} {path}"
    assert {200, 401, 403, 404, 412, 422} <= {status for status, _, _ in first}

    # A write each way, on a todo of its own: both are gone, the one no request deleted is not.
    assert client.delete(f"/todos/{mine[1]}", headers=a).status_code == 204
    with _fastapi_handlers():
        assert client.delete(f"/todos/{mine[2]}", headers=a).status_code == 204
    assert [t["uid"] for t in client.get("/todos", headers=a).json()] == [mine[0]]

    # Every lean route was asked something above.
    asked = {(method, path.partition("?")[0]) for method, path, _ in requests}
    for route in _lean_routes():
        for method in route.methods or ():
            assert any(method == m and route.path_regex.match(p) for m, p in asked), (
                f"{method} {route.path} is not asked"
            )


async def _check(request: Request) -> str:
    return request.headers.get("x-who", "nobody")


async def _greet(who: Annotated[str, Depends(_check)], times: int = 1) -> Response:
    return Response(f"{who} " * times)


def _ask(app: FastAPI, method: str, path: str, **options: Any) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return await http.request(method, path, **options)

    return asyncio.run(call())


def _app() -> FastAPI:
    app = FastAPI()
    app.router.route_class = LeanRoute
    app.get("/greet")(_greet)
    return app


def test_a_lean_route_follows_an_apps_dependency_overrides() -> None:
    app = _app()
    (route,) = [r for r in app.router.routes if isinstance(r, LeanRoute)]
    assert route.lean
    assert _ask(app, "GET", "/greet?times=2", headers={"x-who": "ann"}).text == "ann ann "
    assert _ask(app, "GET", "/greet?times=two").status_code == 422

    async def someone() -> str:
        return "someone"

    app.dependency_overrides[_check] = someone
    assert _ask(app, "GET", "/greet", headers={"x-who": "ann"}).text == "someone "


def test_routes_it_cannot_plan_are_fastapis() -> None:
    app = FastAPI()
    app.router.route_class = LeanRoute

    @app.post("/body")
    async def with_body(payload: dict[str, int]) -> Response:
        return Response(str(payload))

    @app.get("/plain")
    def plain() -> Response:
        return Response("plain")

    @app.get("/model")
    async def model() -> dict[str, int]:
        return {"n": 1}

    @app.get("/twice")
    async def twice(
        one: Annotated[str, Depends(_check)], two: Annotated[str, Depends(_check)]
    ) -> Response:
        return Response(one + two)

    routes = {r.path: r for r in app.router.routes if isinstance(r, LeanRoute)}
    assert not any(route.lean for route in routes.values())
    assert _ask(app, "POST", "/body", json={"a": 1}).text == "{'a': 1}"
    assert _ask(app, "GET", "/plain").text == "plain"
    assert _ask(app, "GET", "/model").json() == {"n": 1}
    assert _ask(app, "GET", "/twice", headers={"x-who": "x"}).text == "xx"
