"""The API behind API Gateway: every route answers through the Lambda handler, in REST API
(payload 1.0) and HTTP API (payload 2.0) events, exactly as `nimbus serve` answers over HTTP.
Everything runs on the DynamoDB backend, against the DynamoDB-API server over HTTP."""

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.credentials import Credentials

from nimbus.api.app import create_app
from nimbus.api.routes import web
from nimbus.bootstrap import build
from nimbus.domain.users import Role
from nimbus.entrypoints.aws_lambda import make_handler
from nimbus.settings import Settings
from tests.aws import scenario
from tests.aws.events import LambdaTransport, http_event, rest_event, served_routes
from tests.backends import database_url
from tests.support import PASSWORD, live_server, make_settings

PAYLOADS = [("1.0", "prod"), ("2.0", "prod"), ("2.0", "$default")]


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    with database_url("dynamodb", tmp_path) as url:
        settings = make_settings(tmp_path / "data", database_url=url)
        build(settings).close()  # the tables, as `nimbus resources create` makes them
        yield settings


def admin_maker(settings: Settings) -> Callable[[str], None]:
    def make(username: str) -> None:
        container = build(settings)
        container.users.create(username=username, password=PASSWORD, role=Role.ADMIN)

    return make


def credential_maker(settings: Settings) -> Callable[[str], Credentials]:
    def make(name: str) -> Credentials:
        container = build(settings)
        credential, secret = container.credentials.create(name)
        container.close()
        return Credentials(credential.access_key_id, secret)

    return make


def lambda_client(settings: Settings, payload: str, stage: str, **options: Any) -> httpx.Client:
    transport = LambdaTransport(make_handler(settings), payload=payload, stage=stage, **options)
    return httpx.Client(transport=transport, base_url="https://api.example.com")


def test_every_route_is_in_the_scenario(settings: Settings) -> None:
    routes = {
        (method, path.removesuffix("/{proxy+}"))
        for method, path in served_routes(create_app(build(settings)))
    }
    assert len(routes) > 20
    with lambda_client(settings, "1.0", "prod") as client:
        exchanges = scenario.run(client, admin_maker(settings), "/prod", credential_maker(settings))
        visited = {(e.method, e.route) for e in exchanges}
    assert routes <= visited, routes - visited


@pytest.fixture
def over_http(tmp_path: Path) -> list[scenario.Exchange]:
    with database_url("dynamodb", tmp_path / "http") as url:
        settings = make_settings(tmp_path / "http-data", database_url=url)
        container = build(settings)
        with live_server(container) as base, httpx.Client(base_url=base, timeout=30) as client:
            return scenario.run(client, admin_maker(settings), "", credential_maker(settings))


def test_every_status_and_header_the_api_sends_is_documented(
    settings: Settings, over_http: list[scenario.Exchange]
) -> None:
    """Each answer of the scenario against the OpenAPI document: its status is one its
    operation lists, and its ETag, Link, Retry-After and WWW-Authenticate are named there."""
    document = create_app(build(settings)).openapi()
    checked = 0
    for exchange in over_http:
        operation = document["paths"].get(exchange.route, {}).get(exchange.method.lower())
        if operation is None:
            continue  # a page, an alias or a method the route lacks: not in the document
        response = operation["responses"].get(str(exchange.status))
        assert response is not None, (exchange.method, exchange.route, exchange.status)
        documented = {name.lower() for name in response.get("headers", {})}
        sent = {name for name, _ in exchange.headers} - {"allow"}
        assert sent <= documented, (exchange.method, exchange.route, exchange.status, sent)
        checked += 1
    assert checked > 50


@pytest.mark.parametrize(("payload", "stage"), PAYLOADS)
def test_lambda_answers_as_the_http_server_does(
    settings: Settings, over_http: list[scenario.Exchange], payload: str, stage: str
) -> None:
    with lambda_client(settings, payload, stage) as client:
        prefix = "" if stage == "$default" else f"/{stage}"
        through_lambda = scenario.run(
            client, admin_maker(settings), prefix, credential_maker(settings)
        )
    assert len(through_lambda) == len(over_http)
    for ours, theirs in zip(through_lambda, over_http, strict=True):
        assert ours == theirs


@pytest.mark.parametrize(("payload", "stage"), PAYLOADS)
def test_links_and_docs_point_back_through_the_stage(
    settings: Settings, payload: str, stage: str
) -> None:
    prefix = "" if stage == "$default" else f"/{stage}"
    with lambda_client(settings, payload, stage) as client:
        docs = client.get("/docs").text
        assert f"url: '{prefix}/openapi.json'" in docs
        assert f'"{prefix}/static/docs/swagger-ui-bundle.js"' in docs
        assert f'"{prefix}/openapi.json"' in client.get("/redoc").text
        # The web app's scripts, and through them its API calls, go through the stage too.
        script = f"{prefix}/app/{web.bundle().version}/app.js"
        assert f'src="{script}"' in client.get("/").text
        assert client.get(script.removeprefix(prefix)).status_code == 200
        servers = client.get("/openapi.json").json().get("servers", [])
        assert servers == ([{"url": prefix}] if prefix else [])
        client.post("/users", json={"username": "alice", "password": PASSWORD})
        token = client.post("/login", json={"username": "alice", "password": PASSWORD})
        auth = {"Authorization": token.json()["token"]}
        for n in range(3):
            client.post("/todos", json={"description": f"todo {n}"}, headers=auth)
        page = client.get("/todos?limit=2", headers=auth)
        link = page.headers["link"]
        assert link.startswith(f"<{prefix}/todos?cursor=")
        assert link.endswith('&limit=2>; rel="next"')
        # The link, followed through the same stage, gives the rest.
        rest = client.get(link[1 : link.index(">")].removeprefix(prefix), headers=auth)
        assert [t["description"] for t in rest.json()] == ["todo 0"]


def test_the_embedded_default_needs_no_resources_create_on_lambda(tmp_path: Path) -> None:
    """Seed 000's session through the handler on a fresh SQLite file: the schema is made as
    the function starts, as `nimbus serve` makes it, where a template makes DynamoDB's."""
    with lambda_client(make_settings(tmp_path / "data"), "2.0", "$default") as client:
        created = client.post("/users", json={"username": "myusername", "password": PASSWORD})
        assert created.status_code == 201, created.text
        login = client.post("/login", json={"username": "myusername", "password": PASSWORD})
        auth = {"Authorization": login.json()["token"]}
        todo = client.post("/todos", json={"description": "My first Todo"}, headers=auth)
        assert todo.status_code == 201
        assert [t["description"] for t in client.get("/todos", headers=auth).json()] == [
            "My first Todo"
        ]
        assert client.get("/health/ready").status_code == 200


def test_a_custom_domain_mapping_key_is_stripped(tmp_path: Path, settings: Settings) -> None:
    mapped = settings.model_copy(update={"api_base_path": "/v1"})
    handle = make_handler(mapped)
    event = rest_event("GET", "/v1/health", stage="prod")
    event["requestContext"]["path"] = "/v1/health"  # a custom domain hides the stage
    answer = handle(event, None)
    assert answer["statusCode"] == 200
    docs = rest_event("GET", "/v1/docs")
    docs["requestContext"]["path"] = "/v1/docs"
    assert "url: '/v1/openapi.json'" in handle(docs, None)["body"]


def test_bodies_query_strings_and_headers_arrive_whole(settings: Settings) -> None:
    handle = make_handler(settings)
    for n, make in enumerate((rest_event, http_event)):
        body = f'{{"username": "zoe{n}", "password": "{PASSWORD}", "name": "Zo\u00eb"}}'
        headers = [("Content-Type", "application/json")]
        created = handle(make("POST", "/users", headers=headers, body=body.encode()), None)
        assert created["statusCode"] == 201
        assert json.loads(created["body"])["name"] == "Zo\u00eb"
    v1 = rest_event("GET", "/todos", query="state=started&state=completed&limit=5")
    assert handle(v1, None)["statusCode"] == 401  # parsed, routed, refused: no token
    # Two Authorization values would be ambiguous; they arrive joined and are refused.
    doubled = [("Authorization", "Bearer a"), ("Authorization", "Bearer b")]
    assert handle(rest_event("GET", "/users/me", headers=doubled), None)["statusCode"] == 401


def test_warm_up_pings_are_answered_without_the_app(settings: Settings) -> None:
    handle = make_handler(settings)
    assert handle({"warmer": True}, None) == {"warm": True}
    scheduled = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    assert handle(scheduled, None) == {"warm": True}


def test_cors_headers_on_answers_and_errors(settings: Settings) -> None:
    origin = "https://app.example.com"
    handle = make_handler(settings.model_copy(update={"cors_origins": (origin,)}))
    for make in (rest_event, http_event):
        error = handle(make("GET", "/users/me", headers=[("Origin", origin)]), None)
        assert error["statusCode"] == 401
        assert error["headers"]["access-control-allow-origin"] == origin
        too_big = make("POST", "/todos", headers=[("Origin", origin)], body=b"x" * (2 << 20))
        answer = handle(too_big, None)
        assert answer["statusCode"] == 413
        assert answer["headers"]["access-control-allow-origin"] == origin
        preflight = make(
            "OPTIONS",
            "/todos",
            headers=[
                ("Origin", origin),
                ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "authorization,content-type"),
            ],
        )
        allowed = handle(preflight, None)
        assert allowed["statusCode"] == 200
        assert "POST" in allowed["headers"]["access-control-allow-methods"]
        other = handle(make("GET", "/health", headers=[("Origin", "https://evil.example")]), None)
        assert "access-control-allow-origin" not in other["headers"]


IAM_USER = "arn:aws:iam::123456789012:user/index-page"


def test_an_iam_caller_verified_by_api_gateway_is_trusted_on_the_products_routes(
    settings: Settings,
) -> None:
    """On an AWS_IAM route API Gateway has checked the signature itself and says who signed:
    in `identity` for REST API events, in `authorizer.iam` for payload 2.0."""
    container = build(settings)
    product = container.products.create("Oak Desk Lamp", "", 2499, 3)
    container.close()
    handle = make_handler(settings)
    rest = rest_event("GET", "/products")
    rest["requestContext"]["identity"].update(accessKey="ASIAEXAMPLE", userArn=IAM_USER)
    http = http_event("GET", f"/products/{product.id}", stage="prod")
    http["requestContext"]["authorizer"] = {
        "iam": {"accessKey": "ASIAEXAMPLE", "accountId": "123456789012", "userArn": IAM_USER}
    }
    for event in (rest, http):
        answer = handle(event, None)
        assert answer["statusCode"] == 200, answer["body"]
        assert "Oak Desk Lamp" in answer["body"]


def test_without_an_iam_caller_or_a_signature_the_products_routes_refuse(
    settings: Settings,
) -> None:
    handle = make_handler(settings)
    rest = rest_event("GET", "/products")
    assert rest["requestContext"]["identity"]["accessKey"] is None  # as API Gateway sends it
    http = http_event("GET", "/products", stage="prod")
    http["requestContext"]["authorizer"] = {"iam": {"accessKey": None, "userArn": None}}
    for event in (rest, http):
        answer = handle(event, None)
        assert answer["statusCode"] == 403
        assert json.loads(answer["body"])["message"] == "Missing Authentication Token"


def test_an_iam_caller_is_no_user(settings: Settings) -> None:
    """The IAM identity opens the signed routes only: it is not a bearer of any token."""
    handle = make_handler(settings)
    event = rest_event("GET", "/users/me")
    event["requestContext"]["identity"].update(accessKey="ASIAEXAMPLE", userArn=IAM_USER)
    assert handle(event, None)["statusCode"] == 401
    post = rest_event(
        "POST", "/products", headers=[("Content-Type", "application/json")],
        body=b'{"name": "x", "price": 1}',
    )  # fmt: skip
    post["requestContext"]["identity"].update(accessKey="ASIAEXAMPLE", userArn=IAM_USER)
    assert handle(post, None)["statusCode"] == 401


def test_login_limits_count_api_gateways_source_ip_not_forwarded_headers(
    settings: Settings,
) -> None:
    strict = settings.model_copy(update={"login_max_failures_per_client": 2})
    handle = make_handler(strict)
    build(strict).users.create(username="ada", password=PASSWORD)

    def login(source_ip: str, password: str) -> int:
        body = json.dumps({"username": "ada", "password": password}).encode()
        headers = [("Content-Type", "application/json"), ("X-Forwarded-For", "192.0.2.99")]
        event = rest_event("POST", "/login", headers=headers, body=body)
        event["requestContext"]["identity"]["sourceIp"] = source_ip
        status: int = handle(event, None)["statusCode"]
        return status

    assert [login("198.51.100.1", "wrong") for _ in range(2)] == [401, 401]
    assert login("198.51.100.1", PASSWORD) == 429
    assert login("198.51.100.2", PASSWORD) == 200
