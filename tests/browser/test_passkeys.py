"""Passkeys in Chromium, with a CDP virtual authenticator (WebAuthn.addVirtualAuthenticator:
CTAP2, internal, resident keys and user verification) standing in for the device's: adding
one on the account page (and not a second on the same device), logging in with it alone,
using it as the second step after the password, and removing it, each change with the
password and the passkey (a full re-authentication), against
a real `nimbus serve` whose RP ID is localhost (Chromium takes no IP address as one)."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, CDPSession, Page, expect

from tests.browser.support import (
    Watched,
    confirm_it_is_you,
    log_in,
    log_out,
    open_account,
    open_page,
    unique,
)
from tests.support import PASSWORD, Served, free_port, nimbus_serve


@pytest.fixture(scope="module")
def localhost(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    port = free_port()
    data_dir = tmp_path_factory.mktemp("passkeys") / "data"
    origin = f"http://localhost:{port}"
    with nimbus_serve(
        data_dir,
        port=port,
        NIMBUS_PUBLIC_URL=origin,
        NIMBUS_WEBAUTHN_RP_ID="localhost",
        NIMBUS_WEBAUTHN_ORIGINS=origin,
    ) as running:
        yield Served(origin, running.data_dir, running.process)


@pytest.fixture
def watched_page(browser: Browser, request: pytest.FixtureRequest) -> Watched:
    return open_page(browser, request, {"width": 1024, "height": 800})


def virtual_authenticator(page: Page) -> tuple[CDPSession, str]:
    """A platform authenticator for the page, as a phone's or a laptop's is: the session
    that reads it, and its id."""
    session = page.context.new_cdp_session(page)
    session.send("WebAuthn.enable")
    added = session.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return session, added["authenticatorId"]


def sign_up(page: Page, server: Served, name: str) -> None:
    page.goto(server.url)
    signup = page.get_by_role("form", name="New here? Sign up")
    signup.get_by_label("Username").fill(name)
    signup.get_by_label("Password").fill(PASSWORD)
    signup.get_by_role("button", name="Sign up").click()
    expect(page.get_by_text(f"Signed in as {name}")).to_be_visible()


def confirm_with_password(page: Page, password: str = PASSWORD) -> None:
    confirm_it_is_you(page).get_by_label("Current password").fill(password)


def add_passkey(page: Page, name: str) -> None:
    confirm_with_password(page)
    form = page.get_by_role("form", name="Add a passkey")
    form.get_by_label("Name").fill(name)
    form.get_by_role("button", name="Add a passkey").click()
    expect(page.locator("#passkey-list")).to_contain_text(name)


def test_passkeys_are_added_used_alone_and_as_the_second_step_and_removed(
    watched_page: Watched, localhost: Served
) -> None:
    page = watched_page.page
    name = unique("pia")
    sign_up(page, localhost, name)
    session, authenticator = virtual_authenticator(page)
    open_account(page)
    expect(page.locator("#passkey-list")).to_contain_text("No passkeys yet.")
    add_passkey(page, "Laptop")
    credentials = session.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    assert [c["isResidentCredential"] for c in credentials["credentials"]] == [True]
    # The options exclude the account's passkeys: this device holds one already.
    # The password was taken: it is asked for again.
    form = page.get_by_role("form", name="Add a passkey")
    form.get_by_label("Name").fill("Again")
    form.get_by_role("button", name="Add a passkey").click()
    expect(page.locator("#passkeys-error")).to_contain_text("Type your current password")
    # The passkey proves it is the owner; then the device refuses to make a second.
    confirm_with_password(page)
    form.get_by_role("button", name="Add a passkey").click()
    expect(page.locator("#passkeys-error")).to_contain_text("has a passkey for your account")
    expect(page.locator("#passkey-list li")).to_have_count(1)

    # A passkey alone logs in.
    log_out(page)
    page.get_by_role("button", name="Log in with a passkey").click()
    expect(page.get_by_text(f"Signed in as {name}")).to_be_visible()

    # After the password, the passkey is the second step.
    log_out(page)
    form = page.get_by_role("form", name="Log in")
    form.get_by_label("Username").fill(name)
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Log in").click()
    step = page.get_by_role("form", name="Two-step login")
    expect(step.get_by_role("button", name="Use a passkey")).to_be_focused()
    expect(step.get_by_label("Code")).to_be_hidden()
    step.get_by_role("button", name="Use a passkey").click()
    expect(page.get_by_text(f"Signed in as {name}")).to_be_visible()

    # Removing it takes the password, and the passkey (the browser asks for it).
    open_account(page)
    expect(page.locator("#passkey-list")).to_contain_text("last used")
    remove = page.get_by_role("button", name="Remove Laptop")
    remove.click()
    expect(page.locator("#passkeys-error")).to_contain_text("current password")
    confirm_with_password(page, "not the password")
    remove.click()
    expect(page.locator("#passkeys-error")).to_contain_text("The current password is not right")
    confirm_with_password(page)
    remove.click()
    expect(page.locator("#passkey-list")).to_contain_text("No passkeys yet.")
    # With no passkey left, the password alone logs in again.
    log_out(page)
    log_in(page, localhost, name)
    assert watched_page.problems == []
