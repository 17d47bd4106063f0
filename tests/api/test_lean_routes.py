"""The routes nimbus.api.routing serves with a planned handler answer as FastAPI's own handler
would: the same requests, right and wrong (no token, a bad one, a missing scope, bad
parameters and bodies, another user's todo, a stale version), get the same status, body and
headers from either, and every todo route is among them."""

import asyncio
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Cookie, Depends, FastAPI, Form, Header, Query, Request, Response
from fastapi._body_limit import wrap_app_with_body_limit
from fastapi.routing import APIRoute, request_response
from pydantic import AliasChoices, BaseModel

from nimbus.api.app import ROUTERS
from nimbus.api.routing import LeanRoute
from tests.factories import Account, an_account
from tests.support import PASSWORD

pytestmark = pytest.mark.store_independent

TODO_ROUTES = {
    ("GET", "/todos"),
    ("POST", "/todos"),
    ("GET", "/todos/{uid}"),
    ("PUT", "/todos/{uid}"),
    ("PATCH", "/todos/{uid}"),
    ("DELETE", "/todos/{uid}"),
}


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


def test_every_todo_route_is_served_lean() -> None:
    lean = {(method, route.path) for route in _lean_routes() for method in route.methods or ()}
    assert lean >= TODO_ROUTES


def test_every_lean_route_answers_as_fastapis_handler(
    client: httpx.Client, bob: Account, admin: Account
) -> None:
    """Two passes, one through each handler, each by an account of its own with the same
    todos, so that what one pass changes is not what the other sees."""
    theirs = _todo(client, bob.headers, "bob's")
    bad = {"Authorization": "Bearer not-a-token"}
    json_type = {"Content-Type": "application/json"}

    def answers(n: int) -> list[Answer]:
        account = an_account(client, f"pass{n}")
        kept, changed, deleted = (_todo(client, account.headers, d) for d in "kcd")
        form = {"grant_type": "password", "username": account.username, "password": PASSWORD}
        narrow = client.post("/auth/token", data=form | {"scope": "profile"}).json()
        narrow = {"Authorization": f"Bearer {narrow['access_token']}"}
        page = client.get("/todos", params={"limit": 1}, headers=account.headers)
        requests = asked(account.headers, narrow, page.links["next"]["url"], kept, changed, deleted)
        mine = [account.id, account.username, kept, changed, deleted]
        return [_same_across_passes(_answer(client, m, p, **o), mine) for m, p, o in requests]

    def asked(
        a: dict[str, str], narrow: dict[str, str], next_page: str, *todos: str
    ) -> list[tuple[str, str, dict[str, Any]]]:
        """The requests, right and wrong, of an account whose todos are `todos`."""
        kept, changed, deleted = todos
        return [
            ("GET", "/todos", {"headers": a}),
            ("GET", "/todos", {}),
            ("GET", "/todos", {"headers": bad}),
            ("GET", "/todos", {"headers": {"Authorization": "Basic YTpi"}}),
            ("GET", "/todos", {"headers": narrow}),
            ("GET", "/todos", {"headers": bob.headers}),
            ("GET", next_page, {"headers": a}),
            ("GET", "/todos?limit=0", {"headers": a}),
            ("GET", "/todos?limit=many&state=bogus", {"headers": a}),
            ("GET", "/todos?limit=1&limit=2", {"headers": a}),
            ("GET", "/todos?state=completed", {"headers": a}),
            ("GET", "/todos?cursor=not-a-cursor", {"headers": a}),
            ("GET", "/todos?limit=0", {}),
            ("GET", f"/todos/{kept}", {"headers": a}),
            ("GET", f"/todos/{kept}", {"headers": narrow}),
            ("GET", f"/todos/{theirs}", {"headers": a}),
            ("GET", "/todos/no-such-todo", {"headers": a}),
            ("GET", f"/todos/{kept}", {}),
            ("POST", "/todos", {"headers": a, "json": {"description": "n", "metadata": {"n": 1}}}),
            ("POST", "/todos", {"headers": a, "json": {"description": ""}}),
            ("POST", "/todos", {"headers": a, "json": {"description": 5, "state": "x"}}),
            ("POST", "/todos", {"headers": a, "json": {"description": "x", "extra": 1}}),
            ("POST", "/todos", {"headers": a, "json": {"description": "x" * 100_000}}),
            ("POST", "/todos", {"headers": a, "json": []}),
            ("POST", "/todos", {"headers": a, "json": {}}),
            ("POST", "/todos", {"headers": a, "json": 0}),
            ("POST", "/todos", {"headers": a | json_type, "content": b'{"description": '}),
            ("POST", "/todos", {"headers": a | json_type, "content": b""}),
            ("POST", "/todos", {"headers": a, "content": b'{"description": "untyped"}'}),
            ("POST", "/todos", {"headers": a | {"Content-Type": "text/plain"},
                                "content": b'{"description": "plain"}'}),
            ("POST", "/todos", {"headers": a | {"Content-Type": "application/todo+json"},
                                "content": b'{"description": "suffixed"}'}),
            ("POST", "/todos", {"headers": json_type, "content": b'{"description": '}),
            ("POST", "/todos", {"json": {"description": 5}}),
            ("POST", "/todos", {"headers": narrow, "json": {"description": "x"}}),
            ("PATCH", f"/todos/{changed}", {"headers": a, "json": {"state": "in progress"}}),
            ("PATCH", f"/todos/{changed}", {"headers": a, "json": {"state": "bogus"}}),
            ("PATCH", f"/todos/{changed}",
             {"headers": a | {"If-Match": '"9"'}, "json": {"description": "stale"}}),
            ("PUT", f"/todos/{changed}", {"headers": a | {"If-Match": '"2"'},
                                          "json": {"description": "replaced", "metadata": {}}}),
            ("PUT", f"/todos/{theirs}", {"headers": a, "json": {"description": "theirs"}}),
            ("PUT", f"/todos/{changed}", {"headers": a, "json": {"description": None}}),
            ("DELETE", f"/todos/{kept}", {"headers": a | {"If-Match": '"7"'}}),
            ("DELETE", f"/todos/{kept}", {"headers": a | {"If-Match": "seven"}}),
            ("DELETE", f"/todos/{theirs}", {"headers": a}),
            ("DELETE", "/todos/no-such-todo", {"headers": a}),
            ("DELETE", f"/todos/{kept}", {"headers": narrow}),
            ("DELETE", f"/todos/{deleted}", {"headers": a}),
            ("POST", "/auth/token", {"data": {"grant_type": "magic"}}),
            ("POST", "/auth/token", {"data": {"grant_type": "password"}}),
            ("POST", "/v1/auth/token", {"data": {}}),
            ("POST", "/auth/logout", {}),
            ("POST", "/auth/logout", {"headers": bad}),
            ("POST", "/auth/password/reset", {"json": {"token": "x", "password": "y" * 20}}),
            ("POST", "/auth/password/reset", {"json": {"token": "x"}}),
            ("POST", "/auth/email/verify", {"json": {"token": "not-a-token"}}),
            ("POST", "/auth/email/verify", {"headers": json_type, "content": b"["}),
            ("DELETE", "/users/me/sessions/no-such-session", {"headers": a}),
            ("DELETE", "/users/me/sessions/no-such-session", {}),
            ("DELETE", "/users/me/sessions", {"headers": bad}),
            ("DELETE", "/users/me/mfa/totp", {"headers": a, "json": {"password": PASSWORD}}),
            ("DELETE", "/users/me/mfa/totp", {"headers": a, "json": {}}),
            ("DELETE", "/users/me/passkeys/no-such-passkey",
             {"headers": a, "json": {"password": PASSWORD}}),
            ("DELETE", f"/users/{bob.id}", {"headers": a}),
            ("DELETE", "/users/no-such-user", {"headers": admin.headers}),
            ("DELETE", "/user/nobody@example.com", {"headers": a}),
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
        ]  # fmt: skip

    lean = answers(1)
    with _fastapi_handlers():
        fastapi = answers(2)
    requests = asked({}, {}, "/todos", "kept", "changed", "deleted")
    for (method, path, _), one, other in zip(requests, lean, fastapi, strict=True):
        assert one == other, f"{method} {path}"
    assert {200, 201, 204, 400, 401, 403, 404, 412, 422} <= {status for status, _, _ in lean}

    # Every lean route was asked something above.
    paths = {(method, path.partition("?")[0]) for method, path, _ in requests}
    for route in _lean_routes():
        for method in route.methods or ():
            assert any(method == m and route.path_regex.match(p) for m, p in paths), (
                f"{method} {route.path} is not asked"
            )


def _todo(client: httpx.Client, headers: dict[str, str], description: str) -> str:
    created = client.post("/todos", json={"description": description}, headers=headers)
    assert created.status_code == 201, created.text
    uid: str = created.json()["uid"]
    return uid


# What differs between two passes by design: new ids, times, and cursors that hold them.
_FRESH = re.compile(rb'"(uid|created_at|updated_at)":"[^"]*"|cursor=[^&>;]*')


def _same_across_passes(answer: Answer, mine: list[str]) -> Answer:
    status, body, headers = answer
    for n, value in enumerate(mine):
        body = body.replace(value.encode(), b"<%d>" % n)
    body = _FRESH.sub(b"...", body)
    headers = {
        k: _FRESH.sub(b"...", v.encode()).decode() for k, v in headers.items() if k != "location"
    }
    return status, body, headers


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


class _Item(BaseModel):
    name: str
    size: int = 0


async def _echo(item: _Item, who: Annotated[str, Depends(_check)], times: int = 1) -> Response:
    return Response(f"{who}: {item.name * times}")


async def _mixed(
    tags: Annotated[list[int], Query()],
    trace_id: Annotated[str, Header(alias="x-trace")],
    session: Annotated[int | None, Cookie()] = None,
    page_size: Annotated[int, Query(ge=1, validation_alias=AliasChoices("size", "n"))] = 5,
) -> Response:
    return Response(f"{tags} {trace_id} {session} {page_size}")


def _app(route_class: type[APIRoute] = LeanRoute) -> FastAPI:
    app = FastAPI()
    app.router.route_class = route_class
    app.get("/greet")(_greet)
    app.post("/echo")(_echo)
    app.get("/mixed")(_mixed)
    return app


def test_bodies_and_parameters_are_read_as_by_fastapi() -> None:
    """Both kinds of error in one answer, in FastAPI's order, with FastAPI's own 422; lists,
    aliases, a choice of aliases and cookies read as FastAPI reads them."""
    lean, plain = _app(), _app(APIRoute)
    assert all(r.lean for r in lean.router.routes if isinstance(r, LeanRoute))
    asked: list[tuple[str, dict[str, Any]]] = [
        ("/echo?times=x", {"json": {"size": "big"}}),
        ("/echo?times=2", {"json": {"name": "ab"}, "headers": {"x-who": "ann"}}),
        ("/echo", {"content": b'{"name": ', "headers": {"content-type": "application/json"}}),
        ("/echo?times=x", {"content": b"name=ab"}),
        ("/echo", {}),
    ]
    for path, options in asked:
        one, other = _ask(lean, "POST", path, **options), _ask(plain, "POST", path, **options)
        assert (one.status_code, one.content) == (other.status_code, other.content), path
    trace = {"x-trace": "t"}
    for path, headers in [
        ("/mixed?tags=1&tags=2&size=3", trace | {"cookie": "session=7"}),
        ("/mixed?tags=1&n=0", trace),
        ("/mixed?tags=x&size=y", {"cookie": "session=z"}),
        ("/mixed", {}),
        ("/mixed?tags=1&page_size=9", trace),
    ]:
        one, other = (
            _ask(lean, "GET", path, headers=headers),
            _ask(plain, "GET", path, headers=headers),
        )
        assert one.status_code in (200, 422)
        assert (one.status_code, one.content) == (other.status_code, other.content), path


def test_a_lean_route_follows_an_apps_dependency_overrides() -> None:
    app = _app()
    assert all(r.lean for r in app.router.routes if isinstance(r, LeanRoute))
    assert _ask(app, "GET", "/greet?times=2", headers={"x-who": "ann"}).text == "ann ann "
    assert _ask(app, "GET", "/greet?times=two").status_code == 422

    async def someone() -> str:
        return "someone"

    app.dependency_overrides[_check] = someone
    assert _ask(app, "GET", "/greet", headers={"x-who": "ann"}).text == "someone "


def test_routes_it_cannot_plan_are_fastapis() -> None:
    app = FastAPI()
    app.router.route_class = LeanRoute

    @app.post("/form")
    async def with_form(name: Annotated[str, Form()]) -> Response:
        return Response(name)

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
    assert _ask(app, "POST", "/form", data={"name": "ann"}).text == "ann"
    assert _ask(app, "GET", "/plain").text == "plain"
    assert _ask(app, "GET", "/model").json() == {"n": 1}
    assert _ask(app, "GET", "/twice", headers={"x-who": "x"}).text == "xx"
