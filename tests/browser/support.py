"""What the browser tests share: a `nimbus serve` subprocess, Chromium, and pages watched for
errors that leave a screenshot behind when their test fails."""

import os
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, ViewportSize

from tests.support import NIMBUS, cli_env, free_port

# Debian's package (`scripts/install --dev` installs it); never Playwright's own downloads.
CHROMIUM = os.environ.get("NIMBUS_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts" / "browser"
FAILED = pytest.StashKey[bool]()


@dataclass
class Server:
    url: str
    data_dir: Path


@contextmanager
def nimbus_serve(tmp_path: Path, **env: str) -> Iterator[Server]:
    """`nimbus serve` on a fresh SQLite data dir, on 127.0.0.1 and a free port."""
    data_dir = tmp_path / "data"
    port = free_port()
    process = subprocess.Popen(
        [NIMBUS, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=cli_env(data_dir, **env),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process)
        yield Server(url, data_dir)
    finally:
        process.terminate()
        process.wait(timeout=15)
        assert process.stderr is not None
        log = process.stderr.read().decode()
        process.stderr.close()
        assert "Traceback" not in log, log


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("nimbus serve exited")
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("nimbus serve did not come up")


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
