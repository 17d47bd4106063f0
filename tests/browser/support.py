"""What the browser tests share: Chromium, and pages watched for errors that leave a
screenshot behind when their test fails."""

import os
import re
import time
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import TypedDict

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, ViewportSize, expect

from tests.mail.servers import SmtpServer
from tests.support import PASSWORD, Served

# Debian's package (`scripts/install --dev` installs it); never Playwright's own downloads.
CHROMIUM = os.environ.get("NIMBUS_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts" / "browser"
FAILED = pytest.StashKey[bool]()
REFRESH_KEY = "nimbus.refresh_token"
SESSION_ENDED = "Your session has ended. Please log in again."


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


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def log_in(page: Page, server: Served, username: str, password: str = PASSWORD) -> None:
    page.goto(server.url)
    form = page.get_by_role("form", name="Log in")
    form.get_by_label("Username").fill(username)
    form.get_by_label("Password").fill(password)
    form.get_by_role("button", name="Log in").click()
    expect(page.get_by_text(f"Signed in as {username}")).to_be_visible()


def open_account(page: Page) -> None:
    page.get_by_role("navigation").get_by_role("link", name="Account").click()
    expect(page.get_by_role("heading", name="Your account", exact=True)).to_be_focused()


def log_out(page: Page) -> None:
    page.get_by_role("button", name="Log out", exact=True).click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()


def confirm_it_is_you(page: Page) -> Locator:
    """The account page's box for the proof a change to the account's factors takes."""
    return page.get_by_role("group", name="Confirm it is you")


def stored(page: Page) -> dict[str, str]:
    """What the page keeps in its tab's sessionStorage."""
    items: dict[str, str] = page.evaluate("() => ({...sessionStorage})")
    return items


# Layout on small screens: what a person would see cut off, scrolled sideways or broken.

PHONE: ViewportSize = {"width": 390, "height": 844}
DESK: ViewportSize = {"width": 1024, "height": 800}

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


# Mail: the server sends through aiosmtpd, and a test reads what reached its own users.


class MailEnv(TypedDict):
    NIMBUS_MAIL_URL: str
    NIMBUS_PUBLIC_URL: str


def mail_env(mail_server: SmtpServer, port: int) -> MailEnv:
    """The settings of a `nimbus serve` on `port` that mails through `mail_server`."""
    return {
        "NIMBUS_MAIL_URL": f"smtp://127.0.0.1:{mail_server.port}",
        "NIMBUS_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }


def mails_to(mail_server: SmtpServer, address: str) -> list[EmailMessage]:
    """Every mail the server has received for `address`, oldest first."""
    return [
        received.mail
        for received in list(mail_server.inbox.received)
        if address.lower() in (recipient.lower() for recipient in received.recipients)
    ]


def links_to(mail_server: SmtpServer, address: str, base: str, fragment: str) -> list[str]:
    """The links to `base`/?token=...#`fragment` in the plain text of the mails to `address`,
    oldest first."""
    pattern = re.compile(re.escape(base) + r"/\?token=[\w%.~-]+#" + re.escape(fragment) + r"\b")
    found: list[str] = []
    for mail in mails_to(mail_server, address):
        plain = mail.get_body(preferencelist=("plain",))
        assert plain is not None, mail
        found += dict.fromkeys(pattern.findall(plain.get_content()))  # once a mail
    return found


def next_link(
    mail_server: SmtpServer, address: str, base: str, fragment: str, *, seen: int = 0
) -> str:
    """The link after the first `seen` of links_to, once its mail arrives (mail is sent in the
    background, a moment after the request that asked for it)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = links_to(mail_server, address, base, fragment)
        if len(found) > seen:
            return found[seen]
        time.sleep(0.05)
    raise AssertionError(f"no link #{seen + 1} to #{fragment} mailed to {address} within 10 s")
