"""GET /index, the public product inventory, on a phone-sized screen in Chromium."""

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.support import PHONE, mid_word_breaks, off_screen, open_page, sideways_overflow
from tests.support import PASSWORD, Served, nimbus_serve, run_cli

# Long for a product, as the seeded ones go; first in, so on the first page.
LONG: dict[str, Any] = {
    "name": "Heavy-Duty Refurbished Aluminium Headphone Stand",
    "description": "A heavy-duty headphone stand in refurbished aluminium, for the workshop.",
    "price": 1234.5,
    "stock": 12345,
}
# Past what any screen can hold: a word of 60 letters, a million dollars, a billion in stock.
HUGE: dict[str, Any] = {
    "name": "Unbreakable" + "x" * 49,
    "description": "",
    "price": 999999.99,
    "stock": 1_000_000_000,
}
DOLLARS = re.compile(r"\$\d{1,3}(,\d{3})*\.\d{2}")


@pytest.fixture(scope="module")
def inventory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A server whose first page holds LONG and nine seeded products, its second HUGE."""
    with nimbus_serve(tmp_path_factory.mktemp("inventory") / "data") as server:
        created = run_cli(
            server.data_dir,
            *("users", "create", "--username", "root", "--admin", "--password-stdin"),
            stdin=PASSWORD + "\n",
        )
        assert created.returncode == 0, created.stderr
        with httpx.Client(base_url=server.url, timeout=30) as client:
            login = client.post("/login", json={"username": "root", "password": PASSWORD})
            assert login.status_code == 200, login.text
            admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
            _add(client, admin, LONG)
            seeded = run_cli(server.data_dir, "seed", "products", "--count", "9")
            assert seeded.returncode == 0, seeded.stderr
            _add(client, admin, HUGE)
        yield server


def _add(client: httpx.Client, admin: dict[str, str], product: dict[str, Any]) -> None:
    response = client.post("/products", json=product, headers=admin)
    assert response.status_code == 201, response.text
    # The JSON API's price stays a number in the major unit: no currency sign there.
    assert response.json()["price"] == product["price"]


@pytest.fixture
def phone(browser: Browser, request: pytest.FixtureRequest) -> Page:
    return open_page(browser, request, PHONE, phone=True).page


def test_the_inventory_fits_a_phone(phone: Page, inventory: Served) -> None:
    phone.goto(f"{inventory.url}/index")
    rows = phone.get_by_role("table").locator("tbody tr")
    expect(rows).to_have_count(10)
    assert sideways_overflow(phone) == 0
    cells = phone.locator("th, td")
    assert off_screen(cells) == []
    assert mid_word_breaks(cells) == []
    # Every product's name, description, price and stock is on the screen, none cut off.
    long_row = rows.filter(has_text=LONG["name"])
    for part in (LONG["name"], LONG["description"], "$1,234.50", "12,345"):
        expect(long_row.get_by_text(part, exact=True)).to_be_visible()
    assert phone.locator(".table-wrap").evaluate("n => n.scrollWidth - n.clientWidth") == 0

    # Past anything a phone holds, the table scrolls within its own region, not the page.
    phone.get_by_role("link", name="Next page").tap()
    expect(phone.get_by_text(HUGE["name"])).to_be_visible()
    assert sideways_overflow(phone) == 0
    region = phone.get_by_role("region", name="Products")
    assert region.evaluate("n => n.scrollWidth > n.clientWidth")
    expect(region).to_have_attribute("tabindex", "0")  # so a keyboard can scroll it


def test_inventory_prices_are_shown_in_dollars(phone: Page, inventory: Served) -> None:
    phone.goto(f"{inventory.url}/index")
    expect(phone.get_by_role("columnheader", name="Price")).to_be_visible()
    prices = phone.locator("tbody td:nth-child(2)")
    expect(prices).to_have_count(10)
    texts = prices.all_inner_texts()
    assert all(DOLLARS.fullmatch(text) for text in texts), texts
    assert "$1,234.50" in texts
    # Right-aligned in figures of one width, so that the dollars line up.
    style = prices.first.evaluate(
        "n => [getComputedStyle(n).textAlign, getComputedStyle(n).fontVariantNumeric]"
    )
    assert style == ["right", "tabular-nums"]
    phone.get_by_role("link", name="Next page").tap()
    expect(phone.locator("tbody td:nth-child(2)")).to_have_text(["$999,999.99"])
