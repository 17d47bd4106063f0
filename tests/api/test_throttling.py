"""Rate limits over HTTP, on every backend: logins counted per account however it is named,
reserved before the hash so concurrent guesses cannot race past, strangers unable to lock an
owner out, and the limits on sign-up, refresh and messages; client addresses from trusted
proxies only."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from nimbus.settings import Settings
from tests.factories import an_account
from tests.support import PASSWORD, serve, sign_up

STRICT = {
    "login_max_failures_per_client": 3,
    "login_max_failures_per_account": 7,
    "login_max_failures_per_address": 12,
    "signup_max_per_address": 4,
    "refresh_max_per_address": 3,
    "messages_max_per_account": 2,
    # The tests speak for many clients through this trusted "proxy".
    "forwarded_allow_ips": ("127.0.0.1",),
}


@pytest.fixture
def strict(settings: Settings) -> Iterator[httpx.Client]:
    yield from serve(settings.model_copy(update=STRICT))


def _from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def _login(
    client: httpx.Client,
    address: str = "198.51.100.1",
    password: str = "wrong password",  # noqa: S107 (a guess, on purpose)
    device: str | None = None,
    **name: str,
) -> httpx.Response:
    """A login from `address`, showing the device cookie `device` (and no other)."""
    body = (name or {"username": "alice"}) | {"password": password}
    client.cookies.clear()
    if device is not None:
        client.cookies.set("nimbus_device", device)
    try:
        return client.post("/login", json=body, headers=_from(address))
    finally:
        client.cookies.clear()


def test_every_way_of_naming_an_account_counts_against_that_account(
    strict: httpx.Client,
) -> None:
    sign_up(strict, "alice", email="alice@example.com")
    names: list[dict[str, str]] = [
        {"username": " alice@example.com"},
        {"username": "\tALICE"},
        {"email": "Alice@Example.com "},
    ]
    for name in names:
        assert _login(strict, **name).status_code == 401
    for name in [*names, {"username": "alice"}, {"username": "alice@example.com"}]:
        refused = _login(strict, password=PASSWORD, **name)
        assert refused.status_code == 429, name
        assert refused.json()["code"] == "rate_limited"


def test_concurrent_guesses_never_get_more_password_checks_than_the_limit(
    strict: httpx.Client,
) -> None:
    sign_up(strict, "alice")
    with ThreadPoolExecutor(max_workers=30) as pool:
        statuses = list(pool.map(lambda _: _login(strict).status_code, range(30)))
    # A 401 is a password checked; a 429 was refused before any hash ran.
    assert statuses.count(401) == STRICT["login_max_failures_per_client"]
    assert statuses.count(429) == 30 - statuses.count(401)


def test_a_stranger_who_knows_a_username_cannot_lock_its_owner_out(
    strict: httpx.Client,
) -> None:
    sign_up(strict, "alice")
    owner = _login(strict, "203.0.113.7", PASSWORD)
    assert owner.status_code == 200
    device = owner.cookies["nimbus_device"]
    assert "HttpOnly" in owner.headers["set-cookie"]
    assert "SameSite=strict" in owner.headers["set-cookie"]
    # One stranger: locked out on its own address only.
    for _ in range(3):
        assert _login(strict, "198.51.100.1").status_code == 401
    assert _login(strict, "198.51.100.1", PASSWORD).status_code == 429
    assert _login(strict, "203.0.113.8", PASSWORD).status_code == 200
    # Strangers on many addresses use up every new client's allowance for the account...
    failures = 0
    for n in range(2, 10):
        failures += [_login(strict, f"198.51.100.{n}").status_code for _ in range(3)].count(401)
    # (the owner's success from .8 started the count again: failures are consecutive ones)
    assert failures == STRICT["login_max_failures_per_account"]
    assert _login(strict, "203.0.113.9", PASSWORD).status_code == 429
    # ... but the owner's device, which logged in before, keeps an allowance of its own.
    assert _login(strict, "203.0.113.7", PASSWORD, device).status_code == 200
    for _ in range(3):
        assert _login(strict, "203.0.113.7", "wrong", device).status_code == 401
    assert _login(strict, "203.0.113.7", PASSWORD, device).status_code == 429
    # A device cookie is the account's own: it gives nothing on another account.
    sign_up(strict, "bob")
    for _ in range(3):
        assert _login(strict, "198.51.100.20", "wrong", device, username="bob").status_code == 401
    assert _login(strict, "198.51.100.20", PASSWORD, device, username="bob").status_code == 429


def test_a_forged_device_cookie_counts_as_a_new_client(strict: httpx.Client) -> None:
    sign_up(strict, "alice")
    device = _login(strict, "203.0.113.7", PASSWORD).cookies["nimbus_device"]
    device_id, expires, _ = device.split(".")
    forgeries = [f"{device_id}.{expires}.AAAA", f"{device_id}.99999999999.x", "junk", "." * 300]
    statuses = [_login(strict, "198.51.100.1", "wrong", forged).status_code for forged in forgeries]
    assert statuses == [401, 401, 401, 429]
    assert _login(strict, "198.51.100.1", PASSWORD).status_code == 429


def test_one_address_is_limited_across_accounts(strict: httpx.Client) -> None:
    sign_up(strict, "alice")
    for n in range(12):
        assert _login(strict, username=f"ghost{n}").status_code == 401
    assert _login(strict, password=PASSWORD).status_code == 429
    assert _login(strict, "198.51.100.2", PASSWORD).status_code == 200


def test_successful_logins_do_not_count(strict: httpx.Client) -> None:
    sign_up(strict, "alice")
    for _ in range(15):  # more than every limit
        assert _login(strict, password=PASSWORD).status_code == 200
    for _ in range(2):
        assert _login(strict).status_code == 401
    assert _login(strict, password=PASSWORD).status_code == 200
    for _ in range(3):
        assert _login(strict).status_code == 401


def test_sign_up_is_limited_per_address(strict: httpx.Client) -> None:
    for n in range(4):
        body = {"username": f"user{n}", "password": PASSWORD}
        assert strict.post("/users", json=body, headers=_from("198.51.100.1")).status_code == 201
    body = {"username": "one-more", "password": PASSWORD}
    refused = strict.post("/users", json=body, headers=_from("198.51.100.1"))
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert strict.post("/users", json=body, headers=_from("198.51.100.2")).status_code == 201


def test_refresh_is_limited_per_address_on_both_endpoints(strict: httpx.Client) -> None:
    sign_up(strict, "alice")
    token = _login(strict, password=PASSWORD).json()["refresh_token"]
    for _ in range(2):
        response = strict.post(
            "/auth/refresh", json={"refresh_token": token}, headers=_from("198.51.100.1")
        )
        token = response.json()["refresh_token"]
    form = {"grant_type": "refresh_token", "refresh_token": token}
    answer = strict.post("/auth/token", data=form, headers=_from("198.51.100.1"))
    assert answer.status_code == 200
    assert strict.post("/auth/token", data=form, headers=_from("198.51.100.1")).status_code == 429
    refused = strict.post(
        "/auth/refresh", json={"refresh_token": token}, headers=_from("198.51.100.1")
    )
    assert refused.status_code == 429


def test_messages_are_limited_per_account(strict: httpx.Client) -> None:
    alice, bob = an_account(strict, "alice").headers, an_account(strict, "bob").headers
    for n in range(2):
        assert strict.post("/messages", json={"text": f"{n}"}, headers=alice).status_code == 201
    assert strict.post("/messages", json={"text": "more"}, headers=alice).status_code == 429
    assert strict.post("/messages", json={"text": "bob's"}, headers=bob).status_code == 201
    assert len(strict.get("/messages").json()) == 3


def _serve_with(settings: Settings, **changes: Any) -> Iterator[httpx.Client]:
    yield from serve(settings.model_copy(update=STRICT | changes))


@pytest.fixture
def untrusting(settings: Settings) -> Iterator[httpx.Client]:
    yield from _serve_with(settings, forwarded_allow_ips=())


def test_forwarded_headers_are_ignored_unless_the_peer_is_a_trusted_proxy(
    untrusting: httpx.Client,
) -> None:
    sign_up(untrusting, "alice")
    for n in range(3):
        assert _login(untrusting, f"198.51.100.{n}").status_code == 401
    assert _login(untrusting, "203.0.113.7", PASSWORD).status_code == 429
    forwarded = {"Forwarded": "for=203.0.113.8"}
    response = untrusting.post(
        "/login", json={"username": "alice", "password": PASSWORD}, headers=forwarded
    )
    assert response.status_code == 429


@pytest.mark.parametrize(
    "headers",
    [
        # What the client wrote itself stands left of what the proxy appended.
        {"X-Forwarded-For": "203.0.113.50, 198.51.100.1"},
        {"Forwarded": 'for="203.0.113.50", for=198.51.100.1;proto=https'},
        {"Forwarded": 'for="[2001:db8::1]:4711"'},
        {"X-Forwarded-For": "198.51.100.1:51234"},
    ],
)
def test_the_client_is_the_nearest_address_that_is_not_a_trusted_proxy(
    strict: httpx.Client, headers: dict[str, str]
) -> None:
    sign_up(strict, "alice")
    for _ in range(3):
        response = strict.post(
            "/login", json={"username": "alice", "password": "wrong"}, headers=headers
        )
        assert response.status_code == 401
    last = strict.post("/login", json={"username": "alice", "password": PASSWORD}, headers=headers)
    assert last.status_code == 429
    # Any other client (the proxy itself, here) still has its allowance.
    assert _login(strict, "127.0.0.1", PASSWORD).status_code == 200
