"""Headers every answer carries, and the ones the documentation pages need."""

import base64
import hashlib
import re

import httpx
import pytest


@pytest.mark.store_independent
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/health"),
        ("GET", "/todos"),  # 401
        ("GET", "/nowhere"),  # 404
        ("POST", "/users"),  # 422
        ("PUT", "/todos"),  # 405
        ("GET", "/openapi.json"),
        ("GET", "/"),
    ],
)
def test_every_answer_says_nosniff_once(client: httpx.Client, method: str, path: str) -> None:
    response = client.request(method, path)
    assert response.headers.get_list("x-content-type-options") == ["nosniff"]


@pytest.mark.store_independent
@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/todos", "GET, POST"),
        ("DELETE", "/users", "GET, POST"),
        ("POST", "/todos/some-id", "DELETE, GET, PATCH, PUT"),
        ("GET", "/login", "POST"),
    ],
)
def test_a_405_lists_every_method_the_resource_takes(
    client: httpx.Client, method: str, path: str, allowed: str
) -> None:
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.json()["code"] == "method_not_allowed"


@pytest.mark.store_independent
@pytest.mark.parametrize("path", ["/docs", "/redoc", "/docs/oauth2-redirect"])
def test_the_documentation_pages_cannot_be_framed_and_run_only_their_own_scripts(
    client: httpx.Client, path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert response.headers["x-frame-options"] == "DENY"
    assert "unsafe-eval" not in policy
    scripts = re.findall(r"script-src ([^;]*)", policy)[0]
    assert "unsafe-inline" not in scripts
    for inline in re.findall(rb"<script>(.*?)</script>", response.content, re.DOTALL):
        digest = base64.b64encode(hashlib.sha256(inline).digest()).decode()
        assert f"'sha256-{digest}'" in scripts
    assert not re.findall(r"(?:src|href)=\"https?://", response.text)


@pytest.mark.store_independent
def test_no_documentation_asset_comes_from_a_cdn(client: httpx.Client) -> None:
    page = client.get("/redoc").text
    script = re.findall(r'<script src="([^"]+)"', page)[0]
    bundle = client.get(script)
    assert bundle.status_code == 200
    assert b"cdn.redoc.ly" not in bundle.content
    assert "validatorUrl" in client.get("/docs").text
