"""Two-step login in Chromium: setting it up on the account page (the QR code, the key, the
recovery codes), the login's second step with a code or a recovery code, a step token that
died on the way, and turning it off, against a real `nimbus serve`. The tests compute the
codes an authenticator app would show from the key the page shows."""

import re
import time
from dataclasses import dataclass

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from nimbus.security import totp
from tests.browser.support import (
    PHONE,
    Watched,
    confirm_it_is_you,
    log_out,
    off_screen,
    open_account,
    open_page,
    sideways_overflow,
    stored,
    unique,
)
from tests.support import PASSWORD, Served

RECOVERY_CODE = re.compile(r"^[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}$")
NEW_PASSWORD = "a brand new passphrase"


def code(secret: str, steps_ahead: int = 0) -> str:
    """What the app shows now, or that many steps on (nimbus accepts one either side)."""
    return totp.code_at(secret, totp.step_at(time.time()) + steps_ahead)


def wrong(secret: str) -> str:
    right = {code(secret, k) for k in (-1, 0, 1)}
    return next(guess for guess in ("000000", "000001", "000002", "000003") if guess not in right)


def part(page: Page) -> Locator:
    return page.get_by_role("region", name="Two-step login")


def second_step(page: Page) -> Locator:
    return page.get_by_role("form", name="Two-step login")


def password_step(page: Page, username: str, password: str = PASSWORD) -> None:
    form = page.get_by_role("form", name="Log in")
    form.get_by_label("Username").fill(username)
    form.get_by_label("Password").fill(password)
    form.get_by_role("button", name="Log in").click()
    expect(second_step(page).get_by_label("Code")).to_be_focused()


def type_code(page: Page, typed: str) -> None:
    form = second_step(page)
    form.get_by_label("Code").fill(typed)
    form.get_by_role("button", name="Log in").click()


def set_up(page: Page) -> str:
    """Start setting it up on the account page, with the password; the key the page shows."""
    confirm_it_is_you(page).get_by_label("Current password").fill(PASSWORD)
    part(page).get_by_role("button", name="Set up two-step login").click()
    expect(page.get_by_role("heading", name="Set up your authenticator app")).to_be_focused()
    key = page.locator("#factor-secret").text_content()
    assert key is not None
    secret = key.replace(" ", "")
    assert re.fullmatch(r"[A-Z2-7]{32}", secret), key
    return secret


@dataclass(frozen=True)
class ApiAccount:
    id: str
    headers: dict[str, str]
    secret: str
    codes: list[str]


def api_account(server: Served, username: str) -> ApiAccount:
    """An account signed up through the API, with two-step login on (confirmed with the
    present step's code)."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        body = {"username": username, "password": PASSWORD}
        assert client.post("/users", json=body).status_code == 201
        token = client.post("/login", json=body).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        secret = client.post(
            "/users/me/mfa/totp", json={"password": PASSWORD}, headers=headers
        ).json()["secret"]
        confirmed = client.post(
            "/users/me/mfa/totp/confirm", json={"code": code(secret)}, headers=headers
        )
        assert confirmed.status_code == 200, confirmed.text
        user_id = client.get("/users/me", headers=headers).json()["user"]["id"]
    return ApiAccount(user_id, headers, secret, confirmed.json()["recovery_codes"])


def test_two_step_login_is_set_up_used_with_a_code_or_a_recovery_code_and_turned_off(
    watched: Watched, server: Served
) -> None:
    page = watched.page
    name = unique("tess")
    page.goto(server.url)
    signup = page.get_by_role("form", name="New here? Sign up")
    signup.get_by_label("Username").fill(name)
    signup.get_by_label("Password").fill(PASSWORD)
    signup.get_by_role("button", name="Sign up").click()
    expect(page.get_by_text(f"Signed in as {name}")).to_be_visible()
    open_account(page)
    expect(part(page)).to_contain_text("Off: your password alone logs you in.")
    expect(part(page).get_by_role("form", name="Turn off two-step login")).to_be_hidden()

    secret = set_up(page)
    qr = part(page).get_by_role("img", name="QR code for your authenticator app")
    expect(qr).to_have_attribute("src", re.compile(r"^data:image/svg\+xml;"))
    # Drawn, not refused by the page's Content-Security-Policy.
    qr.evaluate("img => img.decode()")
    assert qr.evaluate("img => img.naturalWidth") > 0
    link = part(page).get_by_role("link", name="Or open it in an authenticator app")
    expect(link).to_have_attribute("href", re.compile(rf"^otpauth://totp/.*secret={secret}"))

    confirm = part(page).get_by_role("form", name="Then type the code the app shows")
    confirm.get_by_label("Code").fill(wrong(secret))
    confirm.get_by_role("button", name="Turn on two-step login").click()
    expect(confirm.get_by_role("alert")).to_contain_text("The code is not right")
    expect(confirm.get_by_label("Code")).to_be_focused()
    confirm.get_by_label("Code").fill(code(secret))
    confirm.get_by_role("button", name="Turn on two-step login").click()
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_focused()
    expect(page.get_by_role("status")).to_have_text("Two-step login is on.")
    listed = part(page).get_by_role("list", name="Your recovery codes").get_by_role("listitem")
    expect(listed).to_have_count(10)
    codes = listed.all_text_contents()
    assert len(set(codes)) == 10
    assert all(RECOVERY_CODE.match(one) for one in codes), codes
    expect(part(page)).to_contain_text("this is the only time they are shown")
    expect(qr).to_be_hidden()
    part(page).get_by_role("button", name="I have kept them").click()
    expect(listed).to_have_count(0)
    expect(part(page)).to_contain_text("On: a login asks for a code from your authenticator")
    expect(part(page)).to_contain_text("10 recovery codes left.")
    expect(part(page).get_by_role("button", name="Set up two-step login")).to_be_hidden()

    # The password, then a code: the next step's, since the one that confirmed is spent.
    log_out(page)
    with page.expect_response(lambda answer: answer.url.endswith("/login")) as login:
        password_step(page, name)
    mfa_token = login.value.json()["mfa_token"]
    expect(second_step(page).get_by_label("Code")).to_have_accessible_description(
        re.compile("recovery codes.*works too")
    )
    expect(page.get_by_role("navigation")).to_be_hidden()
    assert stored(page) == {}  # the step token is kept in memory only
    type_code(page, wrong(secret))
    expect(second_step(page).get_by_role("alert")).to_have_text(
        "The code is not right, or was used already"
    )
    expect(second_step(page).get_by_label("Code")).to_be_focused()
    type_code(page, code(secret, 1))
    expect(page.get_by_text(f"Signed in as {name}")).to_be_visible()
    expect(page.get_by_role("heading", name="Todos")).to_be_focused()
    assert not [url for url in watched.urls if mfa_token in url]

    # A recovery code, as typed by hand: in capitals, say.
    log_out(page)
    password_step(page, name)
    type_code(page, codes[0].upper())
    expect(page.get_by_text(f"Signed in as {name}")).to_be_visible()
    open_account(page)
    expect(part(page)).to_contain_text("9 recovery codes left.")

    # Off: the password and a code, both right.
    off = part(page).get_by_role("form", name="Turn off two-step login")
    proof = confirm_it_is_you(page)
    expect(proof.get_by_label("Code")).to_be_visible()  # asked for while it is on
    off.get_by_role("button", name="Turn off two-step login").click()
    expect(off.get_by_role("alert")).to_contain_text("Type your current password")
    expect(proof.get_by_label("Current password")).to_be_focused()
    proof.get_by_label("Current password").fill("not the password")
    proof.get_by_label("Code").fill(codes[1])
    off.get_by_role("button", name="Turn off two-step login").click()
    expect(off.get_by_role("alert")).to_have_text("The current password is not right")
    expect(proof.get_by_label("Current password")).to_be_focused()
    proof.get_by_label("Current password").fill(PASSWORD)
    proof.get_by_label("Code").fill(codes[0])  # spent
    off.get_by_role("button", name="Turn off two-step login").click()
    expect(off.get_by_role("alert")).to_have_text("The code is not right, or was used already")
    expect(proof.get_by_label("Code")).to_be_focused()
    expect(page.get_by_text(f"Signed in as {name}")).to_be_visible()  # a wrong code, not a 401
    proof.get_by_label("Code").fill(codes[1])
    off.get_by_role("button", name="Turn off two-step login").click()
    expect(page.get_by_role("status")).to_have_text(
        "Two-step login is off: your password alone logs you in."
    )
    expect(part(page).get_by_role("button", name="Set up two-step login")).to_be_focused()
    expect(proof.get_by_label("Code")).to_be_hidden()
    expect(proof.get_by_label("Current password")).to_have_value("")
    expect(off).to_be_hidden()

    log_out(page)
    form = page.get_by_role("form", name="Log in")
    form.get_by_label("Username").fill(name)
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Log in").click()
    expect(page.get_by_text(f"Signed in as {name}")).to_be_visible()


def test_a_dead_step_token_goes_back_to_the_password(page: Page, server: Served) -> None:
    name = unique("ugo")
    account = api_account(server, name)
    secret, codes = account.secret, account.codes
    page.goto(server.url)
    password_step(page, name)
    expect(page.get_by_role("form", name="Log in")).to_be_hidden()
    expect(page.get_by_role("form", name="New here? Sign up")).to_be_hidden()
    second_step(page).get_by_role("button", name="Back to the password").click()
    login = page.get_by_role("form", name="Log in")
    expect(login.get_by_label("Password")).to_be_focused()
    expect(login.get_by_label("Username")).to_have_value(name)

    # The password changes elsewhere while the page waits for the code: the step is dead.
    password_step(page, name)
    changed = httpx.patch(
        f"{server.url}/users/{account.id}",
        json={"password": NEW_PASSWORD, "current_password": PASSWORD},
        headers=account.headers,
        timeout=30,
    )
    assert changed.status_code == 200, changed.text
    type_code(page, code(secret, 1))
    expect(login.get_by_role("alert")).to_have_text(
        "This login has expired or is not valid: log in again"
    )
    expect(login.get_by_label("Password")).to_be_focused()
    expect(second_step(page)).to_be_hidden()
    password_step(page, name, NEW_PASSWORD)
    type_code(page, code(secret, 1))
    expect(page.get_by_text(f"Signed in as {name}")).to_be_visible()

    # A new password ends this session too: the page logs in again, and asks for a code.
    open_account(page)
    form = page.get_by_role("form", name="Change your password")
    form.get_by_label("Current password").fill(NEW_PASSWORD)
    form.get_by_label("New password", exact=True).fill(PASSWORD)
    form.get_by_label("The new password again").fill(PASSWORD)
    form.get_by_role("button", name="Change the password").click()
    expect(page.get_by_text("Your password has been changed. Type a code")).to_be_visible()
    expect(second_step(page).get_by_label("Code")).to_be_focused()
    type_code(page, codes[0])
    expect(page.get_by_text(f"Signed in as {name}")).to_be_visible()


def test_setting_it_up_fits_a_phone(
    browser: Browser, request: pytest.FixtureRequest, server: Served
) -> None:
    page = open_page(browser, request, PHONE, phone=True).page
    name = unique("vera")
    created = httpx.post(
        f"{server.url}/users", json={"username": name, "password": PASSWORD}, timeout=30
    )
    assert created.status_code == 201, created.text
    page.goto(server.url)
    form = page.get_by_role("form", name="Log in")
    form.get_by_label("Username").fill(name)
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Log in").tap()
    expect(page.get_by_text(f"Signed in as {name}")).to_be_visible()
    page.get_by_role("link", name="Account").tap()
    secret = set_up(page)
    parts = "#view-account button:visible, #view-account input:visible, .qr, #factor-secret"
    assert sideways_overflow(page) == 0
    assert off_screen(page.locator(parts)) == []
    confirm = part(page).get_by_role("form", name="Then type the code the app shows")
    confirm.get_by_label("Code").fill(code(secret))
    confirm.get_by_role("button", name="Turn on two-step login").tap()
    expect(part(page).get_by_role("listitem")).to_have_count(10)
    assert sideways_overflow(page) == 0
    assert off_screen(page.locator("#factor-codes li")) == []
