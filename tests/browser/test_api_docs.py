"""Swagger UI and ReDoc work in Chromium under their Content-Security-Policy, loading
nothing from anywhere but nimbus."""

from playwright.sync_api import expect

from tests.browser.support import Watched
from tests.support import Served


def test_swagger_ui_renders_and_authorizes_under_its_policy(
    watched: Watched, server: Served
) -> None:
    page = watched.page
    page.goto(f"{server.url}/docs")
    expect(page.get_by_text("/todos/{uid}").first).to_be_visible()
    page.get_by_role("button", name="Authorize").first.click()
    expect(page.get_by_label("username:").first).to_be_visible()
    assert all(url.startswith(server.url) for url in watched.urls), watched.urls


def test_redoc_renders_under_its_policy(watched: Watched, server: Served) -> None:
    page = watched.page
    page.goto(f"{server.url}/redoc")
    # ReDoc lays out the whole document before it shows any of it: slow on a loaded machine.
    expect(
        page.get_by_text("Exchange a username (or email) and password for tokens;").first
    ).to_be_attached(timeout=30_000)
    # Its search runs in a worker made from a blob: of this origin.
    local = (server.url, f"blob:{server.url}")
    assert all(url.startswith(local) for url in watched.urls), watched.urls
