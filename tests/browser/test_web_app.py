"""The web app at / in Chromium: accounts, todos, messages, the user list, the session's
tokens, the keyboard and a phone-sized screen, against a real `nimbus serve`."""

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, ViewportSize, expect

from tests.browser.support import (
    PHONE,
    REFRESH_KEY,
    SESSION_ENDED,
    Watched,
    log_in,
    mid_word_breaks,
    off_screen,
    open_page,
    sideways_overflow,
    stored,
    unique,
)
from tests.support import PASSWORD, Served, nimbus_serve, run_cli


def api_user(server: Served, username: str) -> dict[str, str]:
    """Sign a user up through the API; returns the Authorization header of a fresh login."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        created = client.post("/users", json={"username": username, "password": PASSWORD})
        assert created.status_code == 201, created.text
        login = client.post("/login", json={"username": username, "password": PASSWORD})
        assert login.status_code == 200, login.text
        return {"Authorization": f"Bearer {login.json()['access_token']}"}


def api(server: Served, method: str, path: str, headers: dict[str, str], **kwargs: Any) -> Any:
    response = httpx.request(method, f"{server.url}{path}", headers=headers, timeout=30, **kwargs)
    assert response.is_success, response.text
    return response.json() if response.content else None


def todo_items(page: Page) -> Locator:
    return page.get_by_role("list", name="Todos").get_by_role("listitem")


def add_todo(page: Page, description: str) -> None:
    page.get_by_label("New todo").fill(description)
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_role("status")).to_have_text(f"Added “{description}”.")


def expect_logged_out(page: Page, notice: str) -> None:
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    expect(page.get_by_text(notice)).to_be_visible()
    expect(page.get_by_role("navigation")).to_be_hidden()
    expect(page.get_by_role("button", name="Log out")).to_be_hidden()
    assert stored(page) == {}
    # Nothing of the session is left in the page either.
    expect(page.locator("#todo-list > li, #message-list > li, #user-rows > tr")).to_have_count(0)


def test_the_page_is_served_with_its_assets_and_no_errors(page: Page, server: Served) -> None:
    response = page.goto(server.url)
    assert response is not None
    assert response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page).to_have_title("nimbus")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    expect(page.get_by_role("heading", name="New here? Sign up")).to_be_visible()
    # The stylesheet applied (a script-only page would still show the forms unstyled).
    header = page.locator("header")
    assert header.evaluate("node => getComputedStyle(node).backgroundColor") != "rgba(0, 0, 0, 0)"


def test_sign_up_then_add_complete_filter_edit_and_delete_todos(page: Page, server: Served) -> None:
    name = unique("alice")
    page.goto(server.url)
    signup = page.get_by_role("form", name="New here? Sign up")
    signup.get_by_label("Username").fill(name)
    signup.get_by_label("Password").fill(PASSWORD)
    signup.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("heading", name="Todos")).to_be_visible()
    expect(page.get_by_text(f"Signed in as {name}")).to_be_visible()
    expect(page.get_by_text("No todos here.")).to_be_visible()

    add_todo(page, "Buy milk")
    add_todo(page, "Write report")
    expect(todo_items(page).locator(".todo-text")).to_have_text(["Write report", "Buy milk"])

    page.get_by_label("State of “Buy milk”").select_option("completed")
    expect(page.get_by_role("status")).to_have_text("“Buy milk” is now completed.")
    expect(page.get_by_label("State of “Buy milk”")).to_have_value("completed")

    page.get_by_label("Show", exact=True).select_option("completed")
    expect(todo_items(page)).to_have_count(1)
    expect(todo_items(page).first).to_contain_text("Buy milk")
    page.get_by_label("Show", exact=True).select_option("unstarted")
    expect(todo_items(page)).to_have_count(1)
    expect(todo_items(page).first).to_contain_text("Write report")
    page.get_by_label("Show", exact=True).select_option("")
    expect(todo_items(page)).to_have_count(2)

    page.get_by_role("button", name="Edit “Write report”").click()
    field = page.get_by_label("Description")
    expect(field).to_be_focused()
    field.fill("Write the quarterly report")
    field.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Saved “Write the quarterly report”.")
    expect(page.get_by_role("button", name="Edit “Write the quarterly report”")).to_be_focused()

    page.get_by_role("button", name="Delete “Write the quarterly report”").click()
    expect(page.get_by_role("status")).to_have_text("Deleted “Write the quarterly report”.")
    expect(todo_items(page)).to_have_count(1)

    # The server has what the page shows.
    headers = {"Authorization": f"Bearer {_log_in_api(server, name)}"}
    todos = api(server, "GET", "/todos", headers)
    assert [(t["description"], t["state"]) for t in todos] == [("Buy milk", "completed")]

    # A reload keeps the session: the refresh token is in this tab's sessionStorage.
    page.reload()
    expect(page.get_by_text(f"Signed in as {name}")).to_be_visible()
    expect(page.get_by_label("State of “Buy milk”")).to_have_value("completed")


def _log_in_api(server: Served, username: str) -> str:
    login = httpx.post(
        f"{server.url}/login", json={"username": username, "password": PASSWORD}, timeout=30
    )
    assert login.status_code == 200, login.text
    token: str = login.json()["access_token"]
    return token


def test_log_in_and_log_out_keep_tokens_out_of_urls(watched: Watched, server: Served) -> None:
    page = watched.page
    name = unique("bob")
    api_user(server, name)
    log_in(page, server, name)
    expect(page.get_by_role("heading", name="Todos")).to_be_focused()
    add_todo(page, "Water the plants")
    # Not an administrator: no user list, and asking for it shows the todos.
    expect(page.get_by_role("link", name="Users")).to_be_hidden()
    page.goto(f"{server.url}/#users")
    expect(page.get_by_role("heading", name="Todos")).to_be_visible()

    assert list(stored(page)) == [REFRESH_KEY]
    refresh_token = stored(page)[REFRESH_KEY]
    assert all(refresh_token not in url and "eyJ" not in url for url in watched.urls)

    page.get_by_role("button", name="Log out").click()
    expect_logged_out(page, "You have logged out.")
    expect(page.get_by_role("form", name="Log in").get_by_label("Username")).to_be_focused()
    # Logging out ended the session on the server too.
    refused = httpx.post(f"{server.url}/auth/refresh", json={"refresh_token": refresh_token})
    assert refused.status_code == 401

    log_in(page, server, name)
    expect(todo_items(page).locator(".todo-text")).to_have_text(["Water the plants"])
    assert all("eyJ" not in url for url in watched.urls)


def test_a_wrong_password_shows_the_error(page: Page, server: Served) -> None:
    name = unique("carol")
    api_user(server, name)
    page.goto(server.url)
    form = page.get_by_role("form", name="Log in")
    form.get_by_label("Username").fill(name)
    form.get_by_label("Password").fill("not the password")
    form.get_by_role("button", name="Log in").click()
    expect(form.get_by_role("alert")).to_have_text("Invalid username or password")
    expect(form.get_by_label("Password")).to_be_focused()
    expect(form.get_by_label("Password")).to_have_value("")
    expect(page.get_by_role("navigation")).to_be_hidden()
    assert stored(page) == {}


def test_a_sign_up_the_api_refuses_shows_its_message(page: Page, server: Served) -> None:
    name = unique("dave")
    api_user(server, name)
    taken = httpx.post(f"{server.url}/users", json={"username": name, "password": PASSWORD})
    assert taken.status_code == 409
    page.goto(server.url)
    form = page.get_by_role("form", name="New here? Sign up")
    form.get_by_label("Username").fill(name)
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Sign up").click()
    expect(form.get_by_role("alert")).to_have_text(taken.json()["message"])
    assert stored(page) == {}


def test_post_a_message_see_it_and_load_older_ones(page: Page, server: Served) -> None:
    writer = unique("erin")
    headers = api_user(server, writer)
    for n in range(25):
        api(server, "POST", "/messages", headers, json={"text": f"{writer} says {n}"})
    reader = unique("frank")
    api_user(server, reader)
    log_in(page, server, reader)

    page.get_by_role("link", name="Messages").click()
    expect(page.get_by_role("heading", name="Messages")).to_be_focused()
    board = page.get_by_role("list", name="Latest messages, newest first").get_by_role("listitem")
    expect(board).to_have_count(20)
    expect(board.first).to_contain_text(f"{writer} says 24")
    expect(page.get_by_text(f"{writer} says 4", exact=True)).to_have_count(0)
    page.get_by_role("button", name="Load older messages").click()
    expect(page.get_by_text(f"{writer} says 4", exact=True)).to_be_visible()
    expect(page.get_by_text(f"{writer} says 0", exact=True)).to_be_visible()

    # Shown exactly as written: markup stays text, line breaks and spaces stay.
    text = "Hello <b>board</b> & <img src=x onerror=alert(1)>\n  second line"
    page.get_by_label("New message").fill(text)
    page.get_by_role("button", name="Post").click()
    expect(page.get_by_role("status")).to_have_text("Message posted.")
    expect(board.first).to_contain_text(reader)
    assert board.first.locator(".message-text").text_content() == text
    expect(page.locator("main b, main img")).to_have_count(0)
    newest = api(server, "GET", "/messages?limit=1", {})
    assert newest[0]["text"] == text
    assert newest[0]["author"] == reader

    page.get_by_label("New message").fill("   ")
    page.get_by_role("button", name="Post").click()
    expect(page.get_by_text("Write something first.")).to_be_visible()


def test_todos_come_page_by_page(page: Page, server: Served) -> None:
    name = unique("grace")
    headers = api_user(server, name)
    for n in range(23):
        api(server, "POST", "/todos", headers, json={"description": f"todo {n:02}"})
    log_in(page, server, name)
    expect(todo_items(page)).to_have_count(20)
    expect(todo_items(page).first).to_contain_text("todo 22")
    page.get_by_role("button", name="Load more todos").click()
    expect(todo_items(page)).to_have_count(23)
    expect(todo_items(page).last).to_contain_text("todo 00")
    expect(page.get_by_role("button", name="Load more todos")).to_be_hidden()


def test_a_todo_changed_elsewhere_is_reloaded_with_a_notice(page: Page, server: Served) -> None:
    name = unique("heidi")
    headers = api_user(server, name)
    todo = api(server, "POST", "/todos", headers, json={"description": "Old text"})
    log_in(page, server, name)
    expect(todo_items(page)).to_have_count(1)

    api(server, "PATCH", f"/todos/{todo['uid']}", headers, json={"description": "New text"})
    page.get_by_label("State of “Old text”").select_option("started")
    expect(page.get_by_role("alert").filter(has_text="changed elsewhere")).to_have_text(
        "This todo was changed elsewhere; the list has been reloaded."
    )
    expect(page.get_by_label("State of “New text”")).to_have_value("unstarted")

    api(server, "DELETE", f"/todos/{todo['uid']}", headers)
    page.get_by_role("button", name="Delete “New text”").click()
    expect(page.get_by_role("alert").filter(has_text="no longer exists")).to_be_visible()
    expect(todo_items(page)).to_have_count(0)


def test_an_administrator_sees_the_user_list(page: Page, tmp_path: Path) -> None:
    with nimbus_serve(tmp_path / "data") as server:
        created = run_cli(
            server.data_dir,
            *("users", "create", "--username", "root", "--admin", "--password-stdin"),
            stdin=PASSWORD + "\n",
        )
        assert created.returncode == 0, created.stderr
        api_user(server, "ivan")
        log_in(page, server, "root")
        page.get_by_role("link", name="Users").click()
        expect(page.get_by_role("heading", name="Users")).to_be_focused()
        rows = page.get_by_role("table").locator("tbody tr")
        expect(rows).to_have_count(2)
        expect(rows.nth(0)).to_contain_text("root")
        expect(rows.nth(0)).to_contain_text("admin")
        expect(rows.nth(1)).to_contain_text("ivan")
        expect(rows.nth(1)).to_contain_text("user")
        page.get_by_role("button", name="Log out").click()
        expect_logged_out(page, "You have logged out.")


def test_a_refused_refresh_logs_out_cleanly(page: Page, server: Served) -> None:
    name = unique("judy")
    headers = api_user(server, name)
    log_in(page, server, name)
    add_todo(page, "Before")
    # A new password ends every session of the account, this page's included.
    me = api(server, "GET", "/users/me", headers)
    change = {"password": "n3w passw0rd", "current_password": PASSWORD}
    api(server, "PATCH", f"/users/{me['user']['id']}", headers, json=change)

    page.get_by_label("New todo").fill("After")
    page.get_by_role("button", name="Add", exact=True).click()
    expect_logged_out(page, SESSION_ENDED)


def test_a_bad_stored_refresh_token_ends_the_session_on_reload(page: Page, server: Served) -> None:
    name = unique("ken")
    api_user(server, name)
    log_in(page, server, name)
    page.evaluate(f"() => sessionStorage.setItem('{REFRESH_KEY}', 'not-a-refresh-token')")
    page.reload()
    expect_logged_out(page, SESSION_ENDED)


def test_the_access_token_is_renewed_before_it_expires(watched: Watched, tmp_path: Path) -> None:
    page = watched.page
    with nimbus_serve(tmp_path / "data", NIMBUS_ACCESS_TOKEN_TTL="6") as server:
        name = unique("leo")
        api_user(server, name)
        log_in(page, server, name)
        logged_in = time.monotonic()
        first = stored(page)[REFRESH_KEY]
        with page.expect_response(lambda r: r.url.endswith("/auth/refresh")) as renewal:
            pass
        assert renewal.value.status == 200
        # Renewed ahead of time: 6 s tokens are renewed a fifth of their lifetime early.
        assert time.monotonic() - logged_in < 6
        page.wait_for_function(
            f"first => sessionStorage.getItem('{REFRESH_KEY}') !== first", arg=first
        )
        add_todo(page, "Still signed in")
        # No request was ever refused for want of a fresh token.
        assert not [url for status, url in watched.statuses if status == 401]


def test_everything_works_from_the_keyboard(page: Page, server: Served) -> None:
    name = unique("mallory")
    api_user(server, name)
    page.goto(server.url)
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("form", name="Log in").get_by_label("Username")).to_be_focused()
    page.keyboard.type(name)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Todos")).to_be_focused()

    page.keyboard.press("Tab")
    expect(page.get_by_label("New todo")).to_be_focused()
    page.keyboard.type("Typed, not clicked")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Added “Typed, not clicked”.")
    expect(page.get_by_label("New todo")).to_be_focused()
    for _ in range(4):  # Add, the filter, the todo's state, its Edit button
        page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Edit “Typed, not clicked”")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Description")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.get_by_role("button", name="Edit “Typed, not clicked”")).to_be_focused()
    # The focused control is visibly marked.
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"


@pytest.mark.parametrize("width", [320, 375])
def test_it_fits_a_phone_screen(
    browser: Browser, request: pytest.FixtureRequest, server: Served, width: int
) -> None:
    page = open_page(browser, request, {"width": width, "height": 740}, phone=True).page

    def fits() -> None:
        overflow = page.evaluate("() => document.documentElement.scrollWidth")
        assert overflow <= width, f"the page is {overflow}px wide on a {width}px screen"

    page.goto(server.url)
    fits()
    name = unique("niaj")
    signup = page.get_by_role("form", name="New here? Sign up")
    signup.get_by_label("Username").fill(name)
    signup.get_by_label("Password").fill(PASSWORD)
    signup.get_by_role("button", name="Sign up").tap()
    expect(page.get_by_role("heading", name="Todos")).to_be_visible()
    add_todo(page, "A rather long todo description that has to wrap on a small screen")
    page.get_by_label("State of “A rather long").select_option("completed")
    expect(page.get_by_role("status")).to_contain_text("is now completed")
    fits()
    logout = page.get_by_role("button", name="Log out").bounding_box()
    assert logout is not None
    assert logout["x"] + logout["width"] <= width

    page.get_by_role("link", name="Messages").tap()
    page.get_by_label("New message").fill("x" * 300)  # one unbroken word
    page.get_by_role("button", name="Post").tap()
    expect(page.get_by_role("status")).to_have_text("Message posted.")
    fits()


def test_the_user_list_fits_a_phone_without_breaking_words(
    browser: Browser, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with nimbus_serve(tmp_path / "data") as server:
        created = run_cli(
            server.data_dir,
            *("users", "create", "--username", "root", "--admin", "--password-stdin"),
            stdin=PASSWORD + "\n",
        )
        assert created.returncode == 0, created.stderr
        long_one = {
            "username": "christopher.alexander-whitfield",
            "password": PASSWORD,
            "name": "Maximiliane Wolkenstein-Rautenberg",
            "email": "maximiliane.wolkenstein-rautenberg@example.org",
        }
        signed_up = httpx.post(f"{server.url}/users", json=long_one, timeout=30)
        assert signed_up.status_code == 201, signed_up.text
        api_user(server, "ivan")
        columns = ["Username", "Name", "Email", "Role", "Joined"]

        page = open_page(browser, request, PHONE, phone=True).page
        log_in(page, server, "root")
        page.get_by_role("link", name="Users").tap()
        rows = page.get_by_role("table").locator("tbody tr")
        expect(rows).to_have_count(3)
        cells = rows.locator("td")
        assert sideways_overflow(page) == 0
        assert page.locator(".table-wrap").evaluate("n => n.scrollWidth - n.clientWidth") == 0
        assert off_screen(cells) == []
        assert off_screen(cells.locator(".cell-value")) == []
        assert mid_word_breaks(cells) == []
        # A card per user: every value shows, beside the name of its column.
        long_row = rows.nth(1)
        assert long_row.locator(".cell-label").all_inner_texts() == columns
        values = long_row.locator(".cell-value")
        assert values.all_inner_texts()[:4] == [
            long_one["username"],
            long_one["name"],
            long_one["email"],
            "user",
        ]
        joined = values.nth(4).locator("time")
        expect(joined).to_be_visible()
        expect(joined).to_have_text(re.compile(r"\d{4}"))
        for n in range(5):
            expect(values.nth(n)).to_be_in_viewport()
        # Still a table to a screen reader, whose column names are the headers, not the labels.
        assert page.get_by_role("columnheader").all_text_contents() == columns
        expect(page.get_by_role("cell", name=long_one["email"])).to_have_count(1)
        assert long_row.locator(".cell-label").first.get_attribute("aria-hidden") == "true"

        # With room for it, the same list is a table with its headers on show.
        desk = open_page(browser, request, {"width": 1024, "height": 800}).page
        log_in(desk, server, "root")
        desk.get_by_role("link", name="Users").click()
        desk_rows = desk.get_by_role("table").locator("tbody tr")
        expect(desk_rows).to_have_count(3)
        assert desk_rows.first.evaluate("n => getComputedStyle(n).display") == "table-row"
        expect(desk.get_by_role("columnheader", name="Joined")).to_be_visible()
        expect(desk.locator(".cell-label").first).to_be_hidden()
        assert sideways_overflow(desk) == 0
        assert off_screen(desk_rows.locator("td")) == []
        assert mid_word_breaks(desk_rows.locator("td")) == []


def test_the_ctrl_enter_hint_shows_only_where_there_is_a_keyboard(
    browser: Browser, request: pytest.FixtureRequest, server: Served
) -> None:
    name = unique("olga")
    api_user(server, name)

    phone = open_page(browser, request, PHONE, phone=True).page
    log_in(phone, server, name)
    phone.get_by_role("link", name="Messages").tap()
    hint = phone.locator("#message-hint")
    expect(hint).to_be_visible()
    assert hint.inner_text() == "Up to 1000 characters"
    expect(phone.get_by_text("Ctrl+Enter")).to_be_hidden()
    assert phone.locator(".keys-hint").evaluate("n => getComputedStyle(n).display") == "none"
    expect(phone.get_by_label("New message")).to_have_accessible_description(
        "Up to 1000 characters"
    )
    assert sideways_overflow(phone) == 0

    desk = open_page(browser, request, {"width": 1024, "height": 800}).page
    log_in(desk, server, name)
    desk.get_by_role("link", name="Messages").click()
    expect(desk.get_by_text("Ctrl+Enter posts")).to_be_visible()
    expect(desk.get_by_label("New message")).to_have_accessible_description(
        "Up to 1000 characters; Ctrl+Enter posts"
    )
    # And it does what it says.
    desk.get_by_label("New message").fill(f"{name} posts with the keyboard")
    desk.get_by_label("New message").press("Control+Enter")
    expect(desk.get_by_role("status")).to_have_text("Message posted.")


@pytest.mark.parametrize(
    ("viewport", "phone"),
    [(PHONE, True), ({"width": 1024, "height": 800}, False)],
    ids=["phone", "desktop"],
)
def test_the_header_keeps_its_height_when_signed_in(
    browser: Browser,
    request: pytest.FixtureRequest,
    server: Served,
    viewport: ViewportSize,
    phone: bool,
) -> None:
    name = unique("penelope")  # a username of a usual length: 17 characters
    api_user(server, name)
    page = open_page(browser, request, viewport, phone=phone).page
    page.goto(server.url)
    header = page.get_by_role("banner")
    before = header.bounding_box()
    assert before is not None

    log_in(page, server, name)
    after = header.bounding_box()
    assert after is not None
    assert after["height"] == before["height"]
    # What the header holds stays inside it, and on the screen.
    for part in (
        page.get_by_text(f"Signed in as {name}"),
        page.get_by_role("button", name="Log out"),
    ):
        box = part.bounding_box()
        assert box is not None
        assert box["y"] >= after["y"]
        assert box["y"] + box["height"] <= after["y"] + after["height"]
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= viewport["width"]
    # A username of a usual length is shown whole, not cut short with an ellipsis.
    username = page.locator("#whoami").get_by_text(name, exact=True)
    assert username.evaluate("n => n.scrollWidth <= n.clientWidth")
    # The sections come below it, all of them on the screen.
    tabs = page.get_by_role("navigation", name="Sections")
    nav = tabs.bounding_box()
    assert nav is not None
    assert nav["y"] >= after["y"] + after["height"]
    assert off_screen(tabs.get_by_role("link")) == []
    assert sideways_overflow(page) == 0

    # The same on every view, and after logging out.
    page.get_by_role("link", name="Messages").click()
    expect(page.get_by_role("heading", name="Messages")).to_be_visible()
    assert header.bounding_box() == after
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    assert header.bounding_box() == before
