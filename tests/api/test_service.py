import re
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute

from nimbus.api.app import ROUTERS, create_app
from nimbus.bootstrap import build
from tests.support import make_settings


@pytest.mark.store_independent
def test_health_answers(client: httpx.Client) -> None:
    assert client.get("/health").json() == {"status": "ok"}


def test_readiness_checks_the_store(client: httpx.Client) -> None:
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.store_independent
def test_unknown_paths_are_json_404(client: httpx.Client) -> None:
    response = client.get("/no/such/thing")
    assert response.status_code == 404
    assert response.json() == {"message": "Not Found", "code": "not_found"}


@pytest.mark.store_independent
def test_wrong_methods_are_json_405(client: httpx.Client) -> None:
    response = client.delete("/login")
    assert response.status_code == 405
    assert response.json() == {"message": "Method Not Allowed", "code": "method_not_allowed"}
    assert response.headers["Allow"] == "POST"


@pytest.mark.store_independent
def test_openapi_documents_every_route(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    documented = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    served = {
        (route.path, method)
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute) and route.include_in_schema
        for method in route.methods or ()
    }
    assert len(served) >= 10
    assert served == documented


@pytest.mark.store_independent
def test_swagger_ui_uses_local_assets_and_the_token_endpoint(client: httpx.Client) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text.lower()
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert "/static/docs/swagger-ui-bundle.js" in assets
    for asset in assets:
        assert asset.startswith("/"), asset
        assert client.get(asset).status_code == 200, asset
    flows = client.get("/openapi.json").json()["components"]["securitySchemes"]
    password_flow = next(iter(flows.values()))["flows"]["password"]
    assert password_flow["tokenUrl"] == "auth/token"
    assert set(password_flow["scopes"]) == {"profile", "todos", "messages", "admin"}


@pytest.mark.store_independent
def test_redoc_uses_local_assets(client: httpx.Client) -> None:
    page = client.get("/redoc")
    assert page.status_code == 200
    assert "fonts.googleapis" not in page.text
    script = re.search(r'<script src="([^"]+)"', page.text)
    assert script is not None
    assert script.group(1) == "/static/docs/redoc.standalone.js"
    assert client.get(script.group(1)).status_code == 200


def test_every_route_sits_once_in_the_apps_own_table(tmp_path: Path) -> None:
    """The routers' routes join the app's table as they are (api.app), not as included copies,
    each once: a framework change that broke this would show here."""
    container = build(make_settings(tmp_path / "data"))
    try:
        app = create_app(container)
        table = [route for route in app.routes if isinstance(route, APIRoute)]
        for router in ROUTERS:
            for route in router.routes:
                assert sum(entry is route for entry in table) == 1, route
        keys = [(route.path, frozenset(route.methods or ())) for route in table]
        assert len(keys) == len(set(keys))
    finally:
        container.close()
