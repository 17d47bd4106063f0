import httpx
from fastapi.routing import APIRoute

from nimbus.api.app import ROUTERS


def test_health_answers(client: httpx.Client) -> None:
    assert client.get("/health").json() == {"status": "ok"}


def test_readiness_checks_the_store(client: httpx.Client) -> None:
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_unknown_paths_are_json_404(client: httpx.Client) -> None:
    response = client.get("/no/such/thing")
    assert response.status_code == 404
    assert response.json() == {"message": "Not Found", "code": "not_found"}


def test_wrong_methods_are_json_405(client: httpx.Client) -> None:
    response = client.delete("/login")
    assert response.status_code == 405
    assert response.json() == {"message": "Method Not Allowed", "code": "method_not_allowed"}
    assert response.headers["Allow"] == "POST"


def test_openapi_documents_every_route(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    documented = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    served = {
        (route.path, method)
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    assert len(served) >= 10
    assert served == documented
