"""docs/web-app.png, docs/web-app.md's picture of the web app: the todos on a laptop-sized screen
beside the message board on a phone. Regenerate with `.venv/bin/python -m tests.browser.screenshot`.
"""

import base64
import tempfile
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright

from tests.browser.support import CHROMIUM
from tests.support import PASSWORD, Served, nimbus_serve

OUTPUT = Path(__file__).parents[2] / "docs" / "web-app.png"
TODOS = [
    ("Book the venue for the team offsite", "completed"),
    ("Review the pull request for the login limits", "started"),
    ("Write the quarterly report", "started"),
    ("Renew the TLS certificate", "unstarted"),
    ("Buy oat milk", "unstarted"),
]
MESSAGES = [
    ("bob", "Lunch at noon? The new place on the corner does a good soup."),
    ("alice", "Yes! Save me a seat, I'll be 5 minutes late."),
    ("bob", "Deploy of the messages board is done. Say hi here."),
]


def _seed(server: Served) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        tokens = {}
        for name in ("alice", "bob"):
            client.post("/users", json={"username": name, "password": PASSWORD})
            login = client.post("/login", json={"username": name, "password": PASSWORD})
            tokens[name] = {"Authorization": f"Bearer {login.json()['access_token']}"}
        for author, text in reversed(MESSAGES):
            client.post("/messages", json={"text": text}, headers=tokens[author])
        for description, state in reversed(TODOS):
            todo = client.post("/todos", json={"description": description}, headers=tokens["alice"])
            if state != "unstarted":
                uid = todo.json()["uid"]
                client.patch(f"/todos/{uid}", json={"state": state}, headers=tokens["alice"])


def _shot(
    browser: Browser, server: Served, view: str, viewport: ViewportSize, *, touch: bool = False
) -> bytes:
    context = browser.new_context(
        viewport=viewport, device_scale_factor=1, has_touch=touch, is_mobile=touch
    )
    page = context.new_page()
    _log_in(page, server)
    page.goto(f"{server.url}/#{view}")
    page.get_by_role("heading", name=view.title()).wait_for()
    page.locator("li").first.wait_for()
    page.evaluate("() => document.activeElement?.blur()")
    picture = page.screenshot()
    context.close()
    return picture


def _log_in(page: Page, server: Served) -> None:
    page.goto(server.url)
    form = page.get_by_role("form", name="Log in")
    form.get_by_label("Username").fill("alice")
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Log in").click()
    page.get_by_text("Signed in as alice").wait_for()


def main() -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        nimbus_serve(Path(tmp) / "data") as server,
        sync_playwright() as driver,
    ):
        _seed(server)
        browser = driver.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        laptop = _shot(browser, server, "todos", {"width": 820, "height": 640})
        phone = _shot(browser, server, "messages", {"width": 340, "height": 640}, touch=True)
        # The two side by side, laid out by the browser itself.
        page = browser.new_page(viewport={"width": 1220, "height": 680})
        images = "".join(
            f'<img src="data:image/png;base64,{base64.b64encode(png).decode()}">'
            for png in (laptop, phone)
        )
        page.set_content(
            "<body style='margin:0;padding:20px;background:#c9d3dd;display:flex;gap:20px'>"
            f"<style>img{{border-radius:8px;box-shadow:0 2px 8px #0004}}</style>{images}</body>"
        )
        OUTPUT.parent.mkdir(exist_ok=True)
        page.screenshot(path=OUTPUT)
        browser.close()
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
