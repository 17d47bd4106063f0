"""The account pages in Chromium: a forgotten password, a verified email, the sessions, a new
password or email and a deleted account, against a real `nimbus serve` whose mail goes to
aiosmtpd, where the tests read the links the way a person would follow them."""

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from nimbus.api.routes.accounts import FORGOT_ANSWER, VERIFY_ANSWER
from tests.browser.support import (
    DESK,
    PHONE,
    SESSION_ENDED,
    Watched,
    links_to,
    log_in,
    mail_env,
    next_link,
    off_screen,
    open_account,
    open_page,
    sideways_overflow,
    stored,
    unique,
)
from tests.mail.servers import SmtpServer
from tests.support import PASSWORD, Served, free_port, nimbus_serve

NEW_PASSWORD = "a brand new passphrase"
CHANGED = "Your password has been changed. Log in with the new one."


def sign_up(server: Served, username: str, email: str | None = None) -> None:
    """An account made through the API, with no session: the page's are the only ones."""
    body = {"username": username, "password": PASSWORD} | ({"email": email} if email else {})
    created = httpx.post(f"{server.url}/users", json=body, timeout=30)
    assert created.status_code == 201, created.text


def api_login(server: Served, username: str, password: str) -> httpx.Response:
    body = {"username": username, "password": password}
    return httpx.post(f"{server.url}/login", json=body, timeout=30)


def log_in_as(page: Page, username: str, password: str) -> None:
    """Log in from the form on show (after a reset, say), without loading the page anew."""
    form = page.get_by_role("form", name="Log in")
    form.get_by_label("Username").fill(username)
    form.get_by_label("Password").fill(password)
    form.get_by_role("button", name="Log in").click()


def choose_password(page: Page, password: str, again: str | None = None) -> Locator:
    """Fill the reset page's form and send it; returns the form."""
    form = page.get_by_role("form", name="Choose a new password")
    form.get_by_label("New password", exact=True).fill(password)
    form.get_by_label("The new password again").fill(password if again is None else again)
    form.get_by_role("button", name="Set the new password").click()
    return form


def sessions(page: Page) -> Locator:
    return page.get_by_role("list", name="Where you are logged in").get_by_role("listitem")


def expect_session_ended(page: Page) -> None:
    """The page, loaded anew, finds its session ended on the server."""
    page.reload()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    expect(page.get_by_text(SESSION_ENDED)).to_be_visible()
    assert stored(page) == {}


def test_a_forgotten_password_is_reset_from_the_mailed_link(
    watched: Watched, server: Served, mail_server: SmtpServer
) -> None:
    page = watched.page
    name = unique("rita")
    email = f"{name}@example.com"
    sign_up(server, name, email)
    page.goto(server.url)
    page.get_by_role("link", name="Forgot your password?").click()
    expect(page.get_by_role("heading", name="Forgot your password?")).to_be_focused()
    page.get_by_label("Email or username").fill(email.upper())
    page.get_by_role("button", name="Mail me a link").click()
    done = page.get_by_role("status").filter(has_text="on its way")
    expect(done).to_have_text(FORGOT_ANSWER)
    # No account, the same answer (and no mail anywhere).
    page.get_by_label("Email or username").fill(unique("nobody"))
    page.get_by_role("button", name="Mail me a link").click()
    expect(page.get_by_role("button", name="Mail me a link")).to_be_enabled()
    expect(done).to_have_text(FORGOT_ANSWER)

    link = next_link(mail_server, email, server.url, "reset-password")
    token = link.split("token=", 1)[1].split("#", 1)[0]
    page.goto(link)
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    # The token is gone from the address bar at once, and no request but the page's carried
    # it in its URL (the reset sends it in a JSON body).
    assert page.url == f"{server.url}/#reset-password"
    form = page.get_by_role("form", name="Choose a new password")
    expect(form.get_by_label("New password", exact=True)).to_have_accessible_description(
        "At least 8 characters, and not a common one"
    )
    choose_password(page, NEW_PASSWORD, NEW_PASSWORD + "!")
    expect(page.get_by_role("alert").filter(has_text="differ")).to_be_visible()
    expect(form.get_by_label("The new password again")).to_be_focused()
    choose_password(page, NEW_PASSWORD)
    expect(page.get_by_text(CHANGED)).to_be_visible()
    expect(page.get_by_role("form", name="Log in").get_by_label("Username")).to_be_focused()

    log_in_as(page, name, PASSWORD)
    expect(page.get_by_role("alert").filter(has_text="Invalid")).to_have_text(
        "Invalid username or password"
    )
    log_in_as(page, name, NEW_PASSWORD)
    expect(page.get_by_text(f"Signed in as {name}")).to_be_visible()
    assert [url for url in watched.urls if token in url] == [link.split("#")[0]]


def test_a_reset_link_works_once(page: Page, server: Served, mail_server: SmtpServer) -> None:
    name = unique("sam")
    email = f"{name}@example.com"
    sign_up(server, name, email)
    asked = httpx.post(f"{server.url}/auth/password/forgot", json={"username": name}, timeout=30)
    assert asked.status_code == 202, asked.text
    link = next_link(mail_server, email, server.url, "reset-password")

    page.goto(link)
    # The password policy's refusal shows as the API words it, and keeps the link usable.
    choose_password(page, "password")
    refusal = page.get_by_role("alert").filter(has_text="common")
    expect(refusal).to_be_visible()
    choose_password(page, NEW_PASSWORD)
    expect(page.get_by_text(CHANGED)).to_be_visible()

    # The same link again: refused, in the API's words, and the password stays the new one.
    page.goto(link)
    choose_password(page, "yet another passphrase")
    token = link.split("token=", 1)[1].split("#", 1)[0]
    again = httpx.post(
        f"{server.url}/auth/password/reset",
        json={"token": token, "password": "yet another passphrase"},
        timeout=30,
    )
    assert again.status_code == 400
    assert again.json()["code"] == "invalid_token"
    expect(page.get_by_role("alert").filter(has_text="link")).to_have_text(again.json()["message"])
    expect(page.get_by_role("link", name="Ask for a new link")).to_be_visible()
    assert api_login(server, name, NEW_PASSWORD).status_code == 200

    # Without the link's token, the page says what to do.
    page.goto("about:blank")
    page.goto(f"{server.url}/#reset-password")
    expect(page.get_by_role("alert")).to_contain_text("needs the link from the mail")


def test_an_email_given_at_sign_up_is_verified_from_the_mailed_link(
    watched: Watched, server: Served, mail_server: SmtpServer
) -> None:
    page = watched.page
    name = unique("tina")
    email = f"{name}@example.com"
    page.goto(server.url)
    signup = page.get_by_role("form", name="New here? Sign up")
    signup.get_by_label("Username").fill(name)
    signup.get_by_label("Password").fill(PASSWORD)
    signup.get_by_label("Email").fill(email)
    signup.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("status")).to_contain_text(f"on its way to {email}")

    open_account(page)
    details = page.locator("#account-details")
    expect(details).to_contain_text(email)
    expect(details).to_contain_text("Not verified")
    first = next_link(mail_server, email, server.url, "verify-email")
    # Lost the mail? Another link, on asking.
    page.get_by_role("button", name="Send the link again").click()
    expect(page.get_by_role("status")).to_have_text(VERIFY_ANSWER)
    link = next_link(mail_server, email, server.url, "verify-email", seen=1)
    assert link != first

    # Followed in this tab: the session carries on, and the page verifies the email.
    page.goto(link)
    expect(page.get_by_role("status")).to_have_text("Your email is verified. Thank you!")
    assert page.url == f"{server.url}/#verify-email"
    token = link.split("token=", 1)[1].split("#", 1)[0]
    assert [url for url in watched.urls if token in url] == [link.split("#")[0]]
    page.get_by_role("link", name="Your account").click()
    expect(details).to_contain_text("Verified")
    expect(details).not_to_contain_text("Not verified")
    expect(page.get_by_role("button", name="Send the link again")).to_be_hidden()

    # A made-up token is refused, with a way to ask for a new link.
    page.goto(f"{server.url}/?token=not-a-token#verify-email")
    expect(page.get_by_role("alert").first).to_contain_text("not valid")
    expect(page.get_by_role("form", name="Ask for a new link")).to_be_visible()


def test_a_new_email_needs_the_password_and_is_verified_anew(
    browser: Browser,
    page: Page,
    request: pytest.FixtureRequest,
    server: Served,
    mail_server: SmtpServer,
) -> None:
    name = unique("uma")
    sign_up(server, name, f"{name}@example.com")
    log_in(page, server, name)
    open_account(page)
    new_email = f"{name}@example.net"
    form = page.get_by_role("form", name="Change your email")
    form.get_by_label("New email").fill(new_email)
    form.get_by_label("Current password").fill("not the password")
    form.get_by_role("button", name="Change the email").click()
    expect(form.get_by_role("alert")).to_have_text("The current password is not right")
    expect(form.get_by_label("Current password")).to_be_focused()
    expect(page.locator("#account-email")).to_have_text(f"{name}@example.com")

    form.get_by_label("Current password").fill(PASSWORD)
    form.get_by_role("button", name="Change the email").click()
    expect(page.get_by_role("status")).to_contain_text(f"Your email is now {new_email}")
    expect(page.locator("#account-email")).to_have_text(new_email)
    expect(page.locator("#account-email-state")).to_have_text("Not verified")

    # The link, opened where nobody is logged in (another browser, say), verifies it.
    link = next_link(mail_server, new_email, server.url, "verify-email")
    elsewhere = open_page(browser, request, DESK).page
    elsewhere.goto(link)
    expect(elsewhere.get_by_role("status")).to_have_text("Your email is verified. Thank you!")
    expect(elsewhere.get_by_role("link", name="Log in")).to_be_visible()
    page.get_by_role("link", name="Todos").click()
    open_account(page)
    expect(page.locator("#account-email-state")).to_have_text("Verified")


def test_the_sessions_are_listed_and_ended(
    browser: Browser, request: pytest.FixtureRequest, server: Served
) -> None:
    name = unique("victor")
    sign_up(server, name)
    here = open_page(browser, request, DESK).page
    there = open_page(browser, request, DESK).page
    log_in(here, server, name)
    log_in(there, server, name)
    open_account(here)
    agent = here.evaluate("() => navigator.userAgent")
    expect(sessions(here)).to_have_count(2)
    # The most recently used first: the other browser logged in after this one.
    expect(sessions(here).nth(1)).to_contain_text("This device")
    expect(sessions(here).nth(0)).not_to_contain_text("This device")
    for n in range(2):
        item = sessions(here).nth(n)
        expect(item).to_contain_text("Chrome on Linux")
        expect(item).to_contain_text("From 127.0.0.1")
        expect(item).to_contain_text(agent)
        expect(item.locator("time")).to_have_count(2)

    other = sessions(here).filter(has_not_text="This device")
    other.get_by_role("button", name="End").click()
    expect(here.get_by_role("status")).to_have_text("Ended the session of Chrome on Linux.")
    expect(sessions(here)).to_have_count(1)
    expect(sessions(here).first.get_by_role("button", name="End")).to_be_focused()
    expect_session_ended(there)

    log_in(there, server, name)
    here.get_by_role("link", name="Todos").click()
    open_account(here)
    expect(sessions(here)).to_have_count(2)
    here.get_by_role("button", name="Log out everywhere else").click()
    expect(here.get_by_role("status")).to_have_text("You are logged out everywhere else.")
    expect(sessions(here)).to_have_count(1)
    expect(sessions(here).first).to_contain_text("This device")
    expect_session_ended(there)

    # Ending this device's own session is logging out.
    sessions(here).first.get_by_role("button", name="End").click()
    expect(here.get_by_role("heading", name="Log in")).to_be_visible()
    expect(here.get_by_text("You have logged out.")).to_be_visible()
    assert stored(here) == {}


def test_a_new_password_keeps_this_device_and_logs_out_the_others(
    browser: Browser, request: pytest.FixtureRequest, server: Served
) -> None:
    name = unique("wendy")
    sign_up(server, name)
    here = open_page(browser, request, DESK).page
    there = open_page(browser, request, DESK).page
    log_in(there, server, name)
    log_in(here, server, name)
    open_account(here)
    form = here.get_by_role("form", name="Change your password")
    form.get_by_label("Current password").fill("not the password")
    form.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    form.get_by_label("The new password again").fill(NEW_PASSWORD)
    form.get_by_role("button", name="Change the password").click()
    expect(form.get_by_role("alert")).to_have_text("The current password is not right")
    expect(form.get_by_label("Current password")).to_be_focused()

    form.get_by_label("Current password").fill(PASSWORD)
    form.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    form.get_by_label("The new password again").fill(NEW_PASSWORD)
    form.get_by_role("button", name="Change the password").click()
    expect(here.get_by_role("status")).to_have_text(
        "Your password has been changed, and every other device logged out."
    )
    expect(here.get_by_text(f"Signed in as {name}")).to_be_visible()
    expect(sessions(here)).to_have_count(1)
    expect(sessions(here).first).to_contain_text("This device")
    expect(form.get_by_label("New password", exact=True)).to_have_value("")
    expect_session_ended(there)
    # Still signed in here, on a session of the new password.
    here.reload()
    expect(here.get_by_text(f"Signed in as {name}")).to_be_visible()
    assert api_login(server, name, PASSWORD).status_code == 401
    assert api_login(server, name, NEW_PASSWORD).status_code == 200


def test_deleting_the_account_asks_first_and_needs_the_password(page: Page, server: Served) -> None:
    name = unique("xena")
    sign_up(server, name)
    log_in(page, server, name)
    open_account(page)
    form = page.get_by_role("form", name="Delete your account")
    dialog = page.get_by_role("dialog", name="Delete your account?")
    form.get_by_label("Current password").fill(PASSWORD)
    form.get_by_role("button", name="Delete my account").click()
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"The account “{name}”")
    expect(dialog.get_by_role("button", name="Keep my account")).to_be_focused()
    dialog.get_by_role("button", name="Keep my account").click()
    expect(dialog).to_be_hidden()
    form.get_by_role("button", name="Delete my account").click()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert api_login(server, name, PASSWORD).status_code == 200

    form.get_by_label("Current password").fill("not the password")
    form.get_by_role("button", name="Delete my account").click()
    dialog.get_by_role("button", name="Delete it for good").click()
    expect(form.get_by_role("alert")).to_have_text("The current password is not right")
    expect(form.get_by_label("Current password")).to_be_focused()
    expect(page.get_by_text(f"Signed in as {name}")).to_be_visible()

    form.get_by_label("Current password").fill(PASSWORD)
    form.get_by_role("button", name="Delete my account").click()
    dialog.get_by_role("button", name="Delete it for good").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    expect(page.get_by_text("Your account has been deleted.")).to_be_visible()
    assert stored(page) == {}
    assert api_login(server, name, PASSWORD).status_code == 401


def test_with_verified_emails_required_the_log_in_form_offers_the_link_again(
    page: Page, tmp_path: Path, mail_server: SmtpServer
) -> None:
    port = free_port()
    strict = mail_env(mail_server, port)
    with nimbus_serve(
        tmp_path / "data", port=port, NIMBUS_REQUIRE_VERIFIED_EMAIL="true", **strict
    ) as server:
        name = unique("yuri")
        email = f"{name}@example.com"
        page.goto(server.url)
        signup = page.get_by_role("form", name="New here? Sign up")
        signup.get_by_label("Username").fill(name)
        signup.get_by_label("Password").fill(PASSWORD)
        signup.get_by_label("Email").fill(email)
        signup.get_by_role("button", name="Sign up").click()
        expect(page.get_by_text(f"Follow the link mailed to {email}, then log in")).to_be_visible()
        resend = page.get_by_role("form", name="Verify your email")
        expect(resend.get_by_label("Your email")).to_have_value(email)
        expect(page.get_by_role("navigation")).to_be_hidden()

        # Logging in before following it: refused, with the way out on show.
        page.reload()
        log_in_as(page, name, PASSWORD)
        expect(page.get_by_role("alert").filter(has_text="Verify your email")).to_be_visible()
        expect(resend.get_by_label("Your email")).to_be_focused()
        resend.get_by_label("Your email").fill(email)
        resend.get_by_role("button", name="Send the link again").click()
        expect(resend.get_by_role("status")).to_have_text(VERIFY_ANSWER)

        link = next_link(mail_server, email, server.url, "verify-email", seen=1)
        assert len(links_to(mail_server, email, server.url, "verify-email")) == 2
        page.goto(link)
        expect(page.get_by_role("status")).to_have_text("Your email is verified. Thank you!")
        page.get_by_role("link", name="Log in").click()
        expect(page.get_by_role("heading", name="Log in")).to_be_focused()
        log_in_as(page, name, PASSWORD)
        expect(page.get_by_text(f"Signed in as {name}")).to_be_visible()


def test_the_account_page_fits_a_phone(
    browser: Browser, request: pytest.FixtureRequest, server: Served
) -> None:
    name = unique("zoe")
    sign_up(server, name, f"maximiliane.wolkenstein-rautenberg.{name}@example.org")
    page = open_page(browser, request, PHONE, phone=True).page
    log_in(page, server, name)
    page.get_by_role("link", name="Account").tap()
    expect(sessions(page)).to_have_count(1)
    assert sideways_overflow(page) == 0
    assert off_screen(page.locator("#view-account button:visible, #view-account input")) == []
