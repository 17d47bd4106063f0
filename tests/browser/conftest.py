"""The web app in a real browser: Debian's Chromium driven by Playwright, against a real
`nimbus serve` on SQLite. A failing test leaves a screenshot in test-artifacts/browser/."""

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from tests.browser.support import CHROMIUM, FAILED, Watched, mail_env, open_page
from tests.mail.servers import SmtpServer, smtp_server
from tests.support import Served, free_port, nimbus_serve


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Under xdist's loadgroup, one worker runs them all: one Chromium, one server.
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.xdist_group("browser"))


@pytest.fixture(scope="package")
def mail_server() -> Iterator[SmtpServer]:
    """aiosmtpd on 127.0.0.1, where the server's mail goes: each test reads its own users'."""
    with smtp_server() as running:
        yield running


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory, mail_server: SmtpServer) -> Iterator[Served]:
    """One server for these tests; each signs up users of its own."""
    port = free_port()
    data_dir = tmp_path_factory.mktemp("web") / "data"
    with nimbus_serve(data_dir, port=port, **mail_env(mail_server, port)) as running:
        yield running


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    # While open, the sync API marks its event loop as running in this thread, which breaks
    # other suites' asyncio code (Mangum's handler): it closes with this package.
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium is not at {CHROMIUM}: run ./scripts/install --dev (it installs Debian's "
            "chromium package), or set NIMBUS_TEST_CHROMIUM to a Chromium executable",
            pytrace=False,
        )
    launched = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
    )
    yield launched
    launched.close()


@pytest.fixture
def watched(browser: Browser, request: pytest.FixtureRequest) -> Watched:
    return open_page(browser, request, {"width": 1024, "height": 800})


@pytest.fixture
def page(watched: Watched) -> Page:
    return watched.page


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        item.stash[FAILED] = True
    return report
