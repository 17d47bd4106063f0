"""What the browser tests share: Chromium, and pages watched for errors that leave a
screenshot behind when their test fails."""

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, ViewportSize

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


# Layout on small screens: what a person would see cut off, scrolled sideways or broken.

PHONE: ViewportSize = {"width": 390, "height": 844}

# Places where a line ends between two letters or digits of one text node: a word broken
# in the middle (a hyphen, a dot or an @ may end a line; a letter may not).
_MID_WORD_BREAKS = """nodes => nodes.flatMap(node => {
    const found = [];
    const walker = document.createTreeWalker(node, NodeFilter.SHOW_TEXT);
    const range = document.createRange();
    for (let text = walker.nextNode(); text; text = walker.nextNode()) {
        let top = null;  // of the last character drawn
        for (let i = 0; i < text.length; i++) {
            range.setStart(text, i);
            range.setEnd(text, i + 1);
            const box = range.getBoundingClientRect();
            if (!box.width) continue;
            const newLine = top !== null && box.top > top + box.height / 2;
            const pair = text.data.slice(i - 1, i + 1);
            if (newLine && /^[\\p{L}\\p{N}]{2}$/u.test(pair)) {
                found.push(text.data.slice(0, i) + "|" + text.data.slice(i));
            }
            top = box.top;
        }
    }
    return found;
})"""


def mid_word_breaks(elements: Locator) -> list[str]:
    """The texts in `elements` that wrap mid-word, with a | where the line breaks."""
    found: list[str] = elements.evaluate_all(_MID_WORD_BREAKS)
    return found


def sideways_overflow(page: Page) -> int:
    """How far the document scrolls sideways: 0 when it fits the screen's width."""
    overflow: int = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    return overflow


def off_screen(elements: Locator) -> list[str]:
    """The visible ones of `elements` that reach past the left or right of the viewport."""
    found: list[str] = elements.evaluate_all(
        """nodes => nodes.filter(node => {
            const box = node.getBoundingClientRect();
            return box.width && (box.left < 0 || box.right > window.innerWidth);
        }).map(node => `${node.textContent.trim()} at ${node.getBoundingClientRect().left}-` +
                       `${node.getBoundingClientRect().right}`)"""
    )
    return found
