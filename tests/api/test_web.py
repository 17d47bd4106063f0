"""GET / and its assets over HTTP: the headers that keep the page safe and cacheable, and
nothing served that the page does not name. (tests/browser runs the app itself.)"""

import re
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from nimbus.api.routes import web
from nimbus.settings import Settings
from tests.support import make_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The page does not touch storage: SQLite alone will do."""
    return make_settings(tmp_path / "data")


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[dict[str, str | None]] = []
        self.inline: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]
        if tag == "script":
            self.scripts.append(found)
        self.inline += [name for name, _ in attrs if name.startswith("on") or name == "style"]


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def test_the_page_carries_a_strict_content_security_policy(client: httpx.Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in response.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["base-uri"] == "'none'"
    assert policy["form-action"] == "'none'"
    assert "unsafe" not in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["etag"] == f'"{web.bundle().version}"'


def test_the_page_loads_nothing_but_its_own_assets(client: httpx.Client) -> None:
    page = _parse(client.get("/").text)
    assets = f"/app/{web.bundle().version}/"
    for url in page.urls:
        assert url.startswith((assets, "#", "/docs")) or url == "data:,", url
    assert page.scripts == [{"type": "module", "src": f"{assets}app.js"}]
    assert page.inline == []  # the policy would block inline handlers and styles


def test_every_asset_is_served_for_a_year_with_its_type(client: httpx.Client) -> None:
    page = _parse(client.get("/").text)
    named = {url for url in page.urls if url.startswith("/app/")}
    # The modules the entry script imports are assets too.
    imported = re.findall(r'from "\./([\w.]+)"', web.bundle().assets["app.js"].decode())
    named |= {f"/app/{web.bundle().version}/{name}" for name in imported}
    assert {url.rsplit("/", 1)[1] for url in named} == set(web.bundle().assets)
    for url in named:
        response = client.get(url)
        assert response.status_code == 200, url
        kind = "javascript" if url.endswith(".js") else "css"
        assert response.headers["content-type"] == f"text/{kind}; charset=utf-8"
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert response.headers["x-content-type-options"] == "nosniff"


def test_a_page_the_browser_holds_is_not_sent_again(client: httpx.Client) -> None:
    etag = client.get("/").headers["etag"]
    for sent in (etag, f"W/{etag}", f'"other", {etag}'):
        response = client.get("/", headers={"If-None-Match": sent})
        assert response.status_code == 304
        assert response.content == b""
        assert response.headers["etag"] == etag
    assert client.get("/", headers={"If-None-Match": '"other"'}).status_code == 200


@pytest.mark.store_independent
@pytest.mark.parametrize(
    "path",
    [
        "/app/0000000000000000/app.js",  # an older release
        "/app/{version}/missing.js",
        "/app/{version}/index.html",  # the page is served at / only
        "/app/{version}/..%2Fapi%2Froutes%2Fweb.py",
        "/app/{version}",
        "/app",
    ],
)
def test_anything_else_under_app_is_a_json_404(client: httpx.Client, path: str) -> None:
    response = client.get(path.format(version=web.bundle().version))
    assert response.status_code == 404
    assert response.json() == {"message": "Not Found", "code": "not_found"}


def test_the_page_and_its_assets_stay_out_of_the_openapi_document(
    client: httpx.Client,
) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths
    assert not [path for path in paths if path.startswith("/app")]


def test_the_scripts_never_write_html() -> None:
    """Data reaches the page as text only: no HTML parsing sinks, no eval."""
    sinks = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|Function\(")
    for name, content in web.bundle().assets.items():
        assert not sinks.search(content.decode()), name
