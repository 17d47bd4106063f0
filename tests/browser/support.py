"""What the browser tests share: Chromium, and pages watched for errors that leave a
screenshot behind when their test fails."""

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, ViewportSize

# Debian's package (`scripts/install --dev` installs it); never Playwright's own downloads.
CHROMIUM = os.environ.get("NIMBUS_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts" / "browser"
FAILED = pytest.StashKey[bool]()


@dataclass
class Watched:
    """A page and what went wrong in it: script errors, CSP violations, failed loads."""

    page: Page
    problems: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    statuses: list[tuple[int, str]] = field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        # Chromium logs every 4xx a fetch gets ("Failed to load resource"); the tests cause
        # those on purpose and check what the page shows instead.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.problems.append(message.text)


def open_page(
    browser: Browser, request: pytest.FixtureRequest, viewport: ViewportSize, *, phone: bool = False
) -> Watched:
    context = browser.new_context(
        viewport=viewport, is_mobile=phone, has_touch=phone, device_scale_factor=2 if phone else 1
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    watched = Watched(page)
    page.on("console", watched.console)
    page.on("pageerror", lambda error: watched.problems.append(f"uncaught: {error}"))
    page.on("request", lambda sent: watched.urls.append(sent.url))
    page.on("response", lambda got: watched.statuses.append((got.status, got.url)))
    request.addfinalizer(lambda: _finish(watched, request))
    return watched


def _finish(watched: Watched, request: pytest.FixtureRequest) -> None:
    if request.node.stash.get(FAILED, False):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.nodeid)
        path = ARTIFACTS / f"{name}.png"
        watched.page.screenshot(path=path, full_page=True)
        print(f"screenshot: {path}")
    watched.page.context.close()
    assert not watched.problems, watched.problems
